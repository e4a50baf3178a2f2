"""Time-Contrastive Networks (Sermanet, Lynch, Chebotar, Hsu, Jang, Schaal & Levine 2018,
"Time-Contrastive Networks: Self-Supervised Learning from Video", arXiv:1704.06888).

Frames close in time should embed close together, frames far apart far apart. From every clip K
anchor time steps are drawn (:func:`selfsup.ops.tcn_frames`) with a positive each:

- multi-view (two-camera clips ``(N, 2, T, H, W, 3)``): the same time step seen by the other
  camera; the rest of the batch — other time steps of the same scene among them — are negatives;
- single-view (clips ``(N, T, H, W, 3)``): a frame within ``pos_radius`` of the anchor, every
  other anchor's frames lying beyond ``neg_radius``.

The embeddings (a linear layer on the backbone's features to ``embedding_dim``) of each anchor
and its positive share a label; the loss is the triplet loss with semi-hard negatives mined in
the batch (margin 0.2, L2-normalised embeddings; §3.2) or the n-pairs loss
(:mod:`selfsup.losses.metric`). Anchor and positive are augmented with independent draws (two
cameras do not share a crop). Under DDP the candidates of every anchor are the global batch's
rows (all-gathered with gradient).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.metric import npairs_loss, triplet_semihard_loss
from selfsup.methods.temporal import TemporalMethod
from selfsup.ops.video import tcn_frames
from selfsup.run.recipe import Recipe

LOSSES = ("triplet", "npairs")


class TCN(TemporalMethod):
    """Args:
        backbone: the frame encoder (an ``out_dim`` attribute). anchors: K per clip.
        pos_radius, neg_radius: the single-view rule. loss: ``triplet`` or ``npairs``.
        margin: the triplet margin. embedding_dim: the embedding's size. image_size: the side of
            the crops (default: the frames' side).

    Shapes: ``make_batch`` turns clips ``(N, T, H, W, 3)`` or ``(N, 2, T, H, W, 3)`` into
    ``frames (N·K, 2, 3, S, S)`` (anchor, positive) and ``labels (N·K,)``.

    Raises:
        ValueError: an unknown loss, a negative margin, ``embedding_dim`` < 1, and the sampling
            rule's errors (at :meth:`make_batch`).
    """

    name: ClassVar[str] = "tcn"
    views: ClassVar[tuple[str, ...]] = ("frames", "labels")
    crop_scale: ClassVar[tuple[float, float]] = (0.7, 1.0)
    jitter: ClassVar[tuple[float, float, float, float]] = (0.3, 0.3, 0.2, 0.02)

    def __init__(
        self, backbone: nn.Module, anchors: int = 2, pos_radius: int = 1, neg_radius: int = 3, loss: str = "triplet", margin: float = 0.2,
        embedding_dim: int = 32, image_size: int | None = None,
    ) -> None:
        super().__init__(backbone, image_size)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        if margin < 0:
            raise ValueError(f"margin: expected >= 0, got {margin}")
        if embedding_dim < 1 or anchors < 1:
            raise ValueError(f"embedding_dim, anchors: expected >= 1, got {embedding_dim}, {anchors}")
        self.anchors, self.pos_radius, self.neg_radius = int(anchors), int(pos_radius), int(neg_radius)
        self.loss, self.margin = loss, float(margin)
        self.embedding = nn.Linear(self.feature_dim, embedding_dim)

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64],
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        clips = self.clips_of(images)
        index = np.asarray(indices, dtype=np.int64)
        drawn = tcn_frames(clips, anchors=self.anchors, pos_radius=self.pos_radius, neg_radius=self.neg_radius, seed=seed, epoch=epoch,
                           indices=index)
        n, k, _, h, w, c = drawn.frames.shape
        size = self.image_size or h
        streams = (index[:, None] * (2 * k) + np.arange(2 * k)[None, :]).reshape(-1)  # anchor and positive: independent draws
        frames = self.augmentation(size)(drawn.frames.reshape(n * k * 2, h, w, c), seed=seed, epoch=epoch, indices=streams)
        labels = (index[:, None] * k + np.arange(k)[None, :]).reshape(-1)
        return {"frames": frames.view(n * k, 2, 3, size, size).to(device), "labels": torch.from_numpy(labels).to(device)}

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(M, E)`` of frames ``(M, 3, S, S)`` (L2-normalised for the triplet loss)."""
        z: torch.Tensor = self.embedding(self.backbone(frames))
        return F.normalize(z, dim=1) if self.loss == "triplet" else z

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames, labels = batch["frames"], batch["labels"]
        z = self.embed(frames.flatten(0, 1)).view(frames.shape[0], 2, -1)
        if self.loss == "triplet":
            loss = triplet_semihard_loss(z.flatten(0, 1), labels.repeat_interleave(2), self.margin, gather=True)
        else:
            loss = npairs_loss(z[:, 0], z[:, 1], labels, gather=True)
        with torch.no_grad():
            distances = torch.cdist(z[:, 0].float(), z[:, 1].float())
            correct = (distances.argmin(dim=1) == torch.arange(len(z), device=z.device)).float().mean()
        return {"loss": loss, "alignment": correct}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(TCN, aliases=("time_contrastive",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("tcn", optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=32,
                    summary="AdamW at 1e-3, 2 anchors per clip, semi-hard triplets with margin 0.2 (Sermanet et al.)"))
