"""MAE and its ViT: patch geometry and sin-cos positions against numpy transcriptions, per-sample
masking, an encoder blind to removed patches, the loss against a numpy reference, learning,
checkpoints, the visual, the CLI, the comparison's ViT baseline, bad options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup import plugins
from selfsup.cli import main
from selfsup.data import load_digits
from selfsup.methods.mae import MAE, masked_count, random_masking
from selfsup.models import small_resnet
from selfsup.models.vit import ViT, patchify, sincos_position_embedding, unpatchify
from selfsup.training import TrainConfig, Trainer
from conftest import fixed_batch_losses

DIGITS = load_digits().train.images[:64]
TINY = {"image_size": 16, "patch_size": 4, "dim": 32, "depth": 1, "heads": 2}


def tiny_mae(**options) -> MAE:
    torch.manual_seed(0)
    options = {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2, **options}
    return plugins.get("methods", "mae")(ViT(**TINY), **options)


def numpy_patches(images: np.ndarray, p: int) -> np.ndarray:
    """(N, C, H, W) → (N, L, p·p·C): patches row by row, each read pixel row by pixel row, channels last."""
    n, c, h, w = images.shape
    out = [images[:, :, r : r + p, q : q + p].transpose(0, 2, 3, 1).reshape(n, -1) for r in range(0, h, p) for q in range(0, w, p)]
    return np.stack(out, axis=1)


def mae_sincos(embed_dim: int, grid_size: int) -> np.ndarray:
    """MAE's util/pos_embed.py get_2d_sincos_pos_embed(..., cls_token=True), transcribed."""

    def one_d(dim: int, pos: np.ndarray) -> np.ndarray:
        omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32))
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)


def numpy_mae_loss(images: np.ndarray, prediction: np.ndarray, masked: np.ndarray, p: int, norm_pix: bool) -> float:
    target = numpy_patches(images.astype(np.float64), p)
    if norm_pix:
        target = (target - target.mean(-1, keepdims=True)) / np.sqrt(target.var(-1, ddof=1, keepdims=True) + 1e-6)
    mask = np.zeros(target.shape[:2])
    np.put_along_axis(mask, masked, 1.0, axis=1)
    per_patch = ((prediction - target) ** 2).mean(-1)
    return float((per_patch * mask).sum() / mask.sum())


# ---------------------------------------------------------------- the ViT


def test_patchify_and_unpatchify_match_a_numpy_reshape():
    x = torch.randn(2, 3, 8, 12)
    np.testing.assert_array_equal(patchify(x, 4).numpy(), numpy_patches(x.numpy(), 4))
    square = torch.randn(3, 3, 12, 12)
    np.testing.assert_array_equal(unpatchify(patchify(square, 4), 4).numpy(), square.numpy())
    with pytest.raises(ValueError, match="^patch:"):
        patchify(x, 5)


def test_sincos_positions_are_maes():
    np.testing.assert_allclose(sincos_position_embedding(16, 3).numpy(), mae_sincos(16, 3), atol=1e-6)
    vit = ViT(**TINY)
    np.testing.assert_allclose(vit.pos_embed[0].numpy(), mae_sincos(32, 4), atol=1e-6)
    assert "pos_embed" not in vit.state_dict(), "fixed positions are rebuilt, not stored"


def test_vit_shapes_pooling_and_registration():
    torch.manual_seed(0)
    vit = ViT(**TINY)
    x = torch.randn(5, 3, 16, 16)
    assert vit.out_dim == 32 and vit.num_patches == 16
    assert vit(x).shape == (5, 32)
    tokens = vit.forward_tokens(x)
    assert tokens.shape == (5, 17, 32)
    torch.testing.assert_close(vit(x), tokens[:, 0])
    mean = ViT(**TINY, pool="mean")
    mean.load_state_dict(vit.state_dict())
    torch.testing.assert_close(mean(x), tokens[:, 1:].mean(dim=1))
    default = plugins.get("backbones", "vit_tiny")()
    assert (default.out_dim, default.num_patches, len(default.blocks)) == (128, 64, 4)
    assert {"vit", "vit_small", "vit_tiny"} <= set(plugins.registry().entries["backbones"])


def test_encoder_attends_to_the_kept_patches_only():
    torch.manual_seed(0)
    vit = ViT(**TINY)
    x = torch.randn(2, 3, 16, 16)
    keep = torch.tensor([[0, 5, 10, 15], [3, 2, 1, 0]])
    before = vit.forward_tokens(x, keep)
    changed = x.clone()
    changed[0, :, 4:8, 0:4] += 3.0  # patch 4 of image 0: removed
    changed[1, :, 12:16, 12:16] = -1.0  # patch 15 of image 1: removed
    after = vit.forward_tokens(changed, keep)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    changed[0, :, 4:8, 4:8] += 3.0  # patch 5 of image 0: kept
    assert not torch.allclose(vit.forward_tokens(changed, keep)[0], before[0])
    torch.testing.assert_close(vit.forward_tokens(changed, keep)[1], before[1], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- masking and the loss


def test_masking_is_per_sample_and_deterministic():
    m = tiny_mae()
    batch = m.make_batch(DIGITS[:3], seed=5, epoch=2, indices=np.array([3, 7, 11]))
    assert batch["images"].shape == (3, 3, 16, 16)
    assert batch["keep"].shape == (3, 4) and batch["masked"].shape == (3, 12)
    for keep, masked in zip(batch["keep"].tolist(), batch["masked"].tolist()):
        assert sorted(keep + masked) == list(range(16))
    order = np.argsort(np.random.default_rng([5, 2, 7]).random(16))
    assert batch["keep"][1].tolist() == order[:4].tolist() and batch["masked"][1].tolist() == order[4:].tolist()
    other = m.make_batch(DIGITS[[2, 0]], seed=5, epoch=2, indices=np.array([11, 3]))
    for key in ("images", "keep", "masked"):
        torch.testing.assert_close(other[key][0], batch[key][2])
        torch.testing.assert_close(other[key][1], batch[key][0])
    assert not torch.equal(m.make_batch(DIGITS[:3], seed=5, epoch=3, indices=np.array([3, 7, 11]))["masked"], batch["masked"])
    assert masked_count(9, 0.75) == 7 and masked_count(64, 0.75) == 48
    keep, masked = random_masking(9, 7, seed=0, epoch=0, indices=np.arange(4))
    assert keep.shape == (4, 2) and masked.shape == (4, 7)


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_loss_is_the_masked_patches_mse(norm_pix_loss: bool):
    m = tiny_mae(norm_pix_loss=norm_pix_loss)
    batch = m.make_batch(DIGITS[:6], seed=0, epoch=0, indices=np.arange(6))
    out = m.training_step(batch)
    with torch.no_grad():
        prediction = m.reconstruct(batch["images"], batch["keep"]).double().numpy()
    expected = numpy_mae_loss(batch["images"].numpy(), prediction, batch["masked"].numpy(), 4, norm_pix_loss)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    m = tiny_mae()
    batch = m.make_batch(DIGITS[:32], seed=0, epoch=0, indices=np.arange(32))
    optimizer = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = fixed_batch_losses(m, batch, optimizer, 25, end_of_step=False)
    assert losses[-1] < 0.7 * losses[0], losses


def test_show_pastes_the_visible_patches_over_the_prediction():
    m = MAE(ViT(image_size=32, patch_size=4, dim=32, depth=1, heads=2), decoder_dim=16, decoder_depth=1, decoder_heads=2).eval()
    with torch.no_grad():
        rows = m.show(DIGITS[:3], seed=2)
    assert [r.title for r in rows] == ["original", "masked 75%", "reconstruction", "reconstruction + visible"]
    assert all(len(r.cells) == 3 for r in rows)
    _, masked = random_masking(64, 48, seed=2, epoch=0, indices=np.arange(3))
    original, visible, pasted = rows[0].cells[1][0], rows[1].cells[1][0], rows[3].cells[1][0]
    np.testing.assert_array_equal(original, DIGITS[1])
    for k in range(64):
        r, c = divmod(k, 8)
        cell = (slice(4 * r, 4 * r + 4), slice(4 * c, 4 * c + 4))
        if k in masked[1]:
            assert (visible[cell] == 128).all()
        else:
            np.testing.assert_array_equal(visible[cell], original[cell])
            assert np.abs(pasted[cell].astype(int) - original[cell]).max() <= 1


# ---------------------------------------------------------------- checkpoints, CLI, comparison


def test_checkpoint_round_trip_and_resume(tmp_path: Path):
    from selfsup.run.restore import load_method

    images = DIGITS[:32]
    config = TrainConfig(steps=4, batch_size=8, lr=1e-3, optimizer="adamw", warmup_steps=0, checkpoint_every=2, progress=False)
    metadata = {"backbone": {"name": "vit_tiny", "options": TINY}, "method_options": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}}
    straight = tiny_mae()
    Trainer(straight, images, config, tmp_path / "a", metadata=metadata).fit()
    killed = tiny_mae()

    def stop_after_the_checkpoint(step: int, total_steps: int) -> None:
        if step == 3:
            raise InterruptedError

    killed.on_step_end = stop_after_the_checkpoint  # type: ignore[method-assign]
    with pytest.raises(InterruptedError):
        Trainer(killed, images, config, tmp_path / "b", metadata=metadata).fit()
    resumed = tiny_mae()
    trainer = Trainer(resumed, images, config, tmp_path / "b", metadata=metadata)
    assert trainer.resume() and trainer.step == 2
    trainer.fit()
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)
    loaded, _ = load_method(tmp_path / "a" / "checkpoint.pt")
    assert isinstance(loaded, MAE) and loaded.num_masked == 12
    batch = straight.make_batch(images[:4], seed=9, epoch=0, indices=np.arange(4))
    torch.testing.assert_close(loaded.training_step(batch)["loss"], straight.training_step(batch)["loss"])


def test_cli_trains_exports_and_shows_mae_on_vit_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run = tmp_path / "run"
    args = ["train", "--method", "mae", "--backbone", "vit_tiny", "--steps", "1", "--batch-size", "8", "--out", str(run), "--quiet"]
    assert main(args) == 0
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "vit.pt")]) == 0
    vit = plugins.get("backbones", "vit_tiny")()
    vit.load_state_dict(torch.load(tmp_path / "vit.pt")["state_dict"])
    assert main(["show", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "show.png"), "--count", "2"]) == 0
    assert (tmp_path / "show.png").exists()
    bad = ["train", "--method", "mae", "--backbone", "small_resnet", "--steps", "1", "--out", str(tmp_path / "bad"), "--quiet"]
    assert main(bad) == 2
    assert "backbone: MAE encodes the visible patches only" in capsys.readouterr().err
    # without --backbone, the registered recipe brings the ViT
    assert main(["train", "--method", "mae", "--steps", "1", "--batch-size", "8", "--out", str(tmp_path / "recipe"), "--quiet"]) == 0
    assert torch.load(tmp_path / "recipe" / "checkpoint.pt", weights_only=True)["metadata"]["backbone"]["name"] == "vit_tiny"


def test_compare_probes_mae_against_a_random_vit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from selfsup.experiments import compare as harness

    decoder = {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}
    recipe = harness.Recipe("mae", decoder, backbone="vit_tiny", backbone_options={"dim": 32, "depth": 1, "heads": 2})
    monkeypatch.setattr(harness, "recipe_for", lambda name: recipe)
    config = harness.CompareConfig(steps=2, batch_size=16, width=4, shots=(10,), label_seeds=(0,), warmup_steps=0)
    report = harness.compare(tmp_path, ["mae"], config, progress=False)
    baseline = "random init (vit_tiny, depth=1, dim=32, heads=2)"
    assert list(report["results"]) == [harness.RANDOM_INIT, baseline, "mae"]
    results = report["results"]
    assert results["mae"]["pretraining"]["baseline"] == baseline
    run = json.loads(json.dumps(report))["results"]
    assert run == json.loads((tmp_path / "compare.json").read_text())["results"]
    state = torch.load(tmp_path / "runs" / "mae" / "checkpoint.pt", weights_only=False)
    assert state["metadata"]["backbone"] == {"name": "vit_tiny", "options": {"dim": 32, "depth": 1, "heads": 2}}
    delta = results["mae"]["linear"]["10"]["mean"] - results[baseline]["linear"]["10"]["mean"]
    row = next(line for line in (tmp_path / "compare.md").read_text().splitlines() if line.startswith("| mae |"))
    assert f"| {delta:+.3f} |" in row
    assert (harness.baseline_name(), harness.baseline_name(in_channels=1)) == (harness.RANDOM_INIT, harness.RANDOM_INIT_L)
    assert harness.baseline_name("vit_tiny") == "random init (vit_tiny)"


# ---------------------------------------------------------------- bad configuration


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: tiny_mae(mask_ratio=0.0), "mask_ratio"),
        (lambda: tiny_mae(mask_ratio=1.0), "mask_ratio"),
        (lambda: tiny_mae(mask_ratio=1.5), "mask_ratio"),
        (lambda: tiny_mae(mask_ratio=0.02), "mask_ratio"),  # round(0.02 · 16) = 0 masked patches
        (lambda: tiny_mae(decoder_dim=0), "decoder_dim"),
        (lambda: tiny_mae(decoder_depth=0), "decoder_depth"),
        (lambda: tiny_mae(decoder_heads=3), "decoder_heads"),
        (lambda: tiny_mae(min_scale=0.0), "min_scale"),
        (lambda: MAE(small_resnet(width=4)), "backbone"),
        (lambda: MAE(ViT(**{**TINY, "in_channels": 1})), "backbone"),
        (lambda: ViT(**{**TINY, "image_size": 18}), "image_size"),
        (lambda: ViT(**{**TINY, "patch_size": 0}), "patch_size"),
        (lambda: ViT(**{**TINY, "dim": 0}), "dim"),
        (lambda: ViT(**{**TINY, "dim": 30}), "dim"),
        (lambda: ViT(**{**TINY, "depth": 0}), "depth"),
        (lambda: ViT(**{**TINY, "heads": 3}), "heads"),
        (lambda: ViT(**{**TINY, "pool": "max"}), "pool"),
        (lambda: ViT(**TINY)(torch.zeros(1, 3, 32, 32)), "images"),
        (lambda: tiny_mae().make_batch(DIGITS[:2, :, :, 0], seed=0, epoch=0, indices=np.arange(2)), "images"),
    ],
)
def test_bad_options_name_the_argument(build, argument: str):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        build()
