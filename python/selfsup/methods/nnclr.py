"""NNCLR (Dwibedi, Aytar, Tompson, Sermanet & Zisserman 2021, "With a Little Help from My Friends:
Nearest-Neighbor Contrastive Learning of Visual Representations", arXiv:2104.14548).

The positive of a view is the nearest neighbour of its projection in a support set Q (a FIFO queue
of past projections), contrasted with the predictions of the other view (eq. 2):

    ℓ_i = −log  exp(NN(z_i, Q)·p⁺_i/τ) / Σ_k exp(NN(z_i, Q)·p⁺_k/τ),   τ = 0.1,

symmetrised over the two views; z and p are ℓ2-normalised, NN(·) carries no gradient. The loss is
:func:`selfsup_kernels.info_nce` with the neighbours as queries and the other view's predictions as
keys and in-batch negatives (gathered across ranks under ``torch.distributed``); the support set is
filled with the first view's projections of the global batch. Projector 3 layers, predictor 2
layers (paper: 2048/4096 wide, 256-d output, |Q| = 98 304).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.joint import check_positive, JointEmbedding
from selfsup.models.gather import gather_global
from selfsup.models.queues import ring_write
from selfsup.models.heads import ProjectionHead


class NNCLR(JointEmbedding):
    """Args: ``backbone``; ``support_size`` |Q|; ``temperature`` τ; ``projection_dim``,
    ``hidden_dim``, ``projector_layers``. Buffers ``support (|Q|, D)`` and ``support_pointer`` are
    saved in checkpoints; the support set starts as random unit vectors."""

    name: ClassVar[str] = "nnclr"
    default_augmentation: ClassVar[str] = "byol"
    support: torch.Tensor
    support_pointer: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        support_size: int = 4096,
        temperature: float = 0.1,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        projector_layers: int = 3,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        check_positive(support_size=support_size, temperature=temperature, projection_dim=projection_dim)
        hidden = hidden_dim or 2 * self.feature_dim
        self.temperature = float(temperature)
        self.projector = ProjectionHead(self.feature_dim, hidden, projection_dim, layers=projector_layers)
        self.predictor = ProjectionHead(projection_dim, hidden, projection_dim)
        self.register_buffer("support", F.normalize(torch.randn(support_size, projection_dim), dim=1))
        self.register_buffer("support_pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def nearest_neighbours(self, z: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """``NN(z_i, Q)`` for ℓ2-normalised ``z (N, D)``: the support row of highest cosine."""
        rows = [self.support[(z[i : i + chunk] @ self.support.T).argmax(dim=1)] for i in range(0, z.shape[0], chunk)]
        return torch.cat(rows)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from selfsup_kernels import info_nce
        from selfsup_kernels.distributed import is_distributed

        z = F.normalize(self.encode(lambda x: self.projector(self.backbone(x)), batch["views"]), dim=2)
        p = self.encode(self.predictor, z)
        neighbours = [self.nearest_neighbours(z[v].detach()) for v in (0, 1)]
        gather = is_distributed()
        loss = 0.5 * (
            info_nce(neighbours[0], p[1], temperature=self.temperature, gather=gather)
            + info_nce(neighbours[1], p[0], temperature=self.temperature, gather=gather)
        )
        agreement = (neighbours[0] * z[0].detach()).sum(1).mean()
        self.push(gather_global(z[0].detach()))
        return {"loss": loss, "neighbour_cosine": agreement}

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        """FIFO update of the support set with ``z (B, D)`` (the newest |Q| rows if B > |Q|)."""
        ring_write(self.support, self.support_pointer, z)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(NNCLR)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("nnclr", {"support_size": 1024}, summary="AdamW 1e-3 (SGD 0.1 and 0.3 stayed below random init), a support set of 1 024"))
