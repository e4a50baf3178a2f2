"""SimCLR: views from the native recipe, the loss against a numpy NT-Xent, learning, bad options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup import plugins
from selfsup.data import load_digits
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD
from selfsup.methods.simclr import SimCLR, positive_top1
from selfsup.models import small_resnet
from selfsup.transforms import Normalize, simclr

DIGITS = load_digits().train.images[:128]


def method(**options) -> SimCLR:
    torch.manual_seed(0)
    return plugins.get("methods", "simclr")(small_resnet(width=8), **options)


def numpy_multi_positive_nt_xent(z: np.ndarray, temperature: float) -> float:
    """z (V, N, D): every other view of the same image is a positive (NT-Xent for V = 2)."""
    views, n, _ = z.shape
    flat = z.reshape(views * n, -1).astype(np.float64)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    logits = flat @ flat.T / temperature
    np.fill_diagonal(logits, -np.inf)
    log_p = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    instance = np.tile(np.arange(n), views)
    positive = (instance[:, None] == instance[None, :]) & ~np.eye(views * n, dtype=bool)
    return float(-(np.where(positive, log_p, 0).sum(1) / positive.sum(1)).mean())


def test_views_are_the_paper_recipe_normalised_like_the_probe():
    m = method()
    batch = m.make_batch(DIGITS[:6], seed=4, epoch=2, indices=np.arange(10, 16))
    recipe = simclr(32, normalize=Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD), blur=False)
    expected = recipe(DIGITS[:6], seed=4, epoch=2, indices=np.arange(10, 16))
    assert batch["views"].shape == (2, 6, 3, 32, 32)
    torch.testing.assert_close(batch["views"], torch.stack(expected))
    steps = [type(t).__name__ for t in m.view_pipeline(32).views[0].transforms]
    assert "GaussianBlur" not in str(m.view_pipeline(32).views[0].transforms), "no blur for 32 px (SimCLR Appendix B.9)"
    assert steps[:2] == ["RandomResizedCrop", "RandomHorizontalFlip"]
    assert "GaussianBlur" in str(m.view_pipeline(96).views[0].transforms)


@pytest.mark.parametrize("views", [2, 3])
def test_loss_is_nt_xent_of_the_projections(views: int):
    m = method(views=views, temperature=0.3)
    batch = m.make_batch(DIGITS[:8], seed=0, epoch=0, indices=np.arange(8))
    out = m.training_step(batch)
    with torch.no_grad():
        z = m.project(batch["views"]).numpy()
    assert out["loss"].item() == pytest.approx(numpy_multi_positive_nt_xent(z, 0.3), rel=1e-5)
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())


def test_positive_top1_matches_brute_force():
    z = torch.randn(2, 37, 5)
    z[1, :20] = z[0, :20] + 0.01 * torch.randn(20, 5)
    flat = torch.nn.functional.normalize(z.flatten(0, 1), dim=1).numpy()
    similarity = flat @ flat.T
    np.fill_diagonal(similarity, -np.inf)
    partner = np.r_[np.arange(37, 74), np.arange(37)]
    expected = (similarity.argmax(1) == partner).mean()
    assert positive_top1(z, chunk=16).item() == pytest.approx(expected)
    assert expected >= 40 / 74


def test_training_separates_the_views():
    # fresh augmentations every step make 25-step losses noisy at this size (the demo's probe shows
    # the learning); on one fixed batch the loss and the positive's rank must improve clearly
    m = method()
    batch = m.make_batch(DIGITS[:32], seed=0, epoch=0, indices=np.arange(32))
    optimizer = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    log = []
    for _ in range(15):
        out = m.training_step(batch)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        log.append({k: float(v.detach()) for k, v in out.items()})
    assert log[-1]["loss"] < 0.8 * log[0]["loss"], [r["loss"] for r in log]
    assert log[-1]["positive_top1"] > log[0]["positive_top1"] + 0.3


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"views": 1}, "views: expected at least 2"),
        ({"temperature": 0.0}, "temperature: expected > 0"),
        ({"image_size": 4}, "image_size: expected at least 8"),
        ({"color_strength": -1.0}, "color_strength"),
        ({"head_layers": 0}, "layers: expected at least 1"),
    ],
)
def test_bad_options(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        method(**options)


def test_grey_images_are_refused():
    with pytest.raises(ValueError, match=r"images: expected uint8 \(N, H, W, 3\)"):
        method().make_batch(DIGITS[:2, :, :, :1], seed=0, epoch=0, indices=np.arange(2))
