"""Heads on top of backbone features."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """MLP ``in → hidden → … → out`` with BatchNorm + ReLU between layers (SimCLR, arXiv:2002.05709,
    uses 2 layers; SimCLR v2, arXiv:2006.10029, 3). ``last_bn`` adds a non-affine BatchNorm at the
    end (as in SimSiam/Barlow Twins)."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, layers: int = 2, last_bn: bool = False) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers: expected at least 1, got {layers}")
        modules: list[nn.Module] = []
        dim = in_dim
        for _ in range(layers - 1):
            modules += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU()]
            dim = hidden_dim
        modules.append(nn.Linear(dim, out_dim, bias=not last_bn))
        if last_bn:
            modules.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class LinearHead(nn.Linear):
    """A linear classifier over features."""
