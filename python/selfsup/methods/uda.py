"""Unsupervised Data Augmentation (Xie, Dai, Hovy, Luong & Le 2019, "Unsupervised Data Augmentation
for Consistency Training", arXiv:1904.12848).

B labelled images (weak views) with Training Signal Annealing, and μB pool images seen twice: the
weakly augmented original and a RandAugment view (§3.1–3.3, :mod:`selfsup.losses.uda`):

    ℓ = CE_TSA(labelled) + λ_u · 1/(μB) Σ_b 1(max p(y | x̃_b) ≥ β) · KL(sharpen_τ(p(y | x̃_b)) ‖ p(y | x̂_b)),

the target distribution without gradient, sharpened by the softmax temperature τ = 0.4, masked
at confidence β = 0.8, and TSA leaving out labelled images predicted above η_t (``linear``,
``log`` or ``exp`` schedule over the run). The step t and the run's length T are kept in a
buffer, so a resumed run continues the schedule. Under DDP the TSA count of kept images is
all-reduced (the labelled loss is the global batch's); the consistency term is a per-image mean.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.uda import TSA_SCHEDULES, tsa_cross_entropy, tsa_threshold, uda_consistency
from selfsup.methods.semi_supervised import UNFLIPPED_DATASETS, SemiSupervised, check_fraction
from selfsup.run.recipe import Recipe


class UDA(SemiSupervised):
    """Args: as :class:`~selfsup.methods.semi_supervised.SemiSupervised`, and ``temperature`` τ,
    ``confidence`` β, ``tsa`` (``linear``, ``log``, ``exp`` or ``none``), ``lambda_u`` λ_u.

    Raises:
        ValueError: ``temperature`` ≤ 0, ``confidence`` outside [0, 1], an unknown ``tsa``,
            ``lambda_u`` < 0, and the base class's errors.
    """

    name: ClassVar[str] = "uda"

    def __init__(
        self, backbone: nn.Module, temperature: float = 0.4, confidence: float = 0.8, tsa: str = "linear", lambda_u: float = 1.0,
        **options: object,
    ) -> None:
        super().__init__(backbone, **options)  # type: ignore[arg-type]
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature: expected > 0, got {temperature!r}")
        if tsa not in TSA_SCHEDULES:
            raise ValueError(f"tsa: expected one of {', '.join(TSA_SCHEDULES)}, got {tsa!r}")
        self.temperature = float(temperature)
        self.confidence = check_fraction("confidence", confidence)
        self.tsa = tsa
        self.lambda_u = check_fraction("lambda_u", lambda_u, 0.0, float("inf"))

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labelled, pool = self.logits_of(batch)
        labels = batch["labels"]
        step, total = (int(v) for v in self.progress)
        threshold = tsa_threshold(self.tsa, step, total, labelled.shape[1])
        supervised = self.supervised_loss(labelled, labels)
        if labels.numel():
            supervised["supervised"], supervised["tsa_kept"] = tsa_cross_entropy(labelled, labels, threshold, gather=True)
        if pool is None:
            return {"loss": supervised["supervised"], **supervised}
        consistency, mask = uda_consistency(pool[0], pool[1], self.temperature, self.confidence)
        return {"loss": supervised["supervised"] + self.lambda_u * consistency, **supervised, "unlabelled": consistency.detach(), "mask": mask}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(UDA)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "uda", optimizer="sgd", lr=0.03, weight_decay=5e-4, batch_size=64, datasets=UNFLIPPED_DATASETS, options={"tsa": "none"},
            summary="SGD at 0.03, weight decay 5e-4, B = 64, mu = 7, tau = 0.4, beta = 0.8; no TSA, chosen on the validation splits "
            "of digits and photo patches (docs/semi_supervised.md)",
        )
    )
