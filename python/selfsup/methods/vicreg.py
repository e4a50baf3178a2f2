"""VICReg (Bardes, Ponce & LeCun 2022, "Variance-Invariance-Covariance Regularization",
arXiv:2105.04906).

For the two views' embeddings Z, Z′ ``(N, D)``:

    s(Z, Z′) = (1/ND) Σ_b ‖z_b − z′_b‖²   (the paper's code: mean squared error)   (invariance)
    v(Z)     = (1/D) Σ_j max(0, γ − √(Var(z_j) + ε)),   γ = 1, ε = 10⁻⁴           (variance)
    c(Z)     = (1/D) Σ_{i≠j} Cov(Z)_ij²                                            (covariance)
    L = λ s + μ [v(Z) + v(Z′)]/2 + ν [c(Z) + c(Z′)],   λ = μ = 25, ν = 1

The variance term is the *mean* of the two branches' hinges, as in the authors' code
(facebookresearch/vicreg ``main.py``: ``std_loss = mean(relu(1 − std_x))/2 + mean(relu(1 −
std_y))/2``), which LightlySSL and pytorch-metric-learning follow and with which λ = μ = 25,
ν = 1 were tuned; eq. 6 of the paper writes the sum, ``variance_reduction="sum"``.

Variances and covariances use the unbiased (N − 1) estimate, as the paper's code. The expander is
3 layers with BatchNorm (paper: 8192; here 4 × the backbone's features). Under
``torch.distributed`` all ranks' embeddings are gathered with gradient and each rank computes the
loss of the global batch (the paper's FullGatherLayer).
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
from selfsup.losses.similarity import off_diagonal
from selfsup.models.heads import ProjectionHead
from selfsup.losses.vicreg import vicreg_terms


class VICReg(JointEmbedding):
    """Args: ``backbone``; ``projection_dim``, ``projector_layers``; the weights λ
    (``invariance_weight``), μ (``variance_weight``), ν (``covariance_weight``)."""

    name: ClassVar[str] = "vicreg"
    default_augmentation: ClassVar[str] = "byol"

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int | None = None,
        projector_layers: int = 3,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        variance_reduction: str = "mean",
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        dim = projection_dim or 4 * self.feature_dim
        check_positive(projection_dim=dim)
        for name, value in (("invariance_weight", invariance_weight), ("variance_weight", variance_weight), ("covariance_weight", covariance_weight)):
            if not value >= 0:
                raise ValueError(f"{name}: expected >= 0, got {value}")
        if variance_reduction not in ("mean", "sum"):
            raise ValueError(f"variance_reduction: expected 'mean' (the authors' code) or 'sum' (eq. 6), got {variance_reduction!r}")
        self.weights = (float(invariance_weight), float(variance_weight), float(covariance_weight))
        self.variance_reduction = variance_reduction
        self.projector = ProjectionHead(self.feature_dim, dim, dim, layers=projector_layers)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z = self.encode(lambda x: self.projector(self.backbone(x)), batch["views"])
        terms = vicreg_terms(gather_global(z[0]), gather_global(z[1]), variance_reduction=self.variance_reduction)
        lam, mu, nu = self.weights
        loss = lam * terms["invariance"] + mu * terms["variance"] + nu * terms["covariance"]
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(VICReg)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("vicreg", summary="AdamW 1e-3, the paper's LARS stand-in"))
