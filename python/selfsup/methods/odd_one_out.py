"""Odd-One-Out networks (Fernando, Bilen, Gavves & Gould 2017, "Self-Supervised Video
Representation Learning With Odd-One-Out Networks", CVPR, arXiv:1611.06646).

Every clip poses a question: N + 1 subsequences, all in temporal order but one, which is
shuffled (:func:`selfsup.ops.odd_one_out`: each subsequence encoded as its dynamic image). A
shared trunk embeds each subsequence, f_1 … f_{N+1} in the order shown; the sum-of-differences
fusion (§3.2, SoD),

    a = Σ_{i=1}^{N+1} Σ_{j=i+1}^{N+1} (f_i − f_j),

feeds a linear classifier over the N + 1 positions, trained with cross-entropy on the odd one's
position. The subsequences of one question share one augmentation draw. Defaults: 6
subsequences of 4 frames (the paper's N + 1 = 6).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.methods.temporal import TemporalMethod
from selfsup.ops.video import odd_one_out
from selfsup.run.recipe import Recipe


def sum_of_differences(features: torch.Tensor) -> torch.Tensor:
    """SoD fusion of ``(N, Q, D)`` → ``(N, D)``: Σ_{i<j} (f_i − f_j) = Σ_i (Q + 1 − 2i) f_i (i from 1)."""
    q = features.shape[1]
    weights = q + 1 - 2 * torch.arange(1, q + 1, device=features.device, dtype=features.dtype)
    return (features * weights[None, :, None]).sum(dim=1)


class OddOneOutNetwork(TemporalMethod):
    """Args:
        backbone: the encoder of a dynamic image (an ``out_dim`` attribute). questions: N + 1.
        length: frames per subsequence. image_size: the side of the crops (default: the frames').

    Shapes: ``make_batch`` turns clips ``(N, T, H, W, 3)`` into ``images (N, Q, 3, S, S)`` and
    ``labels (N,)``.

    Raises:
        ValueError: ``questions`` < 2, ``length`` < 3, ``image_size`` < 8.
    """

    name: ClassVar[str] = "odd_one_out"
    views: ClassVar[tuple[str, ...]] = ("images", "labels")

    def __init__(self, backbone: nn.Module, questions: int = 6, length: int = 4, image_size: int | None = None) -> None:
        super().__init__(backbone, image_size)
        if questions < 2 or length < 3:
            raise ValueError(f"questions, length: expected >= 2 and >= 3, got {questions}, {length}")
        self.questions, self.length = int(questions), int(length)
        self.classifier = nn.Linear(self.feature_dim, self.questions)

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64],
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        drawn = odd_one_out(self.clips_of(images), questions=self.questions, length=self.length, seed=seed, epoch=epoch, indices=index)
        n, q, h, w, c = drawn.images.shape
        size = self.image_size or h
        views = self.augmentation(size)(drawn.images.reshape(n * q, h, w, c), seed=seed, epoch=epoch, indices=np.repeat(index, q))
        return {"images": views.view(n, q, 3, size, size).to(device), "labels": torch.from_numpy(drawn.labels).to(device)}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, labels = batch["images"], batch["labels"]
        features = self.backbone(images.flatten(0, 1)).view(images.shape[0], images.shape[1], -1)
        logits = self.classifier(sum_of_differences(features))
        loss = F.cross_entropy(logits, labels)
        return {"loss": loss, "accuracy": (logits.argmax(1) == labels).float().mean().detach()}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(OddOneOutNetwork, aliases=("o3n",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("odd_one_out", optimizer="adamw", lr=3e-3, weight_decay=1e-4, batch_size=32,
                    summary="AdamW at 3e-3 (the paper: SGD on CaffeNet; 1e-3 lost to random init on validation clips), "
                            "6 subsequences of 4 frames"))
