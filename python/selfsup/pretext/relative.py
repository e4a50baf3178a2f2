"""Relative patch position (Doersch, Gupta & Efros 2015, "Unsupervised Visual Representation
Learning by Context Prediction", arXiv:1505.05192): 8-way classification of where a neighbour
patch lies around a centre patch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.pretext.base import PretextBatch


@dataclass(frozen=True)
class RelativePosition:
    """Inputs: ``(N, 2, patch, patch, C)`` uint8, centre then neighbour; targets: 0–7
    (``0 1 2 / 3 · 4 / 5 6 7``). Defaults from the paper: 96-px patches, 48-px gap, ±7 px jitter,
    colour dropping."""

    name: ClassVar[str] = "relative_position"
    num_classes: ClassVar[int] = 8
    patch: int = 96
    gap: int = 48
    jitter: int = 7
    drop_colors: bool = True

    def __call__(
        self, images: Any, *, seed: int, epoch: int = 0, indices: npt.NDArray[np.int64] | None = None
    ) -> PretextBatch:
        out = ops.relative_patches(
            images, self.patch, self.gap, self.jitter, drop_colors=self.drop_colors, seed=seed, epoch=epoch,
            indices=indices,
        )
        return PretextBatch(np.stack([out.centre, out.neighbour], axis=1), out.labels)


@hookimpl
def selfsup_register_pretext_tasks(register: Register) -> None:
    register(RelativePosition, aliases=("context_prediction",))
