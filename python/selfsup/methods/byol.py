"""BYOL (Grill et al. 2020, "Bootstrap Your Own Latent", arXiv:2006.07733).

An online network (backbone f_θ, projector g_θ, predictor q_θ) predicts the projection of the
other view made by a target network (f_ξ, g_ξ), an exponential moving average of the online one:

    L = ‖q̄_θ(z_θ) − z̄′_ξ‖² = 2 − 2·cos(q_θ(z_θ), z′_ξ),   symmetrised over the two views (eq. 2)
    ξ ← τξ + (1 − τ)θ,  τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2,  τ_base = 0.996

Shapes: ``views (2, N, 3, S, S)``; projector and predictor are MLPs ``D → hidden → out`` with
BatchNorm (paper: 4096 → 256; here ``hidden_dim`` defaults to 2 × the backbone's features).
Views use the asymmetric BYOL augmentation (:func:`selfsup.transforms.byol`). The loss is per sample, so
under DDP nothing needs gathering (the paper's synchronised BatchNorm is not applied).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.joint import check_positive, JointEmbedding
from selfsup.models.momentum import ema_update, momentum_at, momentum_copy
from selfsup.losses.similarity import mean_cosine
from selfsup.models.heads import ProjectionHead
from selfsup.losses.byol import byol_loss


class BYOL(JointEmbedding):
    """Args: ``backbone``; ``projection_dim``/``hidden_dim`` of projector and predictor;
    ``base_momentum`` τ_base of the target update; ``image_size``, ``blur``, ``augmentation`` (default
    ``"byol"``) as in :class:`~selfsup.methods.joint.JointEmbedding`."""

    name: ClassVar[str] = "byol"
    default_augmentation: ClassVar[str] = "byol"

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 256,
        hidden_dim: int | None = None,
        base_momentum: float = 0.996,
        image_size: int | None = None,
        blur: bool | None = None,
        augmentation: str | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur, augmentation=augmentation)
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum: expected a value in [0, 1], got {base_momentum}")
        check_positive(projection_dim=projection_dim)
        hidden = hidden_dim or 2 * self.feature_dim
        self.base_momentum = float(base_momentum)
        self.projector = ProjectionHead(self.feature_dim, hidden, projection_dim)
        self.predictor = ProjectionHead(projection_dim, hidden, projection_dim)
        self.target_backbone = momentum_copy(self.backbone)
        self.target_projector = momentum_copy(self.projector)
        self.momentum = self.base_momentum

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        views = batch["views"]
        online = self.encode(lambda x: self.predictor(self.projector(self.backbone(x))), views)
        with torch.no_grad():
            target = self.encode(lambda x: self.target_projector(self.target_backbone(x)), views)
        loss = byol_loss(online[0], target[1]) + byol_loss(online[1], target[0])
        return {"loss": loss, "cosine": mean_cosine(online[0], target[1]).detach()}

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.momentum = momentum_at(self.base_momentum, step, total_steps)
        ema_update(self.target_backbone, self.backbone, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(BYOL)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe(
        "byol", {"base_momentum": 0.9, "hidden_dim": 4096, "augmentation": "mocov2"}, optimizer="lars", lr=3.0,
        summary="LARS at 3.0, 4 096 hidden units, tau_base 0.9, MoCo v2's symmetric views (swept on the validation split)",
    ))
