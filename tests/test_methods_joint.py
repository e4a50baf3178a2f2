"""MoCo v1/v2/v3 (with Shuffling and split BatchNorm), BYOL, SimSiam, Barlow Twins and VICReg: losses against numpy transcriptions of the
papers' equations, momentum schedules, the MoCo queue's edge cases, learning, bad options."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup.transforms as T
from selfsup import plugins
from selfsup.data import load_digits
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD
from selfsup.models.batch_shuffle import shuffle_permutation, shuffled_encode
from selfsup.losses.barlow_twins import barlow_twins_loss
from selfsup.models.momentum import ema_update, momentum_at
from selfsup.losses.similarity import off_diagonal
from selfsup.losses.vicreg import vicreg_terms
from selfsup.models import small_resnet
from selfsup.models.batchnorm import SplitBatchNorm
from selfsup.training import TrainConfig, Trainer
from conftest import fixed_batch_losses

DIGITS = load_digits().train.images[:96]


def method(name: str, **options):
    torch.manual_seed(0)
    return plugins.get("methods", name)(small_resnet(width=8), **options)


def batch_of(m, count: int = 8):
    return m.make_batch(DIGITS[:count], seed=1, epoch=0, indices=np.arange(count))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cross_entropy_first(logits: np.ndarray) -> float:
    """Mean over rows of −log softmax(row)[0] (the positive first)."""
    top = logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits - top).sum(1)) + top[:, 0] - logits[:, 0]))


def ctr(a: np.ndarray, b: np.ndarray, temperature: float) -> float:
    """InfoNCE of rows of ``a`` against all rows of ``b``, the positive on the diagonal."""
    logits = a @ b.T / temperature
    top = logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits - top).sum(1)) + top[:, 0] - np.diag(logits)))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (unit(a) * unit(b)).sum(-1)


# ---------------------------------------------------------------- shared pieces


def test_momentum_schedule_is_byols_cosine():
    assert momentum_at(0.996, 0, 100) == pytest.approx(0.996)
    assert momentum_at(0.996, 100, 100) == pytest.approx(1.0)
    assert momentum_at(0.996, 50, 100) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 2) + 1) / 2)


def test_ema_update_moves_parameters_and_copies_buffers():
    online, target = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        online.weight.fill_(2.0)
        target.weight.fill_(1.0)
        online.running_mean.fill_(5.0)
    ema_update(target, online, 0.9)
    torch.testing.assert_close(target.weight, torch.full((3,), 0.9 * 1.0 + 0.1 * 2.0))
    torch.testing.assert_close(target.running_mean, torch.full((3,), 5.0))


def test_methods_deep_copy_after_building_their_pipelines():
    m = method("simclr")
    batch_of(m)
    clone = copy.deepcopy(m)
    torch.testing.assert_close(batch_of(clone)["views"], batch_of(m)["views"])


def test_off_diagonal_lists_every_entry_but_the_diagonal():
    m = torch.arange(16.0).view(4, 4)
    expected = [m[i, j].item() for i in range(4) for j in range(4) if i != j]
    assert off_diagonal(m).tolist() == expected


# ---------------------------------------------------------------- loss formulas


def numpy_barlow_twins(z1: np.ndarray, z2: np.ndarray, lam: float) -> float:
    a = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + 1e-5)
    b = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + 1e-5)
    c = a.T @ b / len(z1)
    return float(((1 - np.diag(c)) ** 2).sum() + lam * (c**2).sum() - lam * (np.diag(c) ** 2).sum())


def numpy_vicreg(z1: np.ndarray, z2: np.ndarray, variance_reduction: str = "mean") -> dict[str, float]:
    """The authors' code (facebookresearch/vicreg main.py): std_loss = mean(relu(1 - std_x)) / 2 +
    mean(relu(1 - std_y)) / 2; eq. 6 of the paper sums the two hinges."""
    n, d = z1.shape
    out = {"invariance": float(((z1 - z2) ** 2).mean()), "variance": 0.0, "covariance": 0.0}
    share = 0.5 if variance_reduction == "mean" else 1.0
    for z in (z1, z2):
        out["variance"] += share * float(np.maximum(0, 1 - np.sqrt(z.var(0, ddof=1) + 1e-4)).mean())
        cov = np.cov(z, rowvar=False)
        out["covariance"] += float(((cov**2).sum() - (np.diag(cov) ** 2).sum()) / d)
    return out


def test_barlow_twins_loss_matches_the_paper():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(12, 6)), rng.normal(size=(12, 6))
    loss, _ = barlow_twins_loss(torch.from_numpy(z1), torch.from_numpy(z2), 0.0051)
    assert loss.item() == pytest.approx(numpy_barlow_twins(z1, z2, 0.0051), rel=1e-9)
    m = method("barlow_twins", projection_dim=16)
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        z = m.encode(lambda x: m.projector(m.backbone(x)), batch["views"]).double().numpy()
    assert out["loss"].item() == pytest.approx(numpy_barlow_twins(z[0], z[1], 5e-3), rel=1e-4)


def test_vicreg_terms_match_the_paper():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(10, 5)), rng.normal(size=(10, 5)) * 0.3
    for reduction in ("mean", "sum"):
        terms = vicreg_terms(torch.from_numpy(z1), torch.from_numpy(z2), variance_reduction=reduction)
        for key, value in numpy_vicreg(z1, z2, reduction).items():
            assert terms[key].item() == pytest.approx(value, rel=1e-9), (reduction, key)
    m = method("vicreg", projection_dim=16)
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        z = m.encode(lambda x: m.projector(m.backbone(x)), batch["views"]).double().numpy()
    expected = numpy_vicreg(z[0], z[1])
    assert out["loss"].item() == pytest.approx(25 * expected["invariance"] + 25 * expected["variance"] + expected["covariance"], rel=1e-4)


def test_byol_loss_predicts_the_other_views_target():
    m = method("byol", projection_dim=16)
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        p = m.encode(lambda x: m.predictor(m.projector(m.backbone(x))), batch["views"]).numpy()
        t = m.encode(lambda x: m.target_projector(m.target_backbone(x)), batch["views"]).numpy()
    expected = (2 - 2 * cosine(p[0], t[1]).mean()) + (2 - 2 * cosine(p[1], t[0]).mean())
    assert out["loss"].item() == pytest.approx(float(expected), rel=1e-5)
    out["loss"].backward()
    assert all(q.grad is None for q in m.target_backbone.parameters()), "the target gets no gradient"
    before = next(m.target_backbone.parameters()).clone()
    online = next(m.backbone.parameters()).detach().clone()
    m.on_step_end(1, 10)
    expected_momentum = momentum_at(0.996, 1, 10)
    torch.testing.assert_close(next(m.target_backbone.parameters()), expected_momentum * before + (1 - expected_momentum) * online)


def test_simsiam_loss_stops_the_gradient_of_the_target_branch():
    m = method("simsiam", projection_dim=16)
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        z = m.encode(lambda x: m.projector(m.backbone(x)), batch["views"])
        p = m.predictor(z.flatten(0, 1)).view_as(z).numpy()
    z = z.numpy()
    assert out["loss"].item() == pytest.approx(float(-0.5 * (cosine(p[0], z[1]).mean() + cosine(p[1], z[0]).mean())), rel=1e-5)
    # with stop-gradient, the loss's gradient w.r.t. z only comes through the predictor path
    zz = torch.from_numpy(z).requires_grad_(True)
    pp = m.predictor(zz.flatten(0, 1)).view_as(zz)
    loss = -0.5 * (torch.cosine_similarity(pp[0], zz[1].detach(), dim=-1).mean() + torch.cosine_similarity(pp[1], zz[0].detach(), dim=-1).mean())
    loss.backward()
    assert zz.grad is not None and torch.isfinite(zz.grad).all()


def test_moco_v2_contrasts_against_the_queue_then_enqueues():
    m = method("moco", queue_size=20, projection_dim=16, temperature=0.2)
    queue = m.queue.clone().numpy()
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        q = unit(m.encode(lambda x: m.head(m.backbone(x)), batch["views"])[0].numpy())
        k = unit(m.encode(lambda x: m.key_head(m.key_backbone(x)), batch["views"])[1].numpy())
    logits = np.concatenate([(q * k).sum(1, keepdims=True), q @ queue.T], axis=1) / 0.2
    assert out["loss"].item() == pytest.approx(cross_entropy_first(logits), rel=1e-5)
    np.testing.assert_allclose(m.queue[:8].numpy(), k, atol=1e-6)
    np.testing.assert_array_equal(m.queue[8:].numpy(), queue[8:])
    assert int(m.queue_pointer) == 8 and int(m.queue_filled) == 8


def test_moco_v3_is_symmetric_over_batch_negatives():
    m = method("moco", version=3, projection_dim=16, temperature=0.2)
    assert not hasattr(m, "queue")
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        q = m.encode(lambda x: m.head(m.backbone(x)), batch["views"])
        p = unit(m.encode(m.predictor, q).numpy())
        k = unit(m.encode(lambda x: m.key_head(m.key_backbone(x)), batch["views"]).numpy())

    assert out["loss"].item() == pytest.approx(2 * 0.2 * (ctr(p[0], k[1], 0.2) + ctr(p[1], k[0], 0.2)), rel=1e-5)


def test_nnclr_contrasts_support_neighbours_with_the_other_views_predictions():
    m = method("nnclr", support_size=12, projection_dim=8, temperature=0.1)
    support = m.support.clone().numpy()
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        z = unit(m.encode(lambda x: m.projector(m.backbone(x)), batch["views"]).numpy())
        p = unit(m.encode(m.predictor, torch.from_numpy(z)).numpy())
    neighbours = [support[np.argmax(z[v] @ support.T, axis=1)] for v in (0, 1)]

    assert out["loss"].item() == pytest.approx(0.5 * (ctr(neighbours[0], p[1], 0.1) + ctr(neighbours[1], p[0], 0.1)), rel=1e-4)
    np.testing.assert_allclose(m.support[:8].numpy(), z[0], atol=1e-6)
    assert int(m.support_pointer) == 8


def numpy_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dino_loss_centres_sharpens_and_crosses_views():
    m = method("dino", out_dim=32, bottleneck_dim=8, local_crops=2, local_size=16)
    with torch.no_grad():
        m.center.copy_(torch.linspace(-0.1, 0.1, 32))
    center = m.center.clone().numpy()
    batch = batch_of(m)
    assert batch["views"].shape == (2, 8, 3, 32, 32) and batch["local"].shape == (2, 8, 3, 16, 16)
    out = m.training_step(batch)
    with torch.no_grad():
        student = [m.encode(lambda x: m.head(m.backbone(x)), batch[key]).double().numpy() for key in ("views", "local")]
        t = m.encode(lambda x: m.teacher_head(m.teacher_backbone(x)), batch["views"]).double().numpy()
    s = np.concatenate(student)
    targets = numpy_softmax((t - center) / 0.04)
    log_student = np.log(numpy_softmax(s / 0.1))
    pairs = [(a, b) for a in range(2) for b in range(4) if a != b]
    expected = np.mean([-(targets[a] * log_student[b]).sum(-1).mean() for a, b in pairs])
    assert out["loss"].item() == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(m.center.numpy(), 0.9 * center + 0.1 * t.reshape(-1, 32).mean(0), rtol=1e-5, atol=1e-6)


def test_dino_loss_needs_two_views_and_matching_shapes():
    from selfsup.losses.dino import dino_loss

    center = torch.zeros(5)
    with pytest.raises(ValueError, match="need at least 2"):
        dino_loss(torch.randn(1, 4, 5), torch.randn(1, 4, 5), center, 0.1, 0.04)
    with pytest.raises(ValueError, match="G <= V"):
        dino_loss(torch.randn(2, 4, 5), torch.randn(3, 4, 5), center, 0.1, 0.04)
    assert torch.isfinite(dino_loss(torch.randn(2, 4, 5), torch.randn(1, 4, 5), center, 0.1, 0.04))


def test_dino_student_learns_the_teachers_distribution():
    # the full loss first rises while centering spreads the teacher (as in the paper's early
    # epochs), so learning is checked against a fixed teacher and centre
    m = method("dino", out_dim=64, bottleneck_dim=16, local_crops=0)
    optimizer = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    batch = batch_of(m, 32)
    losses = fixed_batch_losses(m, batch, optimizer, 10, end_of_step=False, after_loss=lambda: m.center.zero_())
    assert losses[-1] < 0.8 * losses[0], losses


def test_dino_teacher_temperature_warms_up_linearly():
    m = method("dino", out_dim=16, teacher_warmup=0.3)
    temperatures = []
    for step in (0, 15, 30, 60):
        m.on_step_end(step, 100)
        temperatures.append(m.teacher_temperature())
    assert temperatures == pytest.approx([0.04, 0.055, 0.07, 0.07])


def test_moco_queue_wraps_and_keeps_the_newest_keys():
    m = method("moco", queue_size=10, projection_dim=4)
    keys = [torch.full((4, 4), float(i)) for i in range(3)]
    for k in keys:
        m.enqueue(k)
    assert int(m.queue_pointer) == 2 and int(m.queue_filled) == 10
    expected = [2, 2] + [0] * 2 + [1] * 4 + [2] * 2  # the third batch wrapped over positions 8, 9, 0, 1
    assert m.queue[:, 0].tolist() == [float(v) for v in expected]
    # a batch larger than the queue keeps its newest K keys, in order
    big = torch.arange(13.0).repeat(4, 1).T
    m.enqueue(big)
    assert sorted(m.queue[:, 0].tolist()) == [float(v) for v in range(3, 13)]


def test_moco_warns_when_its_queue_holds_the_whole_dataset():
    with pytest.warns(UserWarning, match=r"queue_size: 64 keys for 64 training samples.*well below 64"):
        method("moco", queue_size=64, projection_dim=4).bind_dataset(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        method("moco", queue_size=63, projection_dim=4).bind_dataset(64)
        method("moco", version=3, projection_dim=4).bind_dataset(8)  # v3 has no queue


def test_moco_queue_survives_a_checkpoint(tmp_path: Path):
    m = method("moco", queue_size=50, projection_dim=8)
    config = TrainConfig(steps=3, batch_size=32, lr=0.05, log_every=1, progress=False, checkpoint_every=3)
    Trainer(m, DIGITS, config, tmp_path).fit()
    restored = method("moco", queue_size=50, projection_dim=8)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.queue, m.queue)
    assert int(restored.queue_pointer) == (3 * 32) % 50
    torch.testing.assert_close(restored.key_backbone.state_dict(), m.key_backbone.state_dict())


# ---------------------------------------------------------------- MoCo v1, Shuffling BatchNorm and its one-process stand-in


def test_moco_v1_is_a_linear_head_against_the_queue_at_tau_007():
    m = method("moco", version=1, queue_size=20)
    assert [type(layer) for layer in m.head.net] == [torch.nn.Linear] and m.head.net[0].out_features == 128
    assert (m.temperature, m.base_momentum, m.shuffle_bn) == (0.07, 0.999, True)
    batch = batch_of(m)
    views = T.mocov1(32, normalize=T.Normalize(CHANNEL_MEAN, CHANNEL_STD))(DIGITS[:8], seed=1, epoch=0, indices=np.arange(8))
    torch.testing.assert_close(batch["views"], torch.stack(views))
    # a first step queues keys of these images, so the second one's negatives are hard ones
    m.training_step(m.make_batch(DIGITS[:8], seed=2, epoch=0, indices=np.arange(8)))
    queue = m.queue.clone().numpy()
    out = m.training_step(batch)
    with torch.no_grad():
        q = unit(m.head(m.backbone(batch["views"].flatten(0, 1))).view(2, 8, -1)[0].numpy())
        k = unit(m.key_head(m.key_backbone(batch["views"].flatten(0, 1))).view(2, 8, -1)[1].numpy())
    logits = np.concatenate([(q * k).sum(1, keepdims=True), q @ queue.T], axis=1) / 0.07
    assert out["loss"].item() == pytest.approx(cross_entropy_first(logits), rel=1e-5)
    np.testing.assert_allclose(m.queue[8:16].numpy(), k, atol=1e-6)
    np.testing.assert_array_equal(m.queue[16:].numpy(), queue[16:])
    assert int(m.queue_pointer) == 16


def test_shuffle_permutes_the_batch_and_unshuffle_restores_its_order():
    permutation = shuffle_permutation(10, seed=3)
    assert sorted(permutation.tolist()) == list(range(10))
    assert torch.equal(permutation, shuffle_permutation(10, seed=3))
    assert not torch.equal(permutation, shuffle_permutation(10, seed=4))
    x = torch.randn(10, 3)
    seen = []

    def encoder(rows: torch.Tensor) -> torch.Tensor:
        seen.append(rows.clone())
        return rows * 2 + 1

    torch.testing.assert_close(shuffled_encode(encoder, x, seed=3), x * 2 + 1)
    torch.testing.assert_close(seen[0], x[permutation])


def test_split_batchnorm_keys_are_per_group_batchnorm_of_the_shuffled_batch():
    """bn_splits=2: queries are normalised within the groups i ≡ s (mod 2) of the batch, keys within
    those of the shuffled batch; reference: the same encoders with plain BatchNorm run on each group."""
    m = method("moco", version=1, queue_size=20, bn_splits=2, projection_dim=16)
    plain = method("moco", version=1, queue_size=20, projection_dim=16)
    assert any(isinstance(layer, SplitBatchNorm) for layer in m.key_backbone.modules())
    queue = m.queue.clone().numpy()
    batch = batch_of(m)
    views = batch["views"]
    out = m.training_step(batch)
    assert int(m.key_batches) == 1
    permutation = shuffle_permutation(8, seed=0)
    q = np.zeros((8, 16), np.float32)
    k = np.zeros((8, 16), np.float32)
    with torch.no_grad():
        for s in range(2):
            rows = torch.arange(s, 8, 2)
            query = copy.deepcopy(plain)
            q[rows] = query.encode(lambda x: query.head(query.backbone(x)), views[:, rows])[0].numpy()
            key = copy.deepcopy(plain)
            k[permutation[rows]] = key.encode(lambda x: key.key_head(key.key_backbone(x)), views[:, permutation[rows]])[1].numpy()
    q, k = unit(q), unit(k)
    logits = np.concatenate([(q * k).sum(1, keepdims=True), q @ queue.T], axis=1) / 0.07
    assert out["loss"].item() == pytest.approx(cross_entropy_first(logits), rel=1e-4)
    np.testing.assert_allclose(m.queue[:8].numpy(), k, atol=1e-5)


def test_moco_shuffle_state_survives_a_checkpoint(tmp_path: Path):
    m = method("moco", version=1, queue_size=50, projection_dim=8, bn_splits=2)
    config = TrainConfig(steps=2, batch_size=16, lr=0.05, log_every=1, progress=False, checkpoint_every=2)
    Trainer(m, DIGITS, config, tmp_path).fit()
    restored = method("moco", version=1, queue_size=50, projection_dim=8, bn_splits=2)
    restored.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"])
    assert int(restored.key_batches) == 2
    batch = batch_of(m, 16)
    torch.testing.assert_close(restored.training_step(batch)["loss"], m.training_step(batch)["loss"])
    torch.testing.assert_close(restored.queue, m.queue)


# ---------------------------------------------------------------- learning and options


@pytest.mark.parametrize(
    "name, options, lr",
    [
        ("moco", {"version": 3, "projection_dim": 16}, 0.05),
        ("barlow_twins", {"projection_dim": 32}, 0.05),
        # VICReg's loss is ~40 at init (25·invariance + 25·variance + covariance), ten times the
        # others', and so are its gradients: at 0.05 the fixed-batch loss oscillates without descending
        ("vicreg", {"projection_dim": 32}, 0.01),
        ("simsiam", {"projection_dim": 32}, 0.05),
        ("byol", {"projection_dim": 16}, 0.05),
        ("nnclr", {"projection_dim": 16, "support_size": 256}, 0.05),
    ],
)
def test_a_few_steps_reduce_the_loss(name: str, options: dict, lr: float):
    # on one fixed batch (fresh augmentations make 16-step losses noisy at this size), with the
    # method's own end-of-step updates (momentum targets, schedules)
    m = method(name, **options)
    batch = batch_of(m, 32)
    optimizer = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    losses = fixed_batch_losses(m, batch, optimizer, 15)
    assert losses[-1] < losses[0] - 0.1 * abs(losses[0]) - 0.02, losses


@pytest.mark.parametrize("options", [{}, {"version": 1, "bn_splits": 2}])
def test_moco_learns_to_find_the_key_among_the_queue(options: dict):
    # at this scale MoCo's loss first climbs while real keys replace the random queue (the paper's
    # curves do too), so learning is checked against a fixed queue and batch
    m = method("moco", queue_size=64, projection_dim=16, momentum=0.99, **options)
    m.enqueue(torch.nn.functional.normalize(torch.randn(64, 16, generator=torch.Generator().manual_seed(0)), dim=1))
    optimizer = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    batch = batch_of(m, 32)
    queue = m.queue.clone()
    losses = fixed_batch_losses(m, batch, optimizer, 10, total_steps=100, after_loss=lambda: m.queue.copy_(queue))
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize(
    "name, options, pattern",
    [
        ("moco", {"version": 4}, "version: expected 1, 2 or 3"),
        ("moco", {"queue_size": 0}, "queue_size: expected a positive int"),
        ("moco", {"temperature": -0.1}, "temperature: expected > 0"),
        ("moco", {"momentum": 1.5}, r"momentum: expected a value in \[0, 1\]"),
        ("moco", {"version": 3, "shuffle_bn": True}, "shuffle_bn: only versions 1 and 2"),
        ("moco", {"version": 3, "bn_splits": 2}, "bn_splits: only versions 1 and 2"),
        ("moco", {"bn_splits": 0}, "bn_splits: expected > 0"),
        ("moco", {"version": 1, "blur": True}, "blur: MoCo v1's augmentation has no blur"),
        ("byol", {"base_momentum": -0.1}, "base_momentum"),
        ("barlow_twins", {"redundancy_weight": 0.0}, "redundancy_weight: expected > 0"),
        ("vicreg", {"variance_weight": -1.0}, "variance_weight: expected >= 0"),
        ("vicreg", {"variance_reduction": "max"}, "variance_reduction: expected 'mean'"),
        ("simsiam", {"image_size": 2}, "image_size: expected at least 8"),
        ("nnclr", {"support_size": 0}, "support_size: expected > 0"),
        ("dino", {"center_momentum": 2.0}, r"center_momentum: expected a value in \[0, 1\]"),
        ("dino", {"student_temperature": 0.0}, "student_temperature: expected > 0"),
        ("dino", {"local_crops": -1}, "local_crops: expected >= 0"),
    ],
)
def test_bad_options(name: str, options: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        method(name, **options)


def test_losses_refuse_a_single_sample():
    with pytest.raises(ValueError, match="z1: .*at least 2 samples"):
        barlow_twins_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match="z2: expected the shape of z1"):
        vicreg_terms(torch.randn(4, 4), torch.randn(4, 3))


def test_byol_can_take_another_augmentation():
    # views of T.mocov2 (what SimSiam and MoCo v2 use), bit for bit, instead of BYOL's asymmetric pair
    m = method("byol", projection_dim=16, augmentation="mocov2")
    batch = batch_of(m, 8)
    normalize = T.Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD)
    expected = T.mocov2(32, normalize=normalize, blur=False)(DIGITS[:8], seed=1, epoch=0, indices=np.arange(8))
    torch.testing.assert_close(batch["views"], torch.stack(expected), rtol=0, atol=0)
    default = batch_of(method("byol", projection_dim=16), 8)["views"]
    byol_views = T.byol(32, normalize=normalize, blur=False)(DIGITS[:8], seed=1, epoch=0, indices=np.arange(8))
    torch.testing.assert_close(default, torch.stack(byol_views), rtol=0, atol=0)
    with pytest.raises(ValueError, match="^augmentation: expected one of simclr, byol, mocov2, clip, got 'dino'"):
        method("byol", augmentation="dino")
