"""CMC and PIRL: losses against numpy transcriptions of the papers' equations (CMC's full graph over
three views, PIRL's λ mixture), the Lab views, the memory banks' momentum update and checkpointing,
exact resume, learning on a fixed batch, bad options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2lab

from selfsup import plugins
from selfsup.data import load_digits
from selfsup.methods.cmc import CMC, view_encoder
from selfsup.methods.pirl import PIRL
from selfsup.models import small_resnet
from selfsup.training import TrainConfig, Trainer
from conftest import fixed_batch_losses

DIGITS = load_digits(size=16).train.images[:32]
TINTS = np.random.default_rng(0).integers(40, 256, (len(DIGITS), 1, 1, 3))
COLOURED = (DIGITS[..., :1].astype(np.int64) * TINTS // 255).astype(np.uint8)
"""Digits drawn in one random colour each: a lightness and a chrominance to split."""


def cmc(**options) -> CMC:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    options = {"embedding_dim": 8, "negatives": 16, **options}
    method = plugins.get("methods", "cmc")(small_resnet(width=4, in_channels=1), **options)
    assert isinstance(method, CMC)
    return method


def pirl(**options) -> PIRL:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    options = {"embedding_dim": 8, "negatives": 16, "cell": 5, "patch": 4, **options}
    method = plugins.get("methods", "pirl")(small_resnet(width=4), **options)
    assert isinstance(method, PIRL)
    return method


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def bank_nce(anchors: np.ndarray, bank: np.ndarray, indices: np.ndarray, negatives: np.ndarray, temperature: float) -> float:
    """Mean over anchors of −log softmax([a·bank[own], a·bank[negatives]] / τ)[0]."""
    a = unit(anchors)
    logits = np.concatenate([(a * bank[indices]).sum(1, keepdims=True), a @ bank[negatives].T], axis=1) / temperature
    top = logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits - top).sum(1)) + top[:, 0] - logits[:, 0]))


def drawn(size: int, count: int, step: int) -> np.ndarray:
    """The bank rows drawn at ``step``: uniform, from a generator seeded by the step."""
    return torch.randint(0, size, (count,), generator=torch.Generator().manual_seed(step)).numpy()


# ---------------------------------------------------------------- CMC


def test_cmc_views_are_lab_channels_of_one_crop():
    m = cmc(views=("L", "ab", "gradient"))
    indices = np.arange(8)
    batch = m.make_batch(COLOURED[:8], seed=3, epoch=1, indices=indices)
    crops = m.view_pipeline(16)(COLOURED[:8], seed=3, epoch=1, indices=indices)[0].permute(0, 2, 3, 1).numpy()
    assert crops.dtype == np.uint8 and not np.array_equal(crops, COLOURED[:8]), "a random crop, not the image"
    lab = rgb2lab(crops)
    np.testing.assert_allclose(batch["L"][:, 0].numpy(), (lab[..., 0] / 100 - 0.5) / 0.25, atol=2e-4)
    np.testing.assert_allclose(batch["ab"].permute(0, 2, 3, 1).numpy(), lab[..., 1:] / 50, atol=2e-4)
    lightness = lab[..., 0] / 100
    sobel = np.stack([np.hypot(ndimage.sobel(image, 0, mode="nearest"), ndimage.sobel(image, 1, mode="nearest")) / 8 for image in lightness])
    np.testing.assert_allclose(batch["gradient"][:, 0].numpy(), sobel / 0.25, atol=2e-4)
    assert batch["indices"].tolist() == indices.tolist()
    again = m.make_batch(COLOURED[:8], seed=3, epoch=1, indices=indices)
    assert all(torch.equal(batch[k], again[k]) for k in batch)


def test_cmc_full_graph_loss_over_three_views_and_momentum_banks():
    m = cmc(views=("L", "ab", "gradient"), temperature=0.1)
    m.bind_dataset(20)
    m.on_step_end(2, 10)
    indices = np.array([3, 7, 11, 0, 19, 5])
    batch = m.make_batch(COLOURED[:6], seed=0, epoch=0, indices=indices)
    before = {v: m.bank(v).bank.clone().numpy() for v in m.view_names}
    out = m.training_step(batch)
    with torch.no_grad():
        z = {
            "L": unit(m.heads["L"](m.backbone(batch["L"])).numpy()),
            "ab": unit(m.heads["ab"](m.view_encoders["ab"](batch["ab"])).numpy()),
            "gradient": unit(m.heads["gradient"](m.view_encoders["gradient"](batch["gradient"])).numpy()),
        }
    negatives = drawn(20, 16, step=2)
    expected = sum(
        bank_nce(z[i], before[j], indices, negatives, 0.1) for i in z for j in z if i != j
    )
    assert len([(i, j) for i in z for j in z if i != j]) == 6
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    for v in z:
        after = before[v].copy()
        after[indices] = unit(0.5 * before[v][indices] + 0.5 * z[v])
        np.testing.assert_allclose(m.bank(v).bank.numpy(), after, atol=1e-6)


def test_cmc_two_views_is_the_symmetric_loss():
    m = cmc(temperature=0.07)
    m.bind_dataset(8)
    batch = m.make_batch(COLOURED[:8], seed=1, epoch=0, indices=np.arange(8))
    before = {v: m.bank(v).bank.clone().numpy() for v in ("L", "ab")}
    loss = m.training_step(batch)["loss"].item()
    with torch.no_grad():
        z1 = m.heads["L"](m.backbone(batch["L"])).numpy()
        z2 = m.heads["ab"](m.view_encoders["ab"](batch["ab"])).numpy()
    negatives = drawn(8, 16, step=0)
    expected = bank_nce(z1, before["ab"], np.arange(8), negatives, 0.07) + bank_nce(z2, before["L"], np.arange(8), negatives, 0.07)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_view_encoder_is_a_fresh_copy_with_its_own_stem():
    torch.manual_seed(0)
    backbone = small_resnet(width=4, in_channels=1)
    encoder = view_encoder(backbone, 2)
    assert encoder.stem[0].in_channels == 2 and backbone.stem[0].in_channels == 1
    assert encoder(torch.zeros(2, 2, 8, 8)).shape == (2, backbone.out_dim)
    later = dict(encoder.named_parameters())
    assert not torch.equal(later["stages.0.conv1.weight"], dict(backbone.named_parameters())["stages.0.conv1.weight"])
    with pytest.raises(ValueError, match="backbone: .*nn.Conv2d"):
        view_encoder(torch.nn.Linear(3, 3), 2)


def test_cmc_banks_survive_a_checkpoint_and_resume_exactly(tmp_path: Path):
    config = TrainConfig(steps=3, batch_size=16, lr=0.05, log_every=1, progress=False, checkpoint_every=2, warmup_steps=0)
    straight = cmc()
    Trainer(straight, COLOURED, config, tmp_path / "straight").fit()

    class Interrupted(CMC):
        def on_step_end(self, step: int, total_steps: int) -> None:
            super().on_step_end(step, total_steps)
            if step == 3:
                raise KeyboardInterrupt

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        Trainer(Interrupted(small_resnet(width=4, in_channels=1), embedding_dim=8, negatives=16), COLOURED, config, tmp_path / "resumed").fit()
    state = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    restored = cmc()
    restored.bind_dataset(len(COLOURED))
    restored.load_state_dict(state["model"])
    assert int(restored.steps) == 2 and state["step"] == 2
    fresh = cmc()
    fresh.bind_dataset(len(COLOURED))
    assert not torch.equal(restored.bank("ab").bank, fresh.bank("ab").bank)
    resumed = cmc()
    trainer = Trainer(resumed, COLOURED, config, tmp_path / "resumed")
    assert trainer.resume()
    torch.testing.assert_close(resumed.bank("L").bank, restored.bank("L").bank, rtol=0, atol=0)
    trainer.fit()
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------- PIRL


def test_pirl_mixes_the_jigsaw_and_image_terms_with_lambda():
    m = pirl(jigsaw_weight=0.3, temperature=0.2)
    m.bind_dataset(12)
    m.on_step_end(5, 10)
    indices = np.array([4, 0, 9, 11, 2, 7])
    batch = m.make_batch(DIGITS[:6], seed=2, epoch=0, indices=indices)
    assert batch["image"].shape == (6, 3, 16, 16) and batch["tiles"].shape == (54, 3, 4, 4)
    bank = m.bank("image").bank.clone().numpy()
    out = m.training_step(batch)
    with torch.no_grad():
        f = m.image_head(m.backbone(batch["image"])).numpy()
        per_tile = m.tile_head(m.backbone(batch["tiles"])).numpy()
        w, b = m.jigsaw_head.weight.numpy(), m.jigsaw_head.bias.numpy()
    g = np.stack([np.concatenate([per_tile[9 * n + t] for t in range(9)]) @ w.T + b for n in range(6)])
    negatives = drawn(12, 16, step=5)
    jigsaw_term = bank_nce(g, bank, indices, negatives, 0.2)
    image_term = bank_nce(f, bank, indices, negatives, 0.2)
    assert out["jigsaw_nce"].item() == pytest.approx(jigsaw_term, rel=1e-5)
    assert out["image_nce"].item() == pytest.approx(image_term, rel=1e-5)
    assert out["loss"].item() == pytest.approx(0.3 * jigsaw_term + 0.7 * image_term, rel=1e-5)
    expected = bank.copy()
    expected[indices] = unit(0.5 * bank[indices] + 0.5 * unit(f))
    np.testing.assert_allclose(m.bank("image").bank.numpy(), expected, atol=1e-6)


def test_pirl_bank_survives_a_checkpoint(tmp_path: Path):
    m = pirl()
    Trainer(m, DIGITS, TrainConfig(steps=2, batch_size=16, lr=0.05, progress=False, checkpoint_every=2), tmp_path).fit()
    restored = pirl()
    restored.bind_dataset(len(DIGITS))
    assert not torch.equal(restored.bank("image").bank, m.bank("image").bank)
    restored.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"])
    torch.testing.assert_close(restored.bank("image").bank, m.bank("image").bank, rtol=0, atol=0)
    assert int(restored.steps) == 2
    unbound = pirl()  # load_state_dict binds to the checkpoint's bank size first
    unbound.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"])
    torch.testing.assert_close(unbound.bank("image").bank, m.bank("image").bank, rtol=0, atol=0)


# ---------------------------------------------------------------- learning and options


@pytest.mark.parametrize("make, images", [(cmc, COLOURED), (pirl, DIGITS)], ids=["cmc", "pirl"])
def test_a_few_steps_reduce_the_loss(make, images):  # type: ignore[no-untyped-def]
    # on one fixed batch, with the banks' own momentum updates and fresh negatives every step
    m = make(negatives=64)
    m.bind_dataset(len(images))
    batch = m.make_batch(images, seed=1, epoch=0, indices=np.arange(len(images)))
    optimizer = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = fixed_batch_losses(m, batch, optimizer, 10)
    assert losses[-1] < 0.8 * losses[0], losses


def test_training_before_binding_the_dataset_says_so():
    m = cmc()
    batch = m.make_batch(COLOURED[:4], seed=0, epoch=0, indices=np.arange(4))
    with pytest.raises(RuntimeError, match="bind_dataset"):
        m.training_step(batch)


@pytest.mark.parametrize(
    "make, options, pattern",
    [
        (cmc, {"temperature": 0.0}, "temperature: expected > 0"),
        (cmc, {"views": ("L",)}, "views: expected at least 2"),
        (cmc, {"views": "L,depth"}, "views: unknown view 'depth'"),
        (cmc, {"views": ("ab", "L")}, "views: the first view"),
        (cmc, {"views": ("L", "ab", "L")}, "views: expected distinct"),
        (cmc, {"negatives": 0}, "negatives: expected > 0"),
        (cmc, {"bank_momentum": 1.0}, r"bank_momentum: expected a value in \[0, 1\)"),
        (cmc, {"crop_scale": (0.5, 0.2)}, "crop_scale"),
        (pirl, {"jigsaw_weight": 1.5}, r"jigsaw_weight: expected a value in \[0, 1\]"),
        (pirl, {"jigsaw_weight": -0.1}, "jigsaw_weight"),
        (pirl, {"temperature": -0.07}, "temperature: expected > 0"),
        (pirl, {"embedding_dim": 0}, "embedding_dim: expected > 0"),
        (pirl, {"permutations": 0}, "permutations"),
    ],
)
def test_bad_options(make, options, pattern):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=pattern):
        make(**options)


def test_cmc_refuses_an_rgb_backbone():
    with pytest.raises(ValueError, match="backbone: .*1 channel"):
        CMC(small_resnet(width=4))
