"""MixMatch (Berthelot, Carlini, Goodfellow, Papernot, Oliver & Raffel 2019, "MixMatch: A Holistic
Approach to Semi-Supervised Learning", arXiv:1905.02249, Algorithm 1).

Each step: B labelled images in one weak view each, B·μ pool images in K weak views each. The
guessed label of a pool image is the sharpened mean of the model's predictions on its K views,
q = Sharpen((1/K) Σ_k p(y | û_k), T), without gradient. The labelled views with their one-hot
labels and the pool views with their guesses are mixed with a shuffled copy of the whole set
(MixUp, λ' = max(λ, 1 − λ), λ ~ Beta(α, α)), and

    ℓ = L_X + λ_U · r(t) · L_U,   L_X = cross-entropy on the mixed labelled part,
    L_U = squared error between the predicted and mixed guessed distributions (per class),

with r(t) ramping λ_U linearly from 0 over the first ``rampup`` share of the run
(:mod:`selfsup.losses.mixmatch`). Defaults are the paper's CIFAR-10 settings: K = 2, T = 0.5,
α = 0.75, λ_U = 75, μ = 1, EMA 0.999. λ and the shuffle are drawn from ``(seed, micro-batch)``.
Under DDP each rank mixes within its own share (the paper's code runs on one GPU); the losses
are per-image means over equal shares.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.mixmatch import linear_rampup, mixmatch_losses, mixup, sharpen
from selfsup.methods.semi_supervised import UNFLIPPED_DATASETS, SemiSupervised, check_count, check_fraction
from selfsup.run.recipe import Recipe
from selfsup.transforms import MultiView


class MixMatch(SemiSupervised):
    """Args: as :class:`~selfsup.methods.semi_supervised.SemiSupervised`, and ``augmentations`` K,
    ``temperature`` T, ``alpha`` α, ``lambda_u`` λ_U, ``rampup`` (share of the run).

    Shapes: ``make_batch`` gives ``labelled (B, 3, S, S)``, ``labels (B,)``, ``unlabelled (K, μB, 3, S, S)``.

    Raises:
        ValueError: K < 1, T ≤ 0, α ≤ 0, λ_U < 0, ``rampup`` outside [0, 1], and the base class's errors.
    """

    name: ClassVar[str] = "mixmatch"
    default_mu: ClassVar[int] = 1

    def __init__(
        self, backbone: nn.Module, augmentations: int = 2, temperature: float = 0.5, alpha: float = 0.75, lambda_u: float = 75.0,
        rampup: float = 0.25, **options: object,
    ) -> None:
        super().__init__(backbone, **options)  # type: ignore[arg-type]
        self.augmentations = check_count("augmentations", augmentations, 1)
        for name, value in (("temperature", temperature), ("alpha", alpha)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name}: expected > 0, got {value!r}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.lambda_u = check_fraction("lambda_u", lambda_u, 0.0, float("inf"))
        self.rampup = check_fraction("rampup", rampup)

    def unlabelled_views(self, size: int) -> MultiView:
        weak, _ = self.weak_and_strong(size)
        return MultiView([weak] * self.augmentations)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labelled, labels = batch["labelled"], batch["labels"]
        pool = batch.get("unlabelled")
        model = self.classifier()
        if pool is None or labels.numel() == 0:
            out = self.supervised_loss(model(labelled), labels)
            return {"loss": out["supervised"], **out}
        classes = self.head.out_features
        with torch.no_grad():
            views = pool.shape[0]
            guesses = torch.softmax(model(pool.flatten(0, 1)).float(), dim=1).view(views, pool.shape[1], classes).mean(0)
            guesses = sharpen(guesses, self.temperature)
        inputs = torch.cat([labelled, pool.flatten(0, 1)])
        targets = torch.cat([F.one_hot(labels, classes).to(guesses.dtype), guesses.repeat(views, 1)])
        seed, micro = (int(v) for v in batch["mix_seed"])
        mixed, mixed_targets, lam, _ = mixup(inputs, targets, self.alpha, np.random.default_rng([seed, micro, 0x313]))
        logits = model(mixed)
        count = len(labelled)
        supervised, unlabelled = mixmatch_losses(logits[:count], mixed_targets[:count], logits[count:], mixed_targets[count:])
        step, total = (int(v) for v in self.progress)
        weight = self.lambda_u * linear_rampup(step, round(self.rampup * total))
        accuracy = (logits[:count].argmax(1) == mixed_targets[:count].argmax(1)).float().mean().detach()
        return {
            "loss": supervised + weight * unlabelled, "supervised": supervised.detach(), "unlabelled": unlabelled.detach(),
            "accuracy": accuracy, "mix_lambda": torch.tensor(lam),
        }


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(MixMatch)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "mixmatch", optimizer="adamw", lr=2e-3, weight_decay=0.02, batch_size=64, datasets=UNFLIPPED_DATASETS,
            options={"lambda_u": 10.0},
            summary="Adam at 2e-3 with decoupled weight decay 0.02 (the code shrinks the weights by 0.02 lr a step), K = 2, T = 0.5, "
            "alpha = 0.75; lambda_U = 10, chosen on the validation splits of digits and photo patches (docs/semi_supervised.md: "
            "the paper's 75 collapses to one class in a short run)",
        )
    )
