"""Colorization, context encoder and spot-the-artifacts: targets and losses against independent
references (scikit-image, numpy, scipy), learning, bad configuration, visuals, CLI and compare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.color as sc
import torch
from scipy.ndimage import binary_dilation

import selfsup.ops as ops
from selfsup import plugins
from selfsup.data import load_digits
from selfsup.models.inputs import images_to_tensor
from selfsup.models import small_resnet
from selfsup.training import TrainConfig, Trainer, load_checkpoint

DIGITS = load_digits().train.images[:128]


def colour_blocks(n: int, seed: int = 0) -> np.ndarray:
    """RGB images of 4×4 blocks of 8 px, each a random colour: ab constant over each output cell."""
    blocks = np.random.default_rng(seed).integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, axis=1).repeat(8, axis=2))


COLOURS = colour_blocks(96)
PALETTE = np.array([[200, 30, 30], [40, 200, 60], [30, 40, 160], [240, 230, 80]], np.uint8)
"""Four colours of distinct lightness: their ab can be learned from L."""
PAINTED = np.ascontiguousarray(PALETTE[np.random.default_rng(1).integers(0, 4, (64, 4, 4))].repeat(4, axis=1).repeat(4, axis=2))
"""16-px images (the learning tests train at 16 px to stay fast)."""
SMALL_DIGITS = load_digits(size=16).train.images[:128]


def method(name: str, in_channels: int = 3, **options):
    torch.manual_seed(0)
    return plugins.get("methods", name)(small_resnet(width=8, in_channels=in_channels), **options)


def train(m, images: np.ndarray, tmp_path: Path, steps: int, lr: float = 2e-3):
    config = TrainConfig(steps=steps, batch_size=32, lr=lr, optimizer="adamw", log_every=1, progress=False, warmup_steps=1)
    return Trainer(m, images, config, tmp_path).fit()


def numpy_log_softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = logits - logits.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


# ----------------------------------------------------------------------------------------------
# colorization


def test_colorization_targets_are_the_soft_encoding_of_the_downsampled_ab():
    m = method("colorization", in_channels=1)
    images = colour_blocks(3, seed=1)
    batch = m.make_batch(images, seed=0, epoch=0, indices=np.arange(3))
    lab = sc.rgb2lab(images)
    np.testing.assert_allclose(batch["lightness"][:, 0].numpy(), (lab[..., 0] / 100 - 0.5) / 0.25, atol=1e-4)
    ab = lab[..., 1:].reshape(3, 8, 4, 8, 4, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(batch["ab"].permute(0, 2, 3, 1).numpy() * 100, ab, atol=2e-3)
    # soft encoding: Gaussian (σ = 5) weights on the 5 nearest bins, normalised (Zhang et al. §2.1)
    centres = ops.ab_bins().astype(np.float64)
    d2 = ((ab[..., None, :] - centres) ** 2).sum(-1)
    nearest5 = np.argsort(d2, axis=-1)[..., :5]
    expected = np.zeros_like(d2)
    np.put_along_axis(expected, nearest5, np.exp(-np.take_along_axis(d2, nearest5, -1) / (2 * 5.0**2)), -1)
    expected /= expected.sum(-1, keepdims=True)
    targets = batch["targets"].permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(targets, expected, atol=1e-4)
    np.testing.assert_allclose(targets.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(targets.argmax(-1), d2.argmin(-1))
    np.testing.assert_array_equal(batch["bins"].numpy(), d2.argmin(-1))


def test_rebalancing_weights_follow_eq_4_of_the_paper():
    m = method("colorization", in_channels=1, gamma=0.5)
    lab = ops.rgb_to_lab(COLOURS[:16])
    counts = torch.bincount(torch.from_numpy(ops.nearest_ab_bin(lab[..., 1:])).reshape(-1), minlength=m.num_bins)
    weights = m.rebalancing_weights(counts).numpy()
    # independent: smoothed prior p̃ (σ = 5), w ∝ ((1 − λ)p̃ + λ/Q)^−1, E_p̃[w] = 1
    centres = ops.ab_bins().astype(np.float64)
    kernel = np.exp(-((centres[:, None] - centres[None]) ** 2).sum(-1) / 50.0)
    prior = kernel @ (counts.numpy() / counts.sum().item())
    prior /= prior.sum()
    w = 1 / (0.5 * prior + 0.5 / len(prior))
    w /= (prior * w).sum()
    np.testing.assert_allclose(weights, w, rtol=1e-9)
    assert float((prior * weights).sum()) == pytest.approx(1.0)
    np.testing.assert_allclose(weights, ops.rebalance_weights(ops.ab_prior(lab[..., 1:]), 0.5), rtol=1e-4)
    # rare colours weigh more than common ones
    assert weights[counts.argmax()] < weights[counts == 0].min()


def test_colorization_loss_is_the_rebalanced_cross_entropy_and_counts_accumulate():
    m = method("colorization", in_channels=1)
    batch = m.make_batch(COLOURS[:4], seed=0, epoch=0, indices=np.arange(4))
    m.train()
    out = m.training_step(batch)
    counts = np.bincount(batch["bins"].numpy().ravel(), minlength=m.num_bins)
    np.testing.assert_array_equal(m.bin_counts.numpy(), counts)
    weights = m.rebalancing_weights(torch.from_numpy(counts)).numpy()
    with torch.no_grad():  # train mode as for the loss: batch statistics in BatchNorm
        logits = m.predict(batch["lightness"]).numpy()
    z = batch["targets"].numpy()
    per_pixel = -(z * numpy_log_softmax(logits, 1)).sum(1)
    expected = (weights[batch["bins"].numpy()] * per_pixel).mean()
    assert out["loss"].item() == pytest.approx(expected, rel=1e-4)
    m.training_step(batch)
    np.testing.assert_array_equal(m.bin_counts.numpy(), 2 * counts)
    assert "bin_counts" in m.state_dict()
    m.eval()
    m.training_step(batch)
    np.testing.assert_array_equal(m.bin_counts.numpy(), 2 * counts)


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_colorization_regression_loss(loss: str):
    m = method("colorization", in_channels=1, variant="regression", regression_loss=loss).eval()
    batch = m.make_batch(COLOURS[:4], seed=0, epoch=0, indices=np.arange(4))
    assert "targets" not in batch
    with torch.no_grad():
        out = m.training_step(batch)
        diff = (m.predict(batch["lightness"]) - batch["ab"]).numpy()
    expected = 0.5 * (diff**2).sum(1).mean() if loss == "l2" else np.abs(diff).sum(1).mean()
    assert out["loss"].item() == pytest.approx(float(expected), rel=1e-5)


def test_colorize_decodes_with_the_annealed_mean():
    m = method("colorization", in_channels=1).eval()
    images = colour_blocks(2, seed=3)
    rgb = m.colorize(images)
    lab = sc.rgb2lab(images)
    with torch.no_grad():
        logits = m.predict(m.make_batch(images, seed=0, epoch=0, indices=np.arange(2))["lightness"]).double()
    # annealed mean (eq. 5): f_T(z) = exp(log z / T) / Σ exp(log z / T), ab = Σ_q f_T(z)_q · centre_q
    annealed = torch.softmax(torch.log_softmax(logits, 1) / 0.38, 1).permute(0, 2, 3, 1).numpy()
    ab = annealed @ ops.ab_bins().astype(np.float64)
    ab_full = torch.nn.functional.interpolate(torch.from_numpy(ab).permute(0, 3, 1, 2), size=(32, 32), mode="bilinear").permute(0, 2, 3, 1)
    expected = sc.lab2rgb(np.concatenate([lab[..., :1], ab_full.numpy()], -1))
    assert np.abs(rgb.astype(np.float64) - np.clip(expected, 0, 1) * 255).max() <= 1.5


def test_colorization_learns(tmp_path: Path):
    log = train(method("colorization", in_channels=1, image_size=16, output_size=4), PAINTED, tmp_path, steps=12)
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]


def test_probing_feeds_lightness_to_a_one_channel_backbone():
    from selfsup.eval.protocol import extract_features

    backbone = small_resnet(width=4, in_channels=1).eval()
    features = extract_features(backbone, COLOURS[:5])
    with torch.no_grad():
        expected = backbone(torch.from_numpy((sc.rgb2lab(COLOURS[:5])[..., 0] / 100 - 0.5) / 0.25).float()[:, None])
    torch.testing.assert_close(features, expected, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# context encoder


def test_context_encoder_batch_is_the_ops_masking():
    m = method("inpainting", mask="blocks", fraction=0.3)
    indices = np.array([5, 9, 11])
    batch = m.make_batch(DIGITS[:3], seed=2, epoch=1, indices=indices)
    masks = ops.inpaint_masks(3, 32, "blocks", fraction=0.3, seed=2, epoch=1, indices=indices)
    np.testing.assert_array_equal(batch["masks"][:, 0].numpy(), masks)
    torch.testing.assert_close(batch["masked"], images_to_tensor(ops.apply_mask(DIGITS[:3], masks, seed=2, epoch=1, indices=indices)))
    keep = torch.from_numpy(masks == 0)[:, None].expand(-1, 3, -1, -1)
    torch.testing.assert_close(batch["masked"][keep], batch["images"][keep])


@pytest.mark.parametrize("overlap, weight", [(0, 10.0), (1, 10.0), (2, 3.0)])
def test_context_encoder_loss_counts_only_the_masked_region(overlap: int, weight: float):
    m = method("inpainting", mask="region", overlap=overlap, overlap_weight=weight).eval()
    batch = m.make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))
    with torch.no_grad():
        out = m.training_step(batch)
        prediction = m.inpaint(batch["masked"]).numpy()
    x, masks = batch["images"].numpy(), batch["masks"][:, 0].numpy().astype(bool)
    structure = np.ones((2 * overlap + 1, 2 * overlap + 1), bool)
    region = np.stack([binary_dilation(mk, structure) if overlap else mk for mk in masks])
    w = np.where(masks, 1.0, np.where(region, weight, 0.0))[:, None]
    expected = (w * (prediction - x) ** 2).sum() / (3 * region.sum())
    assert out["loss"].item() == pytest.approx(float(expected), rel=1e-5)
    # pixels outside the predicted region do not matter
    changed = torch.from_numpy(prediction).clone()
    changed[torch.from_numpy(~region)[:, None].expand(-1, 3, -1, -1)] += 5.0
    again = m.reconstruction_loss(changed, batch["images"], batch["masks"])
    assert again.item() == pytest.approx(out["loss"].item(), rel=1e-6)


def test_context_encoder_adversarial_loss_and_gradient_routing():
    m = method("inpainting", mask="center", adversarial=True).eval()
    batch = m.make_batch(DIGITS[:6], seed=0, epoch=0, indices=np.arange(6))
    out = m.training_step(batch)
    with torch.no_grad():
        prediction = m.inpaint(batch["masked"])
        masks = batch["masks"]
        composite = (1 - masks) * batch["images"] + masks * prediction
        d_real, d_fake = torch.sigmoid(m.discriminator(batch["images"])), torch.sigmoid(m.discriminator(composite))
    torch.testing.assert_close(out["loss_d"], -(d_real.log().mean() + (1 - d_fake).log().mean()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["adversarial"], -d_fake.log().mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss"], 0.999 * out["reconstruction"] + 0.001 * out["adversarial"] + out["loss_d"])
    m.zero_grad()
    out["loss"].backward()
    encoder_decoder = [*m.backbone.parameters(), *m.decoder.parameters()]
    assert all(p.grad is not None for p in encoder_decoder)
    # the discriminator's gradient is that of L_D alone: L_adv reaches it only through detached weights
    d_grads = [p.grad.clone() for p in m.discriminator.parameters()]
    real, fake = m.discriminator(batch["images"]), m.discriminator(composite)
    loss_d = torch.nn.functional.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + (
        torch.nn.functional.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    )
    expected = torch.autograd.grad(loss_d, list(m.discriminator.parameters()))
    for got, want in zip(d_grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_context_encoder_learns(tmp_path: Path):
    log = train(method("inpainting", mask="center", image_size=16), SMALL_DIGITS, tmp_path, steps=12)
    assert log[-1]["reconstruction"] < 0.75 * log[0]["reconstruction"]


# ----------------------------------------------------------------------------------------------
# spot the artifacts


def test_corruption_labels_and_cells_match_the_op_applied():
    m = method("corruption", kinds=(0, 2, 5), grid=4)
    images, indices = COLOURS[:24], np.arange(10, 34)
    batch = m.make_batch(images, seed=4, epoch=2, indices=indices)
    out = ops.corrupt(images, (0, 2, 5), 0.25, seed=4, epoch=2, indices=indices)
    torch.testing.assert_close(batch["images"], images_to_tensor(out.images))
    labels = np.array([0, 2, 5])[batch["targets"].numpy()]
    np.testing.assert_array_equal(labels, out.labels)
    assert set(labels.tolist()) == {0, 2, 5}
    for i in range(24):
        expected = np.array([[out.masks[i, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8].mean() for c in range(4)] for r in range(4)])
        np.testing.assert_allclose(batch["cells"][i].numpy(), expected, atol=1e-6)
        changed = out.masks[i] == 1
        np.testing.assert_array_equal(out.images[i][~changed], images[i][~changed])
        diff = out.images[i][changed].astype(int) - images[i][changed]
        if labels[i] == 0:  # nothing applied, nothing to find
            assert not changed.any() and batch["cells"][i].sum() == 0
        elif labels[i] == 2:  # Gaussian noise, σ = 25
            assert changed.sum() == 64 and 15 < diff.std() < 30
        else:  # one shift per channel of 20–60 levels (where not clipped)
            unclipped = (out.images[i][changed] > 0) & (out.images[i][changed] < 255)
            for ch in range(3):
                values = set(diff[:, ch][unclipped[:, ch]].tolist())
                assert len(values) == 1 and 20 <= abs(values.pop()) <= 60


def test_corruption_loss_is_cross_entropy_plus_cell_bce():
    m = method("corruption", mask_weight=0.5).eval()
    batch = m.make_batch(DIGITS[:8], seed=0, epoch=0, indices=np.arange(8))
    with torch.no_grad():
        out = m.training_step(batch)
        what, where = (t.double().numpy() for t in m.heads(batch["images"]))
    y, cells = batch["targets"].numpy(), batch["cells"].double().numpy()
    ce = -numpy_log_softmax(what, 1)[np.arange(8), y].mean()
    p = 1 / (1 + np.exp(-where))
    bce = -(cells * np.log(p) + (1 - cells) * np.log(1 - p)).mean()
    assert out["loss"].item() == pytest.approx(ce + 0.5 * bce, rel=1e-5)


def test_corruption_learns(tmp_path: Path):
    log = train(method("corruption", image_size=16), SMALL_DIGITS, tmp_path, steps=16)
    assert log[-1]["loss"] < log[0]["loss"] - 0.3


# ----------------------------------------------------------------------------------------------
# configuration, visuals, command line, comparison


def test_bad_configuration():
    with pytest.raises(ValueError, match="backbone: colorization feeds the L channel"):
        method("colorization")
    with pytest.raises(ValueError, match="variant"):
        method("colorization", in_channels=1, variant="gan")
    with pytest.raises(ValueError, match="regression_loss"):
        method("colorization", in_channels=1, variant="regression", regression_loss="huber")
    with pytest.raises(ValueError, match="gamma"):
        method("colorization", in_channels=1, gamma=1.5)
    with pytest.raises(ValueError, match="output_size"):
        method("colorization", in_channels=1, output_size=6)
    with pytest.raises(ValueError, match="neighbours"):
        method("colorization", in_channels=1, neighbours=0)
    with pytest.raises(ValueError, match="images: colorization expects RGB"):
        method("colorization", in_channels=1).make_batch(DIGITS[:2, ..., :1], seed=0, epoch=0, indices=np.arange(2))
    with pytest.raises(ValueError, match="mask"):
        method("inpainting", mask="square")
    with pytest.raises(ValueError, match="fraction"):
        method("inpainting", fraction=0.0)
    with pytest.raises(ValueError, match="overlap"):
        method("inpainting", overlap=-1)
    with pytest.raises(ValueError, match="lambda_rec"):
        method("inpainting", lambda_adv=-0.1)
    with pytest.raises(ValueError, match="images"):
        method("inpainting").make_batch(DIGITS[:2, :16, :16], seed=0, epoch=0, indices=np.arange(2))
    with pytest.raises(ValueError, match="kinds"):
        method("corruption", kinds=(2,))
    with pytest.raises(ValueError, match="kinds"):
        method("corruption", kinds=(0, 7))
    with pytest.raises(ValueError, match="size"):
        method("corruption", size=0.75)
    with pytest.raises(ValueError, match="grid"):
        method("corruption", grid=5)


@pytest.mark.parametrize(
    "name, in_channels, options, rows",
    [("colorization", 1, {}, 3), ("colorization", 1, {"variant": "regression"}, 3), ("inpainting", 3, {}, 3), ("corruption", 3, {}, 2)],
)
def test_every_method_shows_its_predictions(name: str, in_channels: int, options: dict, rows: int):
    m = method(name, in_channels=in_channels, **options).eval()
    with torch.no_grad():
        shown = m.show(COLOURS[:3], seed=0)
    assert len(shown) == rows
    for row in shown:
        assert len(row.cells) == 3 and all(image.dtype == np.uint8 and image.ndim == 3 for image, _ in row.cells)
    if name == "colorization":
        np.testing.assert_array_equal(shown[2].cells[0][0], COLOURS[0])


def selfsup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "selfsup", *args], capture_output=True, text=True, timeout=600)


def test_cli_trains_exports_and_shows_colorization(tmp_path: Path):
    run = tmp_path / "run"
    trained = selfsup("train", "--method", "colorization", "--steps", "2", "--batch-size", "8", "--width", "4", "--out", str(run), "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert selfsup("export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "b.pt")).returncode == 0
    backbone = small_resnet(width=4, in_channels=1)
    backbone.load_state_dict(torch.load(tmp_path / "b.pt")["state_dict"])
    shown = selfsup("show", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "show.png"), "--count", "2")
    assert shown.returncode == 0 and (tmp_path / "show.png").exists(), shown.stderr
    bad = selfsup("train", "--method", "inpainting", "--option", "mask=square", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "mask: expected one of center, blocks, region" in bad.stderr


def test_compare_reports_the_probes_numbers(tmp_path: Path):
    from selfsup.experiments.compare import RANDOM_INIT, RANDOM_INIT_L, CompareConfig, compare, make_backbone
    from selfsup.eval.protocol import extract_features, probe_table

    config = CompareConfig(steps=2, batch_size=16, width=4, shots=(10,), label_seeds=(0,), warmup_steps=0)
    report = compare(tmp_path, ["rotnet", "colorization"], config, progress=False)
    assert list(report["results"]) == [RANDOM_INIT, RANDOM_INIT_L, "rotnet", "colorization"]
    assert json.loads((tmp_path / "compare.json").read_text()) == json.loads(json.dumps(report))
    table = (tmp_path / "compare.md").read_text().splitlines()
    assert table[0].startswith("| backbone | linear probe, 10 labels/class | kNN, all labels |") and len(table) == 6
    data = load_digits()

    def probe(backbone):
        return probe_table(
            extract_features(backbone, data.train.images), data.train.labels, extract_features(backbone, data.test.images),
            data.test.labels, shots=(10,), seeds=(0,),
        )

    assert probe(make_backbone(config))["linear"] == report["results"][RANDOM_INIT]["linear"]
    state = load_checkpoint(tmp_path / "runs" / "rotnet" / "checkpoint.pt")
    backbone = small_resnet(width=4)
    backbone.load_state_dict({k[len("backbone."):]: v for k, v in state["model"].items() if k.startswith("backbone.")})
    expected = probe(backbone)
    assert expected["linear"] == report["results"]["rotnet"]["linear"]
    assert expected["knn_all"] == report["results"]["rotnet"]["knn_all"]
    row = next(line for line in table if line.startswith("| rotnet |"))
    assert f"{expected['linear']['10']['mean']:.3f} ± 0.000" in row
    assert report["results"]["rotnet"]["pretraining"]["steps"] == 2
    assert report["results"]["rotnet"]["pretraining"]["peak_memory_mb"] >= 0 and table[0].endswith("| peak MiB |")
    with pytest.raises(ValueError, match="methods"):
        compare(tmp_path, [], config)
