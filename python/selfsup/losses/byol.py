"""BYOL's (and SimSiam's) normalised-prediction regression (Grill et al. 2020, arXiv:2006.07733, eq. 2)."""

from __future__ import annotations

import torch

from selfsup.losses.similarity import mean_cosine


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 − 2·cos(p_i, z_i)`` averaged over the batch; ``prediction``, ``target`` ``(N, D)``."""
    return 2.0 - 2.0 * mean_cosine(prediction, target)
