"""The interface of a training method."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

def check_labels(labels: npt.ArrayLike, size: int) -> npt.NDArray[np.int64]:
    """``labels`` as ``int64 (size,)``: one integer class label per training image.

    Raises:
        ValueError: not ``size`` labels, or not integers.
    """
    array = np.asarray(labels)
    if array.shape != (size,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels: expected {size} integer class labels, got {array.dtype} {array.shape}")
    return array.astype(np.int64)


def batch_generator(seed: int, epoch: int, indices: npt.NDArray[np.int64]) -> torch.Generator:
    """A torch generator for a batch's noise (latent codes, prior samples), seeded by the run's
    ``seed``, the ``epoch`` and the batch's first dataset index: the same batch draws the same noise."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) * 7919 + int(indices[0]))


class Method(nn.Module):
    """A self-supervised method: a backbone plus whatever heads and state its objective needs.

    Subclasses set ``name`` and ``views`` (the inputs :meth:`make_batch` produces), and implement
    :meth:`make_batch` (the data side, through the native ops) and :meth:`training_step`.
    ``on_step_end`` is called after every optimizer step (momentum encoders, queues, schedules).
    """

    name: ClassVar[str]
    views: ClassVar[tuple[str, ...]]
    takes_originals: ClassVar[bool] = False
    """True when :meth:`make_batch` also takes a list of decoded originals of different sizes and
    cuts its own crops from them (random-resized crops, multi-crop); otherwise the data path
    brings decoded images to one size first (:func:`selfsup.data.pipeline.center_squares`)."""
    uses_labels: ClassVar[bool] = False
    """True for supervised methods, which train only with the labels given to :meth:`bind_dataset`."""
    takes_clips: ClassVar[bool] = False
    """True for temporal methods: their samples are clips ``(T, H, W, 3)`` (a clip source:
    :class:`~selfsup.data.clips.ClipArraySource`, :class:`~selfsup.data.clips.FrameFolderSource`)."""
    semi_supervised: ClassVar[bool] = False
    """True for methods trained on labelled and unlabelled images together: the trainer reads a
    :class:`~selfsup.data.semi.SemiSupervisedSource` with ``unlabelled_ratio`` pool images per
    labelled one (:class:`~selfsup.data.sampler.SemiSupervisedBatchSampler`)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        out_dim = getattr(backbone, "out_dim", None)
        if not isinstance(out_dim, int):
            raise ValueError("backbone: expected an nn.Module with an integer out_dim attribute")
        self.backbone = backbone
        self.feature_dim = out_dim

    @classmethod
    def prepare_backbone(cls, backbone: nn.Module, **options: Any) -> nn.Module:
        """The backbone as this method trains it, given the method's ``options`` (CPC v2 swaps
        BatchNorm for layer normalisation). Loaders of a checkpoint's backbone call it before
        loading the weights; unchanged by default."""
        return backbone

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement make_batch")

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement training_step")

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``training_step``, so ``DistributedDataParallel(method)(batch)`` synchronises gradients."""
        return self.training_step(batch)

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Called by the trainer (and by checkpoint loading) before the first step with the number of
        training images and, when the dataset has them, their integer labels ``(size,)``. Methods with
        per-sample state (memory banks) allocate it here; supervised methods keep the labels.
        Nothing to do by default."""
        return None

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step; nothing to do by default."""
        return None

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        """Rows of a contact sheet (:class:`selfsup.viz.canvas.Row`) showing what the model predicts
        on uint8 ``images``; methods without a visual return an empty list."""
        return []
