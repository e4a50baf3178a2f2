"""Small pieces the objectives share: off-diagonal entries, mean cosine similarity."""

from __future__ import annotations

import torch
from torch import nn


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square ``(D, D)`` matrix as a flat ``(D² − D,)`` view."""
    d = matrix.shape[0]
    return matrix.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of matching rows of ``a`` and ``b`` ``(N, D)``."""
    return nn.functional.cosine_similarity(a, b, dim=-1).mean()
