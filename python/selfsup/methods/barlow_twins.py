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
from selfsup.run.recipe import Recipe
from selfsup.methods.joint import check_positive, JointEmbedding
from selfsup.models.gather import gather_global
from selfsup.losses.similarity import off_diagonal
from selfsup.models.heads import ProjectionHead
from selfsup.losses.barlow_twins import barlow_twins_loss


class BarlowTwins(JointEmbedding):
    """Args: ``backbone``; ``projection_dim``; ``projector_layers`` (3 in the paper);
    ``redundancy_weight`` λ."""

    name: ClassVar[str] = "barlow_twins"
    default_augmentation: ClassVar[str] = "byol"

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


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(BarlowTwins)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("barlow_twins", summary="AdamW 1e-3, the paper's LARS stand-in"))
