"""What the joint-embedding methods share: augmented views from a native pipeline, one encoder pass
over all views, the exponential moving average of momentum encoders, global-batch gathering."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD
from selfsup.methods.base import Method
from selfsup.transforms import MultiView, Normalize, byol, clip, mocov2, simclr

BLUR_MIN_SIZE = 64
"""Views smaller than this get no Gaussian blur (SimCLR, arXiv:2002.05709, Appendix B.9: none on CIFAR)."""

AUGMENTATIONS: dict[str, Callable[..., MultiView]] = {"simclr": simclr, "byol": byol, "mocov2": mocov2, "clip": clip}


def view_side(images: Any, image_size: int | None) -> int:
    """The side of the views cut from ``images``: ``image_size``, or the height of a uint8
    ``(N, H, W, 3)`` batch; decoded originals (a list of ``(H, W, 3)`` arrays) need ``image_size``.

    Raises:
        ValueError: a batch that is not ``(N, H, W, 3)``; a list without ``image_size``.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 (N, H, W, 3), got shape {images.shape}")
        return image_size or int(images.shape[1])
    if any(getattr(image, "ndim", 0) != 3 or image.shape[-1] != 3 for image in images):
        raise ValueError("images: expected uint8 (H, W, 3) originals")
    if image_size is None:
        raise ValueError("image_size: views cut from originals of different sizes need their side; give the method an image_size")
    return image_size


class JointEmbedding(Method):
    """A method trained on ``V`` augmented views of every image.

    Subclasses set ``default_augmentation`` (a key of :data:`AUGMENTATIONS`) and may override :meth:`build_views`;
    ``augmentation`` names another key for one instance (default: ``default_augmentation``).
    ``make_batch`` returns ``views (V, N, 3, S, S)``, normalised like
    :func:`selfsup.models.inputs.images_to_tensor` so that probing sees the statistics training saw.
    """

    views: ClassVar[tuple[str, ...]] = ("views",)
    default_augmentation: ClassVar[str] = "simclr"
    takes_originals: ClassVar[bool] = True

    def __init__(
        self, backbone: nn.Module, image_size: int | None = None, blur: bool | None = None, augmentation: str | None = None
    ) -> None:
        super().__init__(backbone)
        if image_size is not None and image_size < 8:
            raise ValueError(f"image_size: expected at least 8 pixels, got {image_size}")
        if augmentation is not None and augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation: expected one of {', '.join(AUGMENTATIONS)}, got {augmentation!r}")
        self.augmentation = augmentation or self.default_augmentation
        self.image_size = image_size
        self.blur = blur
        self._pipelines: dict[int, MultiView] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the compiled pipelines behind; they are rebuilt on demand."""
        state = self.__dict__.copy()
        state["_pipelines"] = {}
        return state

    def uses_blur(self, size: int) -> bool:
        return size >= BLUR_MIN_SIZE if self.blur is None else self.blur

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        """The pipeline for views of side ``size``: the named augmentation, without blur on small images."""
        return AUGMENTATIONS[self.augmentation](size, normalize=normalize, blur=self.uses_blur(size))

    def view_pipeline(self, size: int) -> MultiView:
        if size not in self._pipelines:
            self._pipelines[size] = self.build_views(size, Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD))
        return self._pipelines[size]

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        size = view_side(images, self.image_size)
        views = self.view_pipeline(size)(images, seed=seed, epoch=epoch, indices=indices)
        return {key: value.to(device) for key, value in self.group_views(views).items()}

    def group_views(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The pipeline's views as batch entries; by default all stacked as ``views (V, N, 3, S, S)``."""
        return {"views": torch.stack(views)}

    @staticmethod
    def encode(encoder: Callable[[torch.Tensor], torch.Tensor], views: torch.Tensor) -> torch.Tensor:
        """``(V, N, 3, S, S)`` → ``(V, N, D)`` in one pass, so BatchNorm sees all views together."""
        out = encoder(views.flatten(0, 1))
        return out.view(views.shape[0], views.shape[1], -1)


class MultiCrop(JointEmbedding):
    """A joint-embedding method on multi-crop views (Caron et al. 2020, arXiv:2006.09882, §3.2;
    DINO and SwAV): ``global_crops`` views of side S that every branch sees, and ``local_crops``
    small views of side s (default S·96/224, the papers' 96 of 224) that only the predicting branch
    sees. ``make_batch`` returns ``views (G, N, 3, S, S)`` and, when L > 0, ``local (L, N, 3, s, s)``.

    Subclasses build a pipeline whose first G views are the global ones (:meth:`local_side` gives s).
    """

    global_crops: ClassVar[int] = 2

    def __init__(
        self, backbone: nn.Module, local_crops: int, local_size: int | None = None, image_size: int | None = None, blur: bool | None = None
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        if local_crops < 0:
            raise ValueError(f"local_crops: expected >= 0, got {local_crops}")
        if local_size is not None and local_size < 8:
            raise ValueError(f"local_size: expected at least 8 pixels, got {local_size}")
        self.local_crops = int(local_crops)
        self.local_size = local_size

    def local_side(self, size: int) -> int:
        """s for global views of side ``size``: ``local_size``, or ``size``·96/224 (at least 8)."""
        return self.local_size or max(8, round(size * 96 / 224))

    def group_views(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {"views": torch.stack(views[: self.global_crops])}
        if len(views) > self.global_crops:
            batch["local"] = torch.stack(views[self.global_crops :])
        return batch

    def encode_crops(self, encoder: Callable[[torch.Tensor], torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Every crop of ``batch`` through ``encoder``: ``(G + L, N, D)``, the global crops first;
        one pass per crop size."""
        out = self.encode(encoder, batch["views"])
        if "local" in batch:
            out = torch.cat([out, self.encode(encoder, batch["local"])])
        return out


def check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}: expected > 0, got {value}")
