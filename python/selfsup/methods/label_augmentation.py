"""Self-supervised label augmentation, SLA (Lee, Hwang & Shin 2020, "Self-supervised Label
Augmentation via Input Transformations", ICML, arXiv:1910.05872), with self-distillation.

Every labelled image is fed in its M = 4 rotations; one head over the K·M joint labels (class i,
rotation j) learns the classes and the rotations at once (eq. 4); at inference the joint logits
of the four rotated copies are aggregated, P(i | x) ∝ exp((1/M) Σ_j z_{ij}(t_j(x))) (eq. 6); and
a plain K-way head is distilled from the aggregated prediction (eq. 7, SLA+SD):

    ℓ = CE(z(t_j(x)), (y, j)) averaged over j  +  KL(P_agg(· | x) ‖ σ(v(x))) + CE(σ(v(x)), y),

the teacher P_agg without gradient (:mod:`selfsup.losses.label_augmentation`). The method uses
labelled images only (μ = 0); ``inference`` picks the aggregated joint head (the paper's
SLA+AG) or the distilled head (SLA+SD, one pass) for :meth:`predict`. No EMA by default (the
paper evaluates the trained weights). Under DDP nothing is gathered: every term is a per-image mean.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.label_augmentation import aggregated_logits, joint_labels, self_distillation_loss
from selfsup.methods.s4l import ROTATIONS, rotations
from selfsup.methods.semi_supervised import UNFLIPPED_DATASETS, SemiSupervised
from selfsup.run.recipe import Recipe

INFERENCE = ("aggregated", "distilled")


class LabelAugmentation(SemiSupervised):
    """Args: as :class:`~selfsup.methods.semi_supervised.SemiSupervised`, and ``inference``
    (``aggregated`` or ``distilled``) and ``distill`` (train the distilled head).

    Shapes: ``make_batch`` gives ``labelled (B, 3, S, S)`` and ``labels (B,)``.

    Raises:
        ValueError: an unknown ``inference``, ``distilled`` inference without ``distill``, and the
            base class's errors.
    """

    name: ClassVar[str] = "sla"
    default_mu: ClassVar[int] = 0

    def __init__(self, backbone: nn.Module, inference: str = "aggregated", distill: bool = True, ema: float = 0.0, **options: Any) -> None:
        if inference not in INFERENCE:
            raise ValueError(f"inference: expected one of {', '.join(INFERENCE)}, got {inference!r}")
        if inference == "distilled" and not distill:
            raise ValueError("inference: the distilled head is trained only with distill=True")
        if inference == "aggregated" and ema:
            raise ValueError("ema: the average covers the distilled classifier; use inference='distilled' with ema > 0")
        self.inference = inference
        self.distill = bool(distill)
        super().__init__(backbone, ema=ema, **options)

    def build_heads(self, classes: int) -> None:
        """``head``: the distilled K-way head; ``joint_head``: the K·M joint labels."""
        self.joint_head = nn.Linear(self.feature_dim, classes * ROTATIONS)
        super().build_heads(classes)

    def joint_logits(self, images: torch.Tensor, backbone: nn.Module | None = None, joint_head: nn.Module | None = None) -> torch.Tensor:
        """Joint logits ``(M, N, K·M)`` of the M rotated copies of images ``(N, 3, S, S)``."""
        features = (backbone or self.backbone)(rotations(images))
        joint: torch.Tensor = (joint_head or self.joint_head)(features)
        return joint.view(ROTATIONS, len(images), -1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labelled, labels = batch["labelled"], batch["labels"]
        features = self.backbone(rotations(labelled))
        joint = self.joint_head(features).view(ROTATIONS, len(labelled), -1)
        transforms = torch.arange(ROTATIONS, device=labelled.device).repeat_interleave(len(labelled))
        targets = joint_labels(labels.repeat(ROTATIONS), transforms, ROTATIONS)
        joint_loss = F.cross_entropy(joint.flatten(0, 1), targets)
        aggregated = aggregated_logits(joint)
        accuracy = (aggregated.argmax(1) == labels).float().mean().detach()
        out = {"joint": joint_loss.detach(), "accuracy": accuracy}
        loss = joint_loss
        if self.distill:
            distilled = self_distillation_loss(self.head(features[: len(labelled)]), aggregated, labels)
            loss = loss + distilled
            out["distilled"] = distilled.detach()
        else:
            loss = loss + self.head.weight.sum() * 0.0  # the unused head keeps a gradient under DDP
        return {"loss": loss, **out}

    @torch.no_grad()
    def predict_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.inference == "distilled":
            return super().predict_logits(inputs)
        was_training = self.training
        self.eval()
        try:
            return aggregated_logits(self.joint_logits(inputs))
        finally:
            self.train(was_training)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(LabelAugmentation, aliases=("label_augmentation",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "sla", optimizer="sgd", lr=0.03, weight_decay=5e-4, batch_size=64, datasets=UNFLIPPED_DATASETS,
            summary="SGD at 0.03, weight decay 5e-4 (the paper: SGD 0.1, weight decay 1e-4 at batch 128), labelled images only",
        )
    )
