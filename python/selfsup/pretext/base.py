"""The interface every data-side pretext task follows."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt


class PretextBatch(NamedTuple):
    inputs: npt.NDArray[Any]
    """What the network sees, batch first."""
    targets: npt.NDArray[Any]
    """The self-supervised labels (class indices, soft targets or pixels), batch first."""


class PretextTask(Protocol):
    """``task(images, *, seed, epoch, indices) -> PretextBatch``.

    ``images`` is uint8 ``(N, H, W, C)``; randomness comes from the stream ``(seed, epoch,
    indices[i])`` of each sample, so a batch is reproducible whatever the thread count.
    """

    name: ClassVar[str]

    def __call__(
        self, images: Any, *, seed: int, epoch: int = 0, indices: npt.NDArray[np.int64] | None = None
    ) -> PretextBatch: ...
