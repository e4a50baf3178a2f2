"""Clip-level contrast: ρ clips of one video as the positives of SimCLR, BYOL or MoCo
(Feichtenhofer, Fan, Xiong, Girshick & He 2021, "A Large-Scale Study on Unsupervised
Spatiotemporal Representation Learning", arXiv:2104.14558: ρSimCLR, ρBYOL, ρMoCo).

Instead of two augmentations of one image, the views are ρ clips of ``clip_length`` frames cut
at independent random times from the same video (:func:`selfsup.ops.rho_clips`, natively); the
frames of one clip share one augmentation draw (the image method's view ``r`` for clip ``r``,
with a stream of its own), so a clip stays a coherent video. The encoder is a clip backbone —
the registered ``small_r2plus1d`` by default — and every loss is the image method's own:
``make_batch`` gives ``views (ρ, N, 3, L, S, S)`` where the image methods have ``(V, N, 3, S, S)``,
and their training steps encode it unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch

from selfsup.hookspecs import Register, hookimpl
from selfsup.methods.byol import BYOL
from selfsup.methods.joint import JointEmbedding
from selfsup.methods.moco import MoCo
from selfsup.methods.simclr import SimCLR
from selfsup.ops.video import rho_clips
from selfsup.run.recipe import Recipe


class ClipViews:
    """The ρ-clip data side for a :class:`~selfsup.methods.joint.JointEmbedding` method (a mixin
    in front of it): ``clip_length`` L and ``stride`` from the options, ρ = the method's views."""

    takes_clips: ClassVar[bool] = True
    takes_originals: ClassVar[bool] = True
    clip_length: int
    stride: int

    def setup_clips(self, clip_length: int, stride: int) -> None:
        if clip_length < 1 or stride < 1:
            raise ValueError(f"clip_length, stride: expected positive ints, got {clip_length}, {stride}")
        self.clip_length, self.stride = int(clip_length), int(stride)

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64],
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        method: Any = self
        assert isinstance(method, JointEmbedding)
        if not (isinstance(images, np.ndarray) and images.ndim == 5):
            from selfsup.data.clips import clip_squares

            if method.image_size is None:
                raise ValueError("image_size: clips decoded from files need the side of the crops; give the method an image_size")
            images = clip_squares(images, method.image_size)
        pipeline = method.view_pipeline(method.image_size or int(images.shape[2]))
        rho = len(pipeline.views)
        index = np.asarray(indices, dtype=np.int64)
        frames, _ = rho_clips(images, rho=rho, length=self.clip_length, stride=self.stride, seed=seed, epoch=epoch, indices=index)
        n, _, length, h, w, c = frames.shape
        views = []
        compositions: list[Any] = list(pipeline.views)
        for r, view in enumerate(compositions):
            streams = np.repeat(index * rho + r, length)  # one draw per clip, another for each clip
            out = view(np.ascontiguousarray(frames[:, r]).reshape(n * length, h, w, c), seed=seed, epoch=epoch, indices=streams)
            views.append(out.view(n, length, *out.shape[1:]).transpose(1, 2))
        return {"views": torch.stack(views).to(device)}


class RhoSimCLR(ClipViews, SimCLR):
    """ρSimCLR: SimCLR's options, ``views`` = ρ, and ``clip_length``, ``stride``."""

    name: ClassVar[str] = "rho_simclr"

    def __init__(self, backbone: torch.nn.Module, clip_length: int = 8, stride: int = 1, **options: Any) -> None:
        super().__init__(backbone, **options)
        self.setup_clips(clip_length, stride)


class RhoBYOL(ClipViews, BYOL):
    """ρBYOL (ρ = 2): BYOL's options and ``clip_length``, ``stride``."""

    name: ClassVar[str] = "rho_byol"

    def __init__(self, backbone: torch.nn.Module, clip_length: int = 8, stride: int = 1, **options: Any) -> None:
        super().__init__(backbone, **options)
        self.setup_clips(clip_length, stride)


class RhoMoCo(ClipViews, MoCo):
    """ρMoCo (ρ = 2): MoCo's options and ``clip_length``, ``stride``."""

    name: ClassVar[str] = "rho_moco"

    def __init__(self, backbone: torch.nn.Module, clip_length: int = 8, stride: int = 1, **options: Any) -> None:
        super().__init__(backbone, **options)
        self.setup_clips(clip_length, stride)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(RhoSimCLR)
    register(RhoBYOL)
    register(RhoMoCo)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    clip = {"backbone": "small_r2plus1d", "backbone_options": {"width": 8}, "batch_size": 32}
    register(Recipe("rho_simclr", optimizer="adamw", lr=2e-3, options={"temperature": 0.2}, **clip,  # type: ignore[arg-type]
                    summary="AdamW at 2e-3, tau 0.2 (SimCLR's recipe here), 2 clips of 8 frames, a (2+1)D ResNet"))
    register(Recipe("rho_byol", optimizer="adamw", lr=1e-3, **clip,  # type: ignore[arg-type]
                    summary="AdamW at 1e-3, 2 clips of 8 frames, a (2+1)D ResNet"))
    register(Recipe("rho_moco", optimizer="adamw", lr=1e-3, options={"queue_size": 256}, **clip,  # type: ignore[arg-type]
                    summary="AdamW at 1e-3, a queue of 256 keys (fewer than the clips: chosen on validation clips), "
                            "2 clips of 8 frames, a (2+1)D ResNet"))
