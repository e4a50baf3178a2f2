"""The data side: an image downsampled ×2 and its 2×2 grid of tiles, each of half the side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

import selfsup.ops as ops
from selfsup.pretext import PretextBatch


@dataclass(frozen=True)
class CountingTiles:
    """Inputs: ``(N, 4, H/2, W/2, C)`` uint8, the quadrants of each image (row-major). Targets:
    ``(N, H/2, W/2, C)`` uint8, the whole image downsampled ×2 by 2×2 averaging (rounded)."""

    name: ClassVar[str] = "counting_tiles"

    def __call__(self, images: Any, *, seed: int, epoch: int = 0, indices: npt.NDArray[np.int64] | None = None) -> PretextBatch:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] % 2 or images.shape[2] % 2:
            raise ValueError(f"images: expected (N, H, W, C) with even H and W, got {images.shape}")
        n, h, w, c = images.shape
        tiles = ops.patch_grid(images, grid=2, cell=h // 2, patch=h // 2, jitter=False, seed=seed, epoch=epoch, indices=indices).tiles
        if w != h:
            raise ValueError(f"images: counting needs square images, got {h}x{w}")
        pooled = images.reshape(n, h // 2, 2, w // 2, 2, c).astype(np.uint16).sum(axis=(2, 4))
        downsampled = ((pooled + 2) // 4).astype(np.uint8)
        return PretextBatch(tiles, downsampled)
