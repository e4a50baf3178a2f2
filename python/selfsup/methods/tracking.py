"""Tracking triplets (Wang & Gupta 2015, "Unsupervised Learning of Visual Representations using
Videos", ICCV, arXiv:1505.00687).

A patch that moves is followed through ``window`` frames (:func:`selfsup.ops.track_patches`:
the most-changing of a few candidate patches, tracked natively by block matching where the paper
runs KCF); the patch at the start and the patch at the end are two views of one object. With
embeddings f (a linear layer on the backbone's features) and D(a, b) = 1 − cos(f(a), f(b)),

    L = mean over (anchor a, positive p, negative n) of max(0, D(a, p) − D(a, n) + M),  M = 0.5,

the negatives of an anchor being patches of the other clips of the batch: half the hardest
(those of largest loss, the paper's hard-negative mining: its top K of the batch) and half drawn
at random (by a hash of the run's seed, the micro-batch and the two clips' keys, so the choice
does not depend on the ranks). Under DDP the candidates are all-gathered (with gradient).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from selfsup_kernels.distributed import gather as gather_rows
from selfsup_kernels.distributed import gather_labels
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.losses.metric import ranking_loss
from selfsup.methods.temporal import TemporalMethod
from selfsup.ops.video import track_patches
from selfsup.run.recipe import Recipe


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A fixed integer mixing of int64 values (splitmix-style, wrapping), the same on every device and layout."""
    x = (x ^ (x >> 31)) * 0x5BD1E9955BD1E995
    x = (x ^ (x >> 29)) * 0x27D4EB2F165667C5
    return x ^ (x >> 32)


def mined_negatives(
    anchors: torch.Tensor, positives: torch.Tensor, candidates: torch.Tensor, anchor_keys: torch.Tensor, candidate_keys: torch.Tensor,
    hard: int, random: int, draw: int, margin: float,
) -> torch.Tensor:
    """``(N, hard + random, D)`` negatives per anchor from ``candidates (M, D)``: never a row of
    the anchor's own clip (``candidate_keys // 2 == anchor_keys``: a candidate's key is its clip's
    key times 2 plus its end), first the ``hard`` of largest ranking loss, then ``random`` others
    in the order of a hash of ``(draw, anchor key, candidate key)`` — a uniform choice that does
    not depend on how the global batch is laid out over ranks."""
    d_positive = 1 - F.cosine_similarity(anchors, positives, dim=1)
    d_candidates = 1 - F.cosine_similarity(anchors[:, None, :].detach(), candidates[None, :, :].detach(), dim=2)
    own = (candidate_keys // 2)[None, :] == anchor_keys[:, None]
    losses = torch.where(own, torch.full_like(d_candidates, -torch.inf), d_positive.detach()[:, None] - d_candidates + margin)
    chosen = losses.topk(hard, dim=1).indices
    if random:
        scores = _mix(_mix(_mix(torch.full_like(anchor_keys, draw)) + anchor_keys)[:, None] + candidate_keys[None, :])
        excluded = own.clone()
        excluded.scatter_(1, chosen, True)
        scores = torch.where(excluded, torch.full_like(scores, torch.iinfo(torch.int64).min), scores)
        chosen = torch.cat([chosen, scores.topk(random, dim=1).indices], dim=1)
    return candidates[chosen]


class TrackingTriplets(TemporalMethod):
    """Args:
        backbone: the patch encoder (an ``out_dim`` attribute). patch, window, search,
            candidates: the tracking rule (:func:`selfsup.ops.track_patches`). negatives: per
            anchor, half hard and half random. margin: M. embedding_dim: the size of f.
            image_size: the side the patches are brought to (default: ``patch``).

    Shapes: ``make_batch`` turns clips ``(N, T, H, W, 3)`` into ``patches (N, 2, 3, S, S)``,
    ``keys (N,)`` (the clips' key indices) and ``draw (2,)`` (the seed and micro-batch of the
    random negatives).

    Raises:
        ValueError: ``negatives`` < 1, ``margin`` < 0, ``embedding_dim`` < 1, the tracking rule's errors.
    """

    name: ClassVar[str] = "tracking"
    views: ClassVar[tuple[str, ...]] = ("patches",)
    crop_scale: ClassVar[tuple[float, float]] = (0.8, 1.0)

    def __init__(
        self, backbone: nn.Module, patch: int = 24, window: int = 8, search: int = 4, candidates: int = 16, negatives: int = 4,
        margin: float = 0.5, embedding_dim: int = 128, image_size: int | None = None,
    ) -> None:
        super().__init__(backbone, image_size)
        if negatives < 1 or margin < 0 or embedding_dim < 1:
            raise ValueError(f"negatives, margin, embedding_dim: expected >= 1, >= 0, >= 1, got {negatives}, {margin}, {embedding_dim}")
        self.patch, self.window, self.search, self.candidates = int(patch), int(window), int(search), int(candidates)
        self.negatives, self.margin = int(negatives), float(margin)
        self.embedding = nn.Linear(self.feature_dim, embedding_dim)

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64],
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        tracks = track_patches(
            self.clips_of(images), patch=self.patch, window=self.window, search=self.search, candidates=self.candidates, seed=seed,
            epoch=epoch, indices=index,
        )
        n, _, p, _, c = tracks.patches.shape
        size = self.image_size or p
        streams = (index[:, None] * 2 + np.arange(2)[None, :]).reshape(-1)  # the two ends: independent draws
        patches = self.augmentation(size)(tracks.patches.reshape(n * 2, p, p, c), seed=seed, epoch=epoch, indices=streams)
        return {
            "patches": patches.view(n, 2, 3, size, size).to(device), "keys": torch.from_numpy(index).to(device),
            "draw": torch.tensor([seed, epoch], dtype=torch.int64).to(device),
        }

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        patches = batch["patches"]
        z = self.embedding(self.backbone(patches.flatten(0, 1))).view(patches.shape[0], 2, -1)
        anchors, positives = z[:, 0], z[:, 1]
        everyone, _ = gather_rows(z)
        keys = gather_labels(batch["keys"])
        candidate_keys = (keys[:, None] * 2 + torch.arange(2, device=z.device)[None, :]).reshape(-1)
        seed, micro = (int(v) for v in batch["draw"])
        hard = self.negatives // 2
        negatives = mined_negatives(
            anchors, positives, everyone.flatten(0, 1), batch["keys"], candidate_keys, hard, self.negatives - hard, seed * 1_000_003 + micro,
            self.margin,
        )
        loss = ranking_loss(anchors, positives, negatives, self.margin)
        with torch.no_grad():
            closer = (F.cosine_similarity(anchors, positives, dim=1)[:, None] > F.cosine_similarity(anchors[:, None], negatives, dim=2))
        return {"loss": loss, "ranked": closer.float().mean()}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(TrackingTriplets, aliases=("tracking_triplets",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("tracking", optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=32,
                    summary="AdamW at 1e-3 (the paper: SGD on AlexNet), 24-px patches tracked 8 frames, 4 negatives, margin 0.5"))
