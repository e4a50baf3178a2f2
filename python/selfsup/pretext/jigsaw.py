"""Jigsaw puzzles (Noroozi & Favaro 2016, "Unsupervised Learning of Visual Representations by
Solving Jigsaw Puzzles", arXiv:1603.09246): classify which permutation of a maximal-Hamming set
shuffled the 3×3 tiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.pretext.base import PretextBatch


@dataclass(frozen=True)
class Jigsaw:
    """Inputs: tiles ``(N, 9, patch, patch, C)``, float32 standardised per tile and channel (uint8
    with ``standardize=False``); targets: the permutation index in ``[0, permutations)``.

    Defaults follow the paper on 255-px crops: 3×3 cells of 85 px, 64-px tiles at random offsets,
    100 permutations; ``channel_jitter`` reads colour channels up to that many pixels apart.
    """

    name: ClassVar[str] = "jigsaw"
    permutations: int = 100
    grid: int = 3
    cell: int = 85
    patch: int = 64
    channel_jitter: int = 0
    standardize: bool = True
    permutation_seed: int = 0
    permutation_set: npt.NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        perms = ops.jigsaw_permutations(self.permutations, self.grid * self.grid, seed=self.permutation_seed)
        object.__setattr__(self, "permutation_set", perms)

    @property
    def num_classes(self) -> int:
        return self.permutations

    def __call__(
        self, images: Any, *, seed: int, epoch: int = 0, indices: npt.NDArray[np.int64] | None = None
    ) -> PretextBatch:
        out = ops.jigsaw(
            images, self.permutation_set, self.grid, self.cell, self.patch, channel_jitter=self.channel_jitter,
            standardize=self.standardize, seed=seed, epoch=epoch, indices=indices,
        )
        return PretextBatch(out.tiles, out.labels)


@hookimpl
def selfsup_register_pretext_tasks(register: Register) -> None:
    register(Jigsaw)
