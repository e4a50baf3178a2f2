"""Counting (Noroozi, Pirsiavash & Favaro 2017, "Representation Learning by Learning to Count",
arXiv:1708.06734).

A feature φ ≥ 0 that *counts* visual primitives must satisfy φ(D∘x) = Σ_j φ(T_j∘x): the counts
of the downsampled image equal the sum of the counts of its four tiles. To rule out φ ≡ 0, the
counts of a different image y must be far (paper eq. 5, margin M = 10):

    ℓ(x, y) = ‖φ(D∘x) − Σ_j φ(T_j∘x)‖² + max(0, M − ‖φ(D∘y) − Σ_j φ(T_j∘x)‖²)

y is the next image of the batch (a cyclic shift). φ is the backbone followed by a linear layer
and ReLU into ``counts`` dimensions (1000 in the paper).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.methods import Method, images_to_tensor
from selfsup_counting.task import CountingTiles


def counting_loss(whole: torch.Tensor, tiles: torch.Tensor, margin: float = 10.0) -> torch.Tensor:
    """``whole (N, K)`` counts of the downsampled images, ``tiles (N, 4, K)`` counts of their tiles;
    the mean over the batch of eq. 5 with ``y`` the next image of the batch."""
    if whole.ndim != 2 or tiles.shape != (whole.shape[0], 4, whole.shape[1]):
        raise ValueError(f"tiles: expected shape {(whole.shape[0], 4, whole.shape[1]) if whole.ndim == 2 else '(N, 4, K)'}, got {tuple(tiles.shape)}")
    if whole.shape[0] < 2:
        raise ValueError("whole: the contrastive term needs at least 2 images in the batch")
    summed = tiles.sum(dim=1)
    positive = (whole - summed).pow(2).sum(dim=1)
    negative = (whole.roll(-1, dims=0) - summed).pow(2).sum(dim=1)
    return (positive + torch.clamp(margin - negative, min=0)).mean()


class Counting(Method):
    name: ClassVar[str] = "counting"
    views: ClassVar[tuple[str, ...]] = ("whole", "tiles")

    def __init__(self, backbone: nn.Module, counts: int = 1000, margin: float = 10.0) -> None:
        super().__init__(backbone)
        if counts < 1 or margin <= 0:
            raise ValueError(f"counts, margin: expected counts >= 1 and margin > 0, got {counts}, {margin}")
        self.task = CountingTiles()
        self.counter = nn.Sequential(nn.Linear(self.feature_dim, counts), nn.ReLU())
        self.margin = margin

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        out = self.task(images, seed=seed, epoch=epoch, indices=indices)
        n = len(images)
        tiles = images_to_tensor(out.inputs.reshape(n * 4, *out.inputs.shape[2:]), device)
        return {"whole": images_to_tensor(out.targets, device), "tiles": tiles}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = batch["whole"].shape[0]
        counts = self.counter(self.backbone(torch.cat([batch["whole"], batch["tiles"]])))
        whole, tiles = counts[:n], counts[n:].view(n, 4, -1)
        loss = counting_loss(whole, tiles, self.margin)
        return {"loss": loss, "count_error": (whole - tiles.sum(1)).pow(2).sum(1).mean().detach()}
