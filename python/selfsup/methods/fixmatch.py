"""FixMatch (Sohn, Berthelot, Li, Zhang, Carlini, Cubuk, Kurakin, Zhang & Raffel 2020, "FixMatch:
Simplifying Semi-Supervised Learning with Consistency and Confidence", arXiv:2001.07685).

Each step sees B labelled images (weak views) and μB pool images, each in a weak view α(u) and a
strong view A(u) (RandAugment and Cutout). The model's prediction on the weak view, when its
confidence reaches τ, is a hard pseudo-label for the strong view (eq. 4):

    ℓ = 1/B Σ_b H(y_b, p(y | α(x_b))) + λ_u · 1/(μB) Σ_b 1(max q_b ≥ τ) H(argmax q_b, p(y | A(u_b))),

q_b = p(y | α(u_b)) without gradient (:func:`selfsup.losses.fixmatch_loss`). All three sets go
through the network in one pass, so BatchNorm sees them together, as the paper's code does.
Defaults are the paper's: τ = 0.95, λ_u = 1, μ = 7, EMA 0.999; SGD 0.03 with weight decay 5e-4.
Under DDP nothing is gathered: every term is a per-image mean over equal rank shares, so DDP's
averaging gives the global batch's loss.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.fixmatch import fixmatch_loss
from selfsup.methods.semi_supervised import UNFLIPPED_DATASETS, SemiSupervised, check_fraction
from selfsup.run.recipe import Recipe


class FixMatch(SemiSupervised):
    """Args: as :class:`~selfsup.methods.semi_supervised.SemiSupervised`, and ``threshold`` τ,
    ``lambda_u`` λ_u.

    Shapes: ``make_batch`` gives ``labelled (B, 3, S, S)``, ``labels (B,)``, ``unlabelled (2, μB, 3, S, S)``
    (weak, strong).

    Raises:
        ValueError: ``threshold`` outside [0, 1], ``lambda_u`` < 0, and the base class's errors.
    """

    name: ClassVar[str] = "fixmatch"

    def __init__(self, backbone: nn.Module, threshold: float = 0.95, lambda_u: float = 1.0, **options: object) -> None:
        super().__init__(backbone, **options)  # type: ignore[arg-type]
        self.threshold = check_fraction("threshold", threshold)
        self.lambda_u = check_fraction("lambda_u", lambda_u, 0.0, float("inf"))

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labelled, pool = self.logits_of(batch)
        out = self.supervised_loss(labelled, batch["labels"])
        if pool is None:
            return {"loss": out["supervised"], **out}
        unlabelled, mask = fixmatch_loss(pool[0], pool[1], self.threshold)
        return {"loss": out["supervised"] + self.lambda_u * unlabelled, **out, "unlabelled": unlabelled.detach(), "mask": mask}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(FixMatch)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "fixmatch", optimizer="sgd", lr=0.03, weight_decay=5e-4, batch_size=64, datasets=UNFLIPPED_DATASETS,
            summary="SGD at 0.03, weight decay 5e-4, B = 64, mu = 7, tau = 0.95 (Sohn et al. 2020)",
        )
    )
