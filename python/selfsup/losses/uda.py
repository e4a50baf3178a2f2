"""Unsupervised Data Augmentation (Xie et al. 2019, arXiv:1904.12848): the consistency loss with
sharpened, confidence-masked targets, and Training Signal Annealing (§3.2, §3.3 and the code).

- Consistency: with targets p̃ = softmax(z/τ) of the original (weakly augmented) image (no
  gradient, τ = 0.4), a mask 1(max softmax(z) ≥ β) (β = 0.8), and predictions softmax(ẑ) of its
  RandAugment view, the mean over all unlabelled images of mask · KL(p̃ ‖ softmax(ẑ)).
- TSA: at step t of T, a labelled image whose predicted probability of its true class exceeds
  η_t = α_t (1 − 1/K) + 1/K is left out of the supervised loss, with α_t = t/T (linear),
  1 − exp(−5t/T) (log) or exp(5(t/T − 1)) (exp); the loss is the sum over the kept images divided
  by their number (at least 1).

Per sample, except TSA's count of kept images, all-reduced with ``gather``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from selfsup_kernels.distributed import all_reduce, is_distributed, world

from selfsup.losses.fixmatch import check_logits

TSA_SCHEDULES: tuple[str, ...] = ("linear", "log", "exp", "none")


def tsa_threshold(schedule: str, step: int, total_steps: int, classes: int) -> float:
    """η_t (module docstring); ``none`` gives 1 (nothing left out).

    Raises:
        ValueError: an unknown schedule, ``total_steps`` < 1 or ``classes`` < 2.
    """
    if schedule not in TSA_SCHEDULES:
        raise ValueError(f"schedule: expected one of {', '.join(TSA_SCHEDULES)}, got {schedule!r}")
    if total_steps < 1 or classes < 2:
        raise ValueError(f"total_steps, classes: expected >= 1 and >= 2, got {total_steps}, {classes}")
    if schedule == "none":
        return 1.0
    progress = min(max(step / total_steps, 0.0), 1.0)
    alpha = {"linear": progress, "log": 1 - math.exp(-5 * progress), "exp": math.exp(5 * (progress - 1))}[schedule]
    return alpha * (1 - 1 / classes) + 1 / classes


def tsa_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, threshold: float, gather: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, kept share)``: cross-entropy over the labelled images whose probability of their
    label is below ``threshold`` (η_t), summed and divided by their number (at least 1).

    With ``gather`` under ``torch.distributed`` the number kept is all-reduced and each rank's sum
    is divided by it and multiplied by the world size, so that DDP's averaging of the ranks'
    gradients gives the global batch's loss (the same share of ranks in every process).

    Raises:
        ValueError: bad logits, labels not ``(N,)`` integers in ``[0, K)``.
    """
    check_logits("logits", logits)
    if labels.shape != logits.shape[:1] or labels.is_floating_point() or labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels: expected {logits.shape[0]} integer labels in [0, {logits.shape[1]}), got {labels.dtype} {tuple(labels.shape)}")
    per_image = F.cross_entropy(logits, labels, reduction="none")
    correct = torch.softmax(logits.detach().float(), dim=1).gather(1, labels[:, None]).squeeze(1)
    keep = (correct < threshold).to(per_image.dtype)
    kept = keep.sum().detach()
    ranks = 1
    if gather and is_distributed():
        kept = all_reduce(kept.clone())
        ranks = world()[1]
    return (per_image * keep).sum() * ranks / kept.clamp_min(1.0), keep.mean().detach()


def uda_consistency(
    original_logits: torch.Tensor, augmented_logits: torch.Tensor, temperature: float = 0.4, confidence: float = 0.8
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, mask rate)`` of the consistency term (module docstring) for logits ``(N, K)``.

    Raises:
        ValueError: bad logits, ``temperature`` ≤ 0, ``confidence`` outside [0, 1].
    """
    check_logits("original_logits", original_logits)
    check_logits("augmented_logits", augmented_logits, original_logits, "original_logits")
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    if not 0 <= confidence <= 1:
        raise ValueError(f"confidence: expected a probability in [0, 1], got {confidence}")
    original = original_logits.detach().float()
    targets = torch.softmax(original / temperature, dim=1)
    mask = (torch.softmax(original, dim=1).max(dim=1).values >= confidence).to(augmented_logits.dtype)
    log_predictions = F.log_softmax(augmented_logits, dim=1)
    kl = (targets * (torch.log(targets.clamp_min(1e-30)) - log_predictions)).sum(dim=1)
    return (kl * mask).mean(), mask.mean().detach()
