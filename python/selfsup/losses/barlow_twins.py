"""Barlow Twins' redundancy reduction (Zbontar et al. 2021, arXiv:2103.03230, eq. 1)."""

from __future__ import annotations

import torch

from selfsup.losses.similarity import off_diagonal


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, redundancy_weight: float = 5e-3, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, Σ_i (1 − C_ii)²)`` for ``z1``, ``z2`` ``(N, D)``; standardisation uses the biased batch
    variance (BatchNorm without affine parameters, as the paper's code)."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z2: expected the shape of z1 (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError(f"z1: the batch-standardised correlation needs at least 2 samples, got {z1.shape[0]}")
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    correlation = a.T @ b / n
    on_diagonal = (1.0 - torch.diagonal(correlation)).pow(2).sum()
    return on_diagonal + redundancy_weight * off_diagonal(correlation).pow(2).sum(), on_diagonal
