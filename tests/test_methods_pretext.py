"""Pretext-task methods: batches against the ops, losses against independent formulas, learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup.ops as ops
from selfsup import plugins
from selfsup.data import load_digits
from selfsup.models.inputs import images_to_tensor
from selfsup.models import small_resnet
from selfsup.training import TrainConfig, Trainer

DIGITS = load_digits().train.images[:192]


def method(name: str, **options):
    torch.manual_seed(0)
    return plugins.get("methods", name)(small_resnet(width=8), **options)


def train(m, tmp_path: Path, steps: int = 30, lr: float = 0.05, optimizer: str = "sgd"):
    config = TrainConfig(steps=steps, batch_size=32, lr=lr, optimizer=optimizer, log_every=5, progress=False, warmup_steps=2)
    return Trainer(m, DIGITS, config, tmp_path).fit()


def numpy_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return float(-log_p[np.arange(len(targets)), targets].mean())


def test_jigsaw_batch_is_the_ops_puzzle_tile_by_tile():
    m = method("jigsaw", permutations=10, cell=10, patch=9, hidden=32)
    indices = np.arange(4)
    batch = m.make_batch(DIGITS[:4], seed=3, epoch=1, indices=indices)
    puzzle = ops.jigsaw(DIGITS[:4], m.task.permutation_set, 3, 10, 9, standardize=True, seed=3, epoch=1, indices=indices)
    assert batch["tiles"].shape == (36, 3, 9, 9)
    torch.testing.assert_close(batch["tiles"][3 * 9], torch.from_numpy(puzzle.tiles[3, 0]).permute(2, 0, 1))
    np.testing.assert_array_equal(batch["targets"].numpy(), puzzle.labels)
    out = m.training_step(batch)
    with torch.no_grad():
        logits = m.classifier(m.backbone(batch["tiles"]).reshape(4, -1)).numpy()
    assert out["loss"].item() == pytest.approx(numpy_cross_entropy(logits, puzzle.labels), rel=1e-5)


def test_jigsaw_learns(tmp_path: Path):
    log = train(method("jigsaw", permutations=10, cell=10, patch=9, hidden=64), tmp_path, steps=40, lr=1e-3, optimizer="adamw")
    assert log[-1]["loss"] < log[0]["loss"] - 0.3


def test_relative_batch_interleaves_centre_and_neighbour():
    m = method("relative_position", patch=8, gap=2, jitter=1, drop_colors=False, hidden=32)
    batch = m.make_batch(DIGITS[:3], seed=0, epoch=0, indices=np.arange(3))
    pairs = ops.relative_patches(DIGITS[:3], 8, 2, 1, seed=0)
    torch.testing.assert_close(batch["pairs"][4], images_to_tensor(pairs.centre[2:3])[0])
    torch.testing.assert_close(batch["pairs"][5], images_to_tensor(pairs.neighbour[2:3])[0])
    np.testing.assert_array_equal(batch["targets"].numpy(), pairs.labels)


def test_relative_learns(tmp_path: Path):
    log = train(method("relative_position", patch=8, gap=2, jitter=1, drop_colors=False, hidden=64), tmp_path, steps=40, lr=1e-3, optimizer="adamw")
    assert log[-1]["loss"] < log[0]["loss"] - 0.2


def test_autoencoder_loss_is_the_mean_squared_error():
    m = method("autoencoder", code=16)
    batch = m.make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))
    m.eval()
    out = m.training_step(batch)
    with torch.no_grad():
        rec = m.decoder(m.to_code(m.backbone(batch["images"]))).numpy()
    x = batch["images"].numpy()
    assert out["loss"].item() == pytest.approx(float(((rec - x) ** 2).mean()), rel=1e-5)


def test_vae_kl_matches_torch_distributions():
    m = method("vae", code=8, beta=2.0)
    batch = m.make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))
    m.eval()
    torch.manual_seed(5)
    out = m.training_step(batch)
    with torch.no_grad():
        mu, logvar = m.encode(batch["images"])
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = torch.distributions.kl_divergence(posterior, prior).sum(1).mean() / (3 * 32 * 32)
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["loss"], out["reconstruction"] + 2.0 * kl)


def test_denoising_noise_is_deterministic_and_applied():
    m = method("dae", code=8, noise=0.3)
    a = m.make_batch(DIGITS[:2], seed=1, epoch=0, indices=np.arange(2))
    b = m.make_batch(DIGITS[:2], seed=1, epoch=0, indices=np.arange(2))
    torch.testing.assert_close(a["noisy"], b["noisy"])
    assert float((a["noisy"] - a["images"]).std()) == pytest.approx(0.3, rel=0.05)


@pytest.mark.parametrize("name", ["autoencoder", "dae", "vae"])
def test_autoencoders_learn(name: str, tmp_path: Path):
    log = train(method(name, code=32), tmp_path, steps=30, lr=2e-3, optimizer="adamw")
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]


def test_bad_configuration():
    with pytest.raises(ValueError, match="variant"):
        method("autoencoder", variant="sparse")
    with pytest.raises(ValueError, match="image_size"):
        method("autoencoder", image_size=30)
    with pytest.raises(ValueError, match="beta"):
        method("vae", beta=-1.0)
    with pytest.raises(ValueError, match="permutations"):
        method("jigsaw", permutations=1)
    with pytest.raises(ValueError, match="images"):
        method("autoencoder", image_size=16).make_batch(DIGITS[:2], seed=0, epoch=0, indices=np.arange(2))
    with pytest.raises(ValueError, match="patch"):
        method("jigsaw", permutations=4).make_batch(DIGITS[:2], seed=0, epoch=0, indices=np.arange(2))
    with pytest.raises(ValueError, match="backbone"):
        plugins.get("methods", "rotnet")(torch.nn.Linear(2, 2))


def test_bigan_losses_and_gradient_routing():
    m = method("bigan", latent=16)
    batch = m.make_batch(DIGITS[:8], seed=0, epoch=0, indices=np.arange(8))
    m.eval()
    loss_d, loss_eg = m.losses(batch)
    with torch.no_grad():
        ex, gz = m.encode(batch["images"]), m.generator(batch["noise"])
        d_real = torch.sigmoid(m.discriminator(batch["images"], ex))
        d_fake = torch.sigmoid(m.discriminator(gz, batch["noise"]))
    torch.testing.assert_close(loss_d, -(d_real.log().mean() + (1 - d_fake).log().mean()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_eg, -((1 - d_real).log().mean() + d_fake.log().mean()), rtol=1e-5, atol=1e-6)
    # L_D moves only D; L_EG moves only E and G
    m.zero_grad()
    loss_d.backward(retain_graph=True)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in [*m.backbone.parameters(), *m.generator.parameters()])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.discriminator.parameters())
    m.zero_grad()
    loss_eg.backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.generator.parameters())


def test_bigan_trains_without_diverging(tmp_path: Path):
    log = train(method("bigan", latent=16), tmp_path, steps=20, lr=2e-4, optimizer="adamw")
    assert all(np.isfinite(r["loss"]) for r in log)
    assert 0.05 < log[-1]["loss_d"] < 5.0


@pytest.mark.parametrize(
    "name, options, rows",
    [
        ("rotnet", {}, 3),
        ("jigsaw", {"permutations": 10, "cell": 10, "patch": 9, "hidden": 16}, 3),
        ("relative_position", {"patch": 8, "gap": 2, "jitter": 1, "drop_colors": False, "hidden": 16}, 1),
        ("vae", {"code": 8}, 3),
        ("autoencoder", {"code": 8}, 2),
        ("bigan", {"latent": 8}, 3),
    ],
)
def test_every_method_shows_its_predictions(name: str, options: dict, rows: int):
    m = method(name, **options).eval()
    with torch.no_grad():
        shown = m.show(DIGITS[:3], seed=0)
    assert len(shown) == rows
    for row in shown:
        assert row.cells and all(image.dtype == np.uint8 and image.ndim == 3 for image, _ in row.cells)


def test_images_become_contiguous_standardised_nchw():
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    tensor = images_to_tensor(images)
    mean, std = 0.5, 0.25  # CHANNEL_MEAN, CHANNEL_STD
    expected = ((images / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=1e-5, atol=1e-5)
    # a channels-last view would reach torch 2.15's faulty oneDNN convolution backward
    assert tensor.is_contiguous() and tensor.shape == (3, 3, 5, 7)
