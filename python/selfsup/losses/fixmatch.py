"""FixMatch's unlabelled loss (Sohn et al. 2020, arXiv:2001.07685, eq. 4).

For unlabelled images u_b seen under weak augmentation α and strong augmentation A:
q_b = p_m(y | α(u_b)) (no gradient), q̂_b = argmax q_b, and

    ℓ_u = 1/(μB) Σ_b 1(max q_b ≥ τ) · H(q̂_b, p_m(y | A(u_b))),

normalised by *all* μB unlabelled images, as the paper and its code do (an image below the
threshold contributes zero, not nothing). Per sample: nothing is gathered across ranks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_logits(name: str, logits: torch.Tensor, other: torch.Tensor | None = None, other_name: str = "") -> None:
    """Raises ValueError unless ``logits`` is a non-empty ``(N, K)`` float tensor (of ``other``'s
    shape when given) without NaN."""
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2 or not logits.is_floating_point():
        raise ValueError(f"{name}: expected non-empty float logits (N, K) with K >= 2, got {logits.dtype} {tuple(logits.shape)}")
    if other is not None and other.shape != logits.shape:
        raise ValueError(f"{name}: expected the shape of {other_name} {tuple(other.shape)}, got {tuple(logits.shape)}")
    if torch.isnan(logits).any():
        raise ValueError(f"{name}: contains NaN")


def fixmatch_loss(weak_logits: torch.Tensor, strong_logits: torch.Tensor, threshold: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ℓ_u, mask rate)`` for logits ``(μB, K)`` of the weak and strong views of the same
    unlabelled images (module docstring); the mask rate is the share of images whose pseudo-label
    passed ``threshold``.

    Raises:
        ValueError: logits of other shapes, empty, or with NaN; ``threshold`` outside [0, 1].
    """
    check_logits("weak_logits", weak_logits)
    check_logits("strong_logits", strong_logits, weak_logits, "weak_logits")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold: expected a probability in [0, 1], got {threshold}")
    probabilities = torch.softmax(weak_logits.detach().float(), dim=1)
    confidence, pseudo_labels = probabilities.max(dim=1)
    mask = (confidence >= threshold).to(strong_logits.dtype)
    per_image = F.cross_entropy(strong_logits, pseudo_labels, reduction="none")
    return (per_image * mask).mean(), mask.mean().detach()
