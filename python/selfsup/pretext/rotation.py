"""Rotation prediction (Gidaris, Singh & Komodakis 2018, "Unsupervised Representation Learning
by Predicting Image Rotations", arXiv:1803.07728): 4-way classification of 0/90/180/270°."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.pretext.base import PretextBatch


@dataclass(frozen=True)
class Rotation:
    """Inputs: the rotated images, ``(4N, H, W, C)`` uint8 with ``all_rotations`` (the paper feeds
    all four rotations of each image in the same batch) or ``(N, H, W, C)`` with one random
    rotation each. Targets: ``k`` in {0, 1, 2, 3}, rotation by 90°·k counter-clockwise."""

    name: ClassVar[str] = "rotation"
    num_classes: ClassVar[int] = 4
    all_rotations: bool = True

    def __call__(
        self, images: Any, *, seed: int, epoch: int = 0, indices: npt.NDArray[np.int64] | None = None
    ) -> PretextBatch:
        out = ops.rotations(images, mode="all" if self.all_rotations else "random", seed=seed, epoch=epoch, indices=indices)
        return PretextBatch(out.images, out.labels)


@hookimpl
def selfsup_register_pretext_tasks(register: Register) -> None:
    register(Rotation, aliases=("rotnet",))
