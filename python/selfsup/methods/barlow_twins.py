"""Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny 2021, arXiv:2103.03230).

The cross-correlation matrix of the two views' embeddings, each standardised along the batch,
is pushed to the identity:

    C_ij = Σ_b ẑ¹_bi ẑ²_bj / N,   L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²,   λ = 5·10⁻³  (eq. 1–2)

Shapes: ``z1``, ``z2`` ``(N, D)``; the projector is 3 layers with BatchNorm (paper: 8192 wide;
here ``projection_dim`` defaults to 4 × the backbone's features). Under ``torch.distributed`` the
embeddings of all ranks are gathered with gradient and every rank computes the loss of the global
batch (the paper all-reduces C; the result is the same).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.methods.joint import JointEmbedding, check_positive, gather_global, off_diagonal
from selfsup.models.heads import ProjectionHead


class BarlowTwins(JointEmbedding):
    """Args: ``backbone``; ``projection_dim``; ``projector_layers`` (3 in the paper);
    ``redundancy_weight`` λ."""

    name: ClassVar[str] = "barlow_twins"
    recipe_name: ClassVar[str] = "byol"

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int | None = None,
        projector_layers: int = 3,
        redundancy_weight: float = 5e-3,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        dim = projection_dim or 4 * self.feature_dim
        check_positive(projection_dim=dim, redundancy_weight=redundancy_weight)
        self.redundancy_weight = float(redundancy_weight)
        self.projector = ProjectionHead(self.feature_dim, dim, dim, layers=projector_layers)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z = self.encode(lambda x: self.projector(self.backbone(x)), batch["views"])
        loss, on_diagonal = barlow_twins_loss(gather_global(z[0]), gather_global(z[1]), self.redundancy_weight)
        return {"loss": loss, "on_diagonal": on_diagonal.detach()}


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


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(BarlowTwins)
