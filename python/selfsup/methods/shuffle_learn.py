"""Shuffle and Learn (Misra, Zitnick & Hebert 2016, "Shuffle and Learn: Unsupervised Learning using
Temporal Order Verification", arXiv:1603.08561).

From every clip a tuple of three frames is drawn from a high-motion window (§3.1,
:func:`selfsup.ops.shuffle_learn_tuples`: windows ranked by the mean absolute frame difference,
a stand-in for the optical flow the paper ranks by; five frames a < b < c < d < e; the positive
(b, c, d) or its reverse, the negatives (b, a, d) and (b, e, d)). The three frames of a tuple get
one augmentation draw — the same crop and colour, so nothing but their content tells their
order. A shared trunk embeds each frame; the concatenated features go to a classifier of "in
order or not" (§3.2, the paper's fc8 on concatenated fc7 features):

    L = −(1/N) Σ_n log softmax(g([f(x_n1), f(x_n2), f(x_n3)]))_{y_n},   y_n = 1 for a positive.

Defaults: windows of 10 frames, the top half by motion, a quarter of the tuples positive (the
paper's share), random resized crops of 60–100 % and colour jitter shared by a tuple's frames.
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
from selfsup.ops.video import shuffle_learn_tuples
from selfsup.run.recipe import Recipe


class ShuffleLearn(TemporalMethod):
    """Args:
        backbone: the frame encoder (an ``out_dim`` attribute). window, top_fraction,
            positive_rate: the tuple rule (:func:`selfsup.ops.shuffle_learn_tuples`).
        image_size: the side of the crops (default: the frames' side). hidden_dim: the width of
            the order classifier (default: the backbone's feature size).

    Shapes: ``make_batch`` turns clips ``(N, T, H, W, 3)`` (or a list of ``(T, H, W, 3)`` of one
    frame count) into ``frames (N, 3, 3, S, S)`` and ``labels (N,)``.

    Raises:
        ValueError: the tuple rule's errors, ``image_size`` < 8.
    """

    name: ClassVar[str] = "shuffle_learn"
    views: ClassVar[tuple[str, ...]] = ("frames", "labels")

    def __init__(
        self, backbone: nn.Module, window: int = 10, top_fraction: float = 0.5, positive_rate: float = 0.25, image_size: int | None = None,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__(backbone, image_size)
        if window < 5:
            raise ValueError(f"window: expected at least 5 frames, got {window}")
        if not 0 < top_fraction <= 1:
            raise ValueError(f"top_fraction: expected a share in (0, 1], got {top_fraction}")
        if not 0 <= positive_rate <= 1:
            raise ValueError(f"positive_rate: expected a probability in [0, 1], got {positive_rate}")
        self.window, self.top_fraction, self.positive_rate = int(window), float(top_fraction), float(positive_rate)
        hidden = hidden_dim or self.feature_dim
        self.classifier = nn.Sequential(nn.Linear(3 * self.feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64],
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        """The tuple's three frames share one augmentation draw: they go through the pipeline with
        their clip's stream number."""
        clips = self.clips_of(images)
        index = np.asarray(indices, dtype=np.int64)
        tuples = shuffle_learn_tuples(
            clips, window=self.window, top_fraction=self.top_fraction, positive_rate=self.positive_rate, seed=seed, epoch=epoch, indices=index,
        )
        n, _, h, w, c = tuples.frames.shape
        size = self.image_size or h
        frames = self.augmentation(size)(tuples.frames.reshape(n * 3, h, w, c), seed=seed, epoch=epoch, indices=np.repeat(index, 3))
        return {"frames": frames.view(n, 3, 3, size, size).to(device), "labels": torch.from_numpy(tuples.labels).to(device)}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames, labels = batch["frames"], batch["labels"]
        features = self.backbone(frames.flatten(0, 1)).view(frames.shape[0], -1)
        logits = self.classifier(features)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean().detach()
        return {"loss": loss, "accuracy": accuracy, "positives": labels.float().mean()}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(ShuffleLearn, aliases=("frame_order",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("shuffle_learn", optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=32,
                    summary="AdamW at 1e-3 (the paper: SGD 0.01 on CaffeNet), a batch of 32 tuples"))
