"""What the temporal methods share: clips in, frames augmented natively, one crop size per run."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from torch import nn

from selfsup.data.clips import clip_squares
from selfsup.methods.base import Method
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD
from selfsup.transforms import Compose, Normalize, clip_view


class TemporalMethod(Method):
    """A method trained on clips (:attr:`Method.takes_clips`): in-memory clip arrays arrive as
    they are, clips decoded from files are brought to ``image_size`` (:meth:`clips_of`); frames
    are augmented by a native pipeline of a random resized crop of ``crop_scale`` and colour
    jitter (:meth:`augmentation`), whose stream numbers decide which frames share a draw.

    Raises:
        ValueError: ``image_size`` < 8.
    """

    takes_originals: ClassVar[bool] = True
    takes_clips: ClassVar[bool] = True
    crop_scale: ClassVar[tuple[float, float]] = (0.6, 1.0)
    jitter: ClassVar[tuple[float, float, float, float]] = (0.4, 0.4, 0.2, 0.05)

    def __init__(self, backbone: nn.Module, image_size: int | None = None) -> None:
        super().__init__(backbone)
        if image_size is not None and image_size < 8:
            raise ValueError(f"image_size: expected at least 8 pixels, got {image_size}")
        self.image_size = image_size
        self._augmentations: dict[int, Compose] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the compiled pipelines behind; they are rebuilt on demand."""
        state = self.__dict__.copy()
        state["_augmentations"] = {}
        return state

    def augmentation(self, size: int) -> Compose:
        if size not in self._augmentations:
            normalize = Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD)
            self._augmentations[size] = clip_view(size, scale=self.crop_scale, jitter=self.jitter, normalize=normalize)
        return self._augmentations[size]

    def clips_of(self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
        """The batch's clips as one array: in-memory clips (5-D, or 6-D for two cameras) as they
        are, decoded clips cut to ``image_size`` squares."""
        if isinstance(images, np.ndarray) and images.ndim in (5, 6):
            return images
        if self.image_size is None:
            raise ValueError("image_size: clips decoded from files need the side of the crops; give the method an image_size")
        return clip_squares(images, self.image_size)
