"""DINO (Caron, Touvron, Misra, Jégou, Mairal, Bojanowski & Joulin 2021, "Emerging Properties in
Self-Supervised Vision Transformers", arXiv:2104.14294).

Self-distillation without labels: a student g_θs matches the output distribution of a teacher
g_θt (the exponential moving average of the student) on a different view of the same image:

    P_t(x) = softmax((g_θt(x) − c) / τ_t),   P_s(x′) = softmax(g_θs(x′) / τ_s)
    L = (1/|pairs|) Σ_{x ∈ global views} Σ_{x′ ≠ x} −P_t(x) · log P_s(x′)          (eq. 3)
    c ← m·c + (1 − m)·mean_batch g_θt(x),   m = 0.9                                 (eq. 4)

Centering (c) and sharpening (τ_t = 0.04 → 0.07 linearly over the first 30% of training, τ_s =
0.1) keep the teacher from collapsing. The head is a 3-layer MLP with GELU to a 256-d bottleneck,
ℓ2-normalised, then a weight-normalised linear layer to K prototypes (its norm fixed to 1). The
teacher follows θt ← λθt + (1 − λ)θs with λ on a cosine schedule from 0.996 to 1.

Views: the paper's multi-crop (:func:`selfsup.transforms.dino`): ``views (2, N, 3, S, S)``, the
global crops both networks see, and ``local (L, N, 3, s, s)``, small crops only the student sees
(s = S·96/224 by default). Under ``torch.distributed``
the batch mean in the centre update is all-reduced over ranks; the loss is per sample.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.joint import check_positive, MultiCrop
from selfsup.models.momentum import ema_update, momentum_at, momentum_copy
from selfsup.transforms import MultiView, Normalize, dino
from selfsup.losses.dino import dino_loss


class DINOHead(nn.Module):
    """MLP ``in → hidden → hidden → bottleneck`` (GELU), ℓ2 normalisation, then ``K`` prototypes
    of unit norm (weight normalisation with the gain fixed to 1). ``(N, in) → (N, K)``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim)
        )
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(self.mlp(x), dim=-1), F.normalize(self.prototypes, dim=-1))


class DINO(MultiCrop):
    """Args: ``backbone``; ``out_dim`` K (paper 65 536); ``hidden_dim``/``bottleneck_dim`` of the
    head; ``student_temperature`` τ_s; ``teacher_temperature`` (final τ_t) reached from
    ``warmup_teacher_temperature`` over the first ``teacher_warmup`` fraction of the steps;
    ``center_momentum`` m; ``base_momentum`` λ₀; ``local_crops`` L and ``local_size`` s of the
    multi-crop (0 local crops: global views only).

    Buffers ``center (K,)`` and ``progress`` (fraction of training done, for the τ_t schedule)
    are saved in checkpoints.
    """

    name: ClassVar[str] = "dino"
    default_augmentation: ClassVar[str] = "byol"
    center: torch.Tensor
    progress: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        out_dim: int = 4096,
        hidden_dim: int | None = None,
        bottleneck_dim: int = 256,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.07,
        warmup_teacher_temperature: float = 0.04,
        teacher_warmup: float = 0.3,
        center_momentum: float = 0.9,
        base_momentum: float = 0.996,
        local_crops: int = 6,
        local_size: int | None = None,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, local_crops, local_size, image_size=image_size, blur=blur)
        check_positive(
            out_dim=out_dim,
            bottleneck_dim=bottleneck_dim,
            student_temperature=student_temperature,
            teacher_temperature=teacher_temperature,
            warmup_teacher_temperature=warmup_teacher_temperature,
        )
        for name, value in (("teacher_warmup", teacher_warmup), ("center_momentum", center_momentum), ("base_momentum", base_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
        self.student_temperature = float(student_temperature)
        self.teacher_temperatures = (float(warmup_teacher_temperature), float(teacher_temperature))
        self.teacher_warmup = float(teacher_warmup)
        self.center_momentum = float(center_momentum)
        self.base_momentum = float(base_momentum)
        self.head = DINOHead(self.feature_dim, out_dim, hidden_dim or 2 * self.feature_dim, bottleneck_dim)
        self.teacher_backbone = momentum_copy(self.backbone)
        self.teacher_head = momentum_copy(self.head)
        self.register_buffer("center", torch.zeros(out_dim))
        self.register_buffer("progress", torch.zeros(()))

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        return dino(size, self.local_side(size), self.local_crops, normalize=normalize, blur=self.uses_blur(size))

    def teacher_temperature(self) -> float:
        """τ_t at the current point of training: linear warm-up, then constant."""
        start, end = self.teacher_temperatures
        if self.teacher_warmup == 0 or float(self.progress) >= self.teacher_warmup:
            return end
        return start + (end - start) * float(self.progress) / self.teacher_warmup

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        student = self.encode_crops(lambda x: self.head(self.backbone(x)), batch)
        with torch.no_grad():
            teacher = self.encode(lambda x: self.teacher_head(self.teacher_backbone(x)), batch["views"])
        loss = dino_loss(student, teacher, self.center, self.student_temperature, self.teacher_temperature())
        self.update_center(teacher)
        probabilities = F.softmax((teacher[0] - self.center) / self.teacher_temperature(), dim=-1)
        entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1).mean()
        return {"loss": loss, "teacher_entropy": entropy}

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        """c ← m·c + (1 − m)·mean of the teacher outputs over views and the global batch."""
        from selfsup_kernels.distributed import all_reduce

        total = all_reduce(teacher.sum(dim=(0, 1)))
        count = all_reduce(torch.tensor(float(teacher.shape[0] * teacher.shape[1]), device=teacher.device))
        self.center.mul_(self.center_momentum).add_(total / count, alpha=1.0 - self.center_momentum)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.progress.fill_(step / max(total_steps, 1))
        momentum = momentum_at(self.base_momentum, step, total_steps)
        ema_update(self.teacher_backbone, self.backbone, momentum)
        ema_update(self.teacher_head, self.head, momentum)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(DINO)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("dino", summary="AdamW 1e-3 (the paper's optimizer)"))
