"""S⁴L: Self-Supervised Semi-Supervised Learning (Zhai, Oliver, Kolesnikov & Beyer 2019, "S4L:
Self-Supervised Semi-Supervised Learning", arXiv:1905.03670): S⁴L-Rotation, S⁴L-Exemplar and
the MOAM extras.

B labelled and μB pool images, one weak view each. Every image — labelled and pool — is fed in
its four rotations by 90°·k; a rotation head on the shared features classifies k (RotNet's
loss, Gidaris et al. 2018), and the class head is trained on the unrotated labelled images:

    ℓ = L_sup + w · L_rot,   L_rot = −1/(4N) Σ_i Σ_k log p_rot(k | rot(x_i, k)),

with N = B + μB. S⁴L-Exemplar (``task="exemplar"``) replaces the rotation loss by the
batch-hard triplet loss (margin 0.5, :func:`selfsup.losses.metric.batch_hard_triplet_loss`) on
embeddings of ``copies`` (8) heavily augmented copies of every image, the copies of an image its
positives and every other image's copies its negatives. The extras of "Mix Of All Models" (§5) are options: entropy minimisation of
the class predictions on the pool (weight ``entropy_weight``, Grandvalet & Bengio 2005) and
virtual adversarial training (weight ``vat_weight``, Miyato et al. 2018, arXiv:1704.03976: the
KL divergence between the predictions on x and on x + r_adv, r_adv = ε·g/‖g‖ from one power
iteration at ξ). Pseudo-label retraining, MOAM's last stage, is a second run: train with
``teacher`` set to a finished semi-supervised checkpoint, and the pool images carry the
teacher's hard predictions as labels. Defaults: w = 1, μ = 1, no extras, no EMA (the paper
evaluates the trained weights). Under DDP nothing is gathered: every term is a per-image mean.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.metric import batch_hard_triplet_loss
from selfsup.models.batchnorm import frozen_running_stats
from selfsup.methods.semi_supervised import UNFLIPPED_DATASETS, Classifier, SemiSupervised, check_count, check_fraction
from selfsup.run.recipe import Recipe
from selfsup.transforms import MultiView

ROTATIONS = 4


def rotations(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, S, S)`` → ``(4N, C, S, S)``: all images by 0°, then all by 90° counter-clockwise, 180°, 270°."""
    return torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(ROTATIONS)])


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy −Σ_k p_k log p_k of the predictions ``softmax(logits)`` ``(N, K)``."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def vat_loss(model: nn.Module, inputs: torch.Tensor, logits: torch.Tensor, epsilon: float, xi: float = 1e-6) -> torch.Tensor:
    """Virtual adversarial loss (Miyato et al. 2018, eq. 6–13, one power iteration): KL(p(x) ‖
    p(x + r_adv)), the clean predictions ``logits`` without gradient, r_adv = ε·g/‖g‖ with g the
    gradient of KL(p(x) ‖ p(x + ξ·d)) at a random unit d (norms per image). The perturbed passes
    leave BatchNorm's running statistics alone (:func:`~selfsup.models.batchnorm.frozen_running_stats`,
    as the authors' code does): they are not the data the model is evaluated on."""
    target = F.softmax(logits.detach().float(), dim=1)

    def divergence(perturbation: torch.Tensor) -> torch.Tensor:
        with frozen_running_stats(model):
            predicted = model(inputs + perturbation)
        kl: torch.Tensor = F.kl_div(F.log_softmax(predicted.float(), dim=1), target, reduction="batchmean")
        return kl

    def unit(x: torch.Tensor) -> torch.Tensor:
        norms: torch.Tensor = x.flatten(1).norm(dim=1).clamp_min(1e-12)
        return x / norms.view(-1, *([1] * (x.ndim - 1)))

    direction = unit(torch.randn_like(inputs)).requires_grad_(True)
    (gradient,) = torch.autograd.grad(divergence(xi * direction), direction)
    return divergence(epsilon * unit(gradient.detach()))


TASKS = ("rotation", "exemplar")


class S4L(SemiSupervised):
    """Args: as :class:`~selfsup.methods.semi_supervised.SemiSupervised`, and ``task``
    (``rotation`` or ``exemplar``), ``rotation_weight`` w (the self-supervised loss's weight for
    either task), ``copies`` and ``exemplar_dim`` (S⁴L-Exemplar), ``entropy_weight``,
    ``vat_weight``, ``vat_epsilon`` ε, ``teacher`` (a checkpoint path).

    Shapes: ``make_batch`` gives ``labelled (B, 3, S, S)``, ``labels (B,)``, ``unlabelled (1, μB, 3, S, S)``
    and, for ``exemplar``, ``labelled_more (C, B, 3, S, S)`` and ``unlabelled (1 + C, μB, 3, S, S)``:
    C strong copies of every image after its weak view.

    Raises:
        ValueError: a negative weight, ε ≤ 0, a teacher checkpoint of another number of classes,
            and the base class's errors.
    """

    name: ClassVar[str] = "s4l"
    default_mu: ClassVar[int] = 1

    def __init__(
        self, backbone: nn.Module, rotation_weight: float = 1.0, entropy_weight: float = 0.0, vat_weight: float = 0.0,
        vat_epsilon: float = 1.0, teacher: str | None = None, ema: float = 0.0, task: str = "rotation", copies: int = 8,
        exemplar_dim: int = 128, **options: Any,
    ) -> None:
        self.teacher_path = teacher
        self._teacher: list[SemiSupervised] = []
        """The frozen teacher, held in a list so that it is neither a submodule nor saved."""
        if teacher is not None:
            from selfsup.run.restore import load_method

            loaded, _ = load_method(teacher)
            if not isinstance(loaded, SemiSupervised):
                raise ValueError(f"teacher: {teacher} holds method {loaded.name}, not a semi-supervised classifier")
            loaded.requires_grad_(False)
            self._teacher.append(loaded)
        super().__init__(backbone, ema=ema, **options)
        if task not in TASKS:
            raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
        self.task = task
        self.copies = check_count("copies", copies, 2)
        self.exemplar_head = nn.Linear(self.feature_dim, check_count("exemplar_dim", exemplar_dim, 1)) if task == "exemplar" else None
        infinite = float("inf")
        self.rotation_weight = check_fraction("rotation_weight", rotation_weight, 0.0, infinite)
        self.entropy_weight = check_fraction("entropy_weight", entropy_weight, 0.0, infinite)
        self.vat_weight = check_fraction("vat_weight", vat_weight, 0.0, infinite)
        if not (isinstance(vat_epsilon, (int, float)) and vat_epsilon > 0):
            raise ValueError(f"vat_epsilon: expected > 0, got {vat_epsilon!r}")
        self.vat_epsilon = float(vat_epsilon)
        self.rotation_head = nn.Linear(self.feature_dim, ROTATIONS) if task == "rotation" else None

    def build_heads(self, classes: int) -> None:
        super().build_heads(classes)
        teacher = getattr(self, "_teacher", None)
        if teacher and teacher[0].classes != classes:
            raise ValueError(f"teacher: {self.teacher_path} classifies {teacher[0].classes} classes, this run {classes}")

    def labelled_views(self, size: int) -> MultiView:
        """One weak view of every image; for ``exemplar`` then ``copies`` strong ones (the heavy
        augmentation of the exemplar task: RandAugment and Cutout)."""
        weak, strong = self.weak_and_strong(size)
        return MultiView([weak] + ([strong] * self.copies if self.task == "exemplar" else []))

    def unlabelled_views(self, size: int) -> MultiView:
        return self.labelled_views(size)

    def self_supervised_loss(self, batch: dict[str, torch.Tensor], images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits of the weak ``images`` ``(N, K)`` and the task's loss, from one backbone pass."""
        count = len(images)
        if self.task == "rotation":
            assert self.rotation_head is not None
            features = self.backbone(rotations(images))
            targets = torch.arange(ROTATIONS, device=images.device).repeat_interleave(count)
            return self.head(features[:count]), F.cross_entropy(self.rotation_head(features), targets)
        assert self.exemplar_head is not None
        parts = [batch["labelled_more"]] if "labelled_more" in batch else []
        if "unlabelled" in batch:
            parts.append(batch["unlabelled"][1:])
        copies = torch.cat(parts, dim=1)  # (C, N, 3, S, S): the labelled images, then the pool's
        features = self.backbone(torch.cat([images, copies.flatten(0, 1)]))
        embeddings = self.exemplar_head(features[count:])
        identities = batch["keys"].repeat(copies.shape[0])
        return self.head(features[:count]), batch_hard_triplet_loss(embeddings, identities, margin=0.5, gather=True)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labelled, labels = batch["labelled"], batch["labels"]
        pool = batch.get("unlabelled")
        images = labelled if pool is None else torch.cat([labelled, pool[0]])
        class_logits, task_loss = self.self_supervised_loss(batch, images)
        out = self.supervised_loss(class_logits[: len(labelled)], labels)
        loss = out["supervised"] + self.rotation_weight * task_loss
        metrics = {**out, self.task: task_loss.detach()}
        if pool is not None:
            pool_logits = class_logits[len(labelled) :]
            if self._teacher:
                teacher = self._teacher[0].to(images.device)
                pseudo = teacher.predict_logits(pool[0]).argmax(1)
                pseudo_loss = F.cross_entropy(pool_logits, pseudo)
                loss = loss + pseudo_loss
                metrics["pseudo_labels"] = pseudo_loss.detach()
            if self.entropy_weight:
                minimised = entropy(pool_logits)
                loss = loss + self.entropy_weight * minimised
                metrics["entropy"] = minimised.detach()
            if self.vat_weight:
                adversarial = vat_loss(Classifier(self.backbone, self.head), pool[0], pool_logits, self.vat_epsilon)
                loss = loss + self.vat_weight * adversarial
                metrics["vat"] = adversarial.detach()
        return {"loss": loss, **metrics}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(S4L)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "s4l", optimizer="sgd", lr=0.03, weight_decay=5e-4, batch_size=64, datasets=UNFLIPPED_DATASETS,
            summary="SGD at 0.03, weight decay 5e-4, rotation weight 1, mu = 1 (the paper: SGD 0.1 at batch 256 on ImageNet)",
        )
    )
