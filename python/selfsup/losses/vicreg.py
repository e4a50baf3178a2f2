"""VICReg's variance, invariance and covariance terms (Bardes et al. 2022, arXiv:2105.04906, eqs. 1–6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.losses.similarity import off_diagonal


def vicreg_terms(
    z1: torch.Tensor, z2: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4, variance_reduction: str = "mean"
) -> dict[str, torch.Tensor]:
    """The three unweighted terms ``invariance`` s, ``variance`` [v(Z) + v(Z′)]/2 (or the sum with
    ``variance_reduction="sum"``) and ``covariance`` c(Z) + c(Z′) for ``z1``, ``z2`` ``(N, D)``, N ≥ 2."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z2: expected the shape of z1 (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError(f"z1: variance and covariance need at least 2 samples, got {z1.shape[0]}")
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2, reduction="none").sum(1).mean() / d
    variance = z1.new_zeros(())
    covariance = z1.new_zeros(())
    for z in (z1, z2):
        centred = z - z.mean(0)
        std = torch.sqrt(centred.var(0) + eps)
        variance = variance + F.relu(gamma - std).mean()
        cov = centred.T @ centred / (n - 1)
        covariance = covariance + off_diagonal(cov).pow(2).sum() / d
    if variance_reduction == "mean":
        variance = variance / 2
    return {"invariance": invariance, "variance": variance, "covariance": covariance}
