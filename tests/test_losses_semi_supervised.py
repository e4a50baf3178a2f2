"""The semi-supervised objectives against numpy transcriptions of their papers' equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selfsup.losses.fixmatch import fixmatch_loss
from selfsup.losses.label_augmentation import aggregated_logits, joint_labels, self_distillation_loss
from selfsup.losses.mixmatch import linear_rampup, mixmatch_losses, mixup, sharpen
from selfsup.losses.uda import tsa_cross_entropy, tsa_threshold, uda_consistency

RNG = np.random.default_rng(0)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logits(n: int = 16, k: int = 5, scale: float = 3.0) -> np.ndarray:
    return RNG.normal(0, scale, (n, k))


def test_fixmatch_matches_eq_4_and_normalises_by_all_images():
    weak, strong = logits(), logits()
    for tau in (0.0, 0.7, 0.95, 1.0):
        q = softmax(weak)
        mask = q.max(1) >= tau
        ce = -np.log(softmax(strong)[np.arange(len(q)), q.argmax(1)])
        expected = (ce * mask).sum() / len(q)
        loss, rate = fixmatch_loss(torch.tensor(weak), torch.tensor(strong), tau)
        assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12) and rate.item() == pytest.approx(mask.mean())
    weak_t, strong_t = torch.tensor(weak, requires_grad=True), torch.tensor(strong, requires_grad=True)
    fixmatch_loss(weak_t, strong_t, 0.5)[0].backward()
    assert weak_t.grad is None and strong_t.grad is not None  # no gradient through the pseudo-labels
    with pytest.raises(ValueError, match="strong_logits: expected the shape of weak_logits"):
        fixmatch_loss(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="threshold"):
        fixmatch_loss(torch.zeros(4, 3), torch.zeros(4, 3), 1.5)
    with pytest.raises(ValueError, match="weak_logits: contains NaN"):
        fixmatch_loss(torch.full((2, 3), float("nan")), torch.zeros(2, 3))


@pytest.mark.parametrize("schedule", ["linear", "log", "exp"])
def test_tsa_thresholds_follow_the_schedules(schedule: str):
    alpha = {"linear": lambda p: p, "log": lambda p: 1 - math.exp(-5 * p), "exp": lambda p: math.exp(5 * (p - 1))}[schedule]
    for step in (0, 250, 500, 1000):
        assert tsa_threshold(schedule, step, 1000, 10) == pytest.approx(alpha(step / 1000) * 0.9 + 0.1)
    assert tsa_threshold(schedule, 1000, 1000, 10) == pytest.approx(1.0 if schedule != "log" else 1 - 0.9 * math.exp(-5))
    assert tsa_threshold("none", 3, 1000, 10) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        tsa_threshold("cosine", 0, 10, 10)


def test_tsa_cross_entropy_leaves_out_confident_images():
    z = logits()
    labels = RNG.integers(0, 5, len(z))
    p_true = softmax(z)[np.arange(len(z)), labels]
    threshold = float(np.median(p_true))
    keep = p_true < threshold
    expected = (-np.log(p_true) * keep).sum() / max(keep.sum(), 1)
    loss, kept = tsa_cross_entropy(torch.tensor(z), torch.tensor(labels), threshold)
    assert loss.item() == pytest.approx(expected, rel=1e-10) and kept.item() == pytest.approx(keep.mean())
    assert tsa_cross_entropy(torch.tensor(z), torch.tensor(labels), 0.0)[0].item() == 0.0
    with pytest.raises(ValueError, match="labels: expected 16 integer labels in \\[0, 5\\)"):
        tsa_cross_entropy(torch.tensor(z), torch.tensor(labels + 5), 0.5)


def test_uda_consistency_is_masked_kl_to_sharpened_targets():
    original, augmented = logits(), logits()
    for temperature, beta in ((0.4, 0.8), (1.0, 0.0), (0.4, 0.5)):
        targets = softmax(original / temperature)
        mask = softmax(original).max(1) >= beta
        kl = (targets * (np.log(targets) - np.log(softmax(augmented)))).sum(1)
        loss, rate = uda_consistency(torch.tensor(original), torch.tensor(augmented), temperature, beta)
        assert loss.item() == pytest.approx((kl * mask).mean(), rel=1e-6) and rate.item() == pytest.approx(mask.mean())
    with pytest.raises(ValueError, match="temperature"):
        uda_consistency(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)


def test_sharpen_mixup_and_mixmatch_losses():
    p = softmax(logits())
    for t in (0.5, 1.0, 2.0):
        expected = p ** (1 / t) / (p ** (1 / t)).sum(1, keepdims=True)
        np.testing.assert_allclose(sharpen(torch.tensor(p), t).numpy(), expected, rtol=1e-12)
    x, y = torch.tensor(RNG.normal(size=(8, 3))), torch.tensor(p[:8])
    mixed_x, mixed_y, lam, order = mixup(x, y, 0.75, np.random.default_rng(5))
    reference = np.random.default_rng(5)
    drawn = reference.beta(0.75, 0.75)
    assert lam == pytest.approx(max(drawn, 1 - drawn)) and lam >= 0.5
    np.testing.assert_array_equal(order.numpy(), reference.permutation(8))
    np.testing.assert_allclose(mixed_x.numpy(), lam * x.numpy() + (1 - lam) * x.numpy()[order.numpy()])
    np.testing.assert_allclose(mixed_y.numpy(), lam * y.numpy() + (1 - lam) * y.numpy()[order.numpy()])
    zx, zu, qu = logits(), logits(), softmax(logits())
    lx, lu = mixmatch_losses(torch.tensor(zx), torch.tensor(p), torch.tensor(zu), torch.tensor(qu))
    assert lx.item() == pytest.approx(-(p * np.log(softmax(zx))).sum(1).mean())
    assert lu.item() == pytest.approx(((qu - softmax(zu)) ** 2).sum() / (zu.shape[0] * zu.shape[1]))
    assert [linear_rampup(s, 100) for s in (0, 50, 100, 200)] == [0.0, 0.5, 1.0, 1.0] and linear_rampup(3, 0) == 1.0
    with pytest.raises(ValueError, match="alpha"):
        mixup(x, y, 0.0, np.random.default_rng(0))


def test_label_augmentation_joint_labels_aggregation_and_distillation():
    m, n, k = 4, 6, 3
    joint = RNG.normal(size=(m, n, k * m))
    expected = np.stack([np.mean([joint[j, :, i * m + j] for j in range(m)], axis=0) for i in range(k)], axis=1)
    np.testing.assert_allclose(aggregated_logits(torch.tensor(joint)).numpy(), expected, rtol=1e-12)
    labels, rotations = torch.tensor([0, 2, 1]), torch.tensor([3, 0, 2])
    assert joint_labels(labels, rotations, 4).tolist() == [3, 8, 6]
    with pytest.raises(ValueError, match="transforms: expected integers in \\[0, 4\\)"):
        joint_labels(labels, torch.tensor([4, 0, 0]), 4)
    student, teacher = logits(n, k), expected
    y = RNG.integers(0, k, n)
    pt, ps = softmax(teacher), softmax(student)
    reference = (pt * (np.log(pt) - np.log(ps))).sum(1).mean() - np.log(ps[np.arange(n), y]).mean()
    assert self_distillation_loss(torch.tensor(student), torch.tensor(teacher), torch.tensor(y)).item() == pytest.approx(reference, rel=1e-6)
