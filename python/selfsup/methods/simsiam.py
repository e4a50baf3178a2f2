"""SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning", arXiv:2011.10566).

One encoder f (backbone + 3-layer projector with BatchNorm on every layer, the last without affine
parameters) and a bottleneck predictor h (D → D/4 → D); stop-gradient on the other branch:

    L = ½·D(p₁, sg(z₂)) + ½·D(p₂, sg(z₁)),   D(p, z) = −cos(p, z)   (eq. 1–3)

No momentum encoder, no negatives. Views follow MoCo v2's augmentation (the paper's setting).
Shapes: ``views (2, N, 3, S, S)``; ``projection_dim`` D defaults to 2048 in the paper (here
2 × the backbone's features). Per-sample loss: nothing gathered under DDP.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.joint import check_positive, JointEmbedding
from selfsup.losses.similarity import mean_cosine
from selfsup.models.heads import ProjectionHead


class SimSiam(JointEmbedding):
    """Args: ``backbone``; ``projection_dim`` D; ``predictor_dim`` (D/4 by default)."""

    name: ClassVar[str] = "simsiam"
    default_augmentation: ClassVar[str] = "mocov2"

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int | None = None,
        predictor_dim: int | None = None,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        dim = projection_dim or 2 * self.feature_dim
        check_positive(projection_dim=dim)
        bottleneck = predictor_dim or max(dim // 4, 1)
        check_positive(predictor_dim=bottleneck)
        self.projector = ProjectionHead(self.feature_dim, dim, dim, layers=3, last_bn=True)
        self.predictor = ProjectionHead(dim, bottleneck, dim, layers=2)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z = self.encode(lambda x: self.projector(self.backbone(x)), batch["views"])
        p = self.predictor(z.flatten(0, 1)).view_as(z)
        loss = -0.5 * (mean_cosine(p[0], z[1].detach()) + mean_cosine(p[1], z[0].detach()))
        # the collapse monitor of the paper (Fig. 2): the per-channel std of ℓ2-normalised outputs, ~1/√D if healthy
        spread = nn.functional.normalize(z[0].detach(), dim=1).std(dim=0).mean()
        return {"loss": loss, "output_std": spread}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(SimSiam)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("simsiam", summary="AdamW 1e-3 (SGD 0.1 stayed below random init)"))
