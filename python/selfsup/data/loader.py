"""Multi-view batches from an :class:`ImageFolder` through torch's DataLoader.

The batch sampler yields lists of ``(epoch, index)`` keys; the collate reads and decodes the
whole batch and runs the augmentation on it with ``(seed, epoch, indices)``, two native calls that
use every core. With ``num_workers=0`` this is the main-process mode (no worker processes, the
fastest on a machine the native pool already fills); with workers each forked worker builds
whole batches serially (the native pool falls back to one thread in a forked child). Both give
the same bytes for the same ``(seed, epoch, index)``: every random draw comes from the
sample's own stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from selfsup.data.folder import ImageFolder
from selfsup.data.sampler import EpochBatchSampler, SampleKey
from selfsup.ops._common import resolve_seed
from selfsup.transforms import Compose, MultiView

Augmentation = Union[MultiView, Compose]


class ViewBatch(NamedTuple):
    views: list[torch.Tensor]
    """One tensor per view, ``(B, 3, H, W)`` (float32 when the augmentation normalises, else uint8)."""
    targets: torch.Tensor
    """``(B,)`` int64 class indices (``-1`` for an unlabeled folder)."""
    indices: torch.Tensor
    """``(B,)`` int64 dataset indices of the samples."""
    skipped: tuple[tuple[int, str, str], ...]
    """``(index, path, reason)`` of the samples of this batch that could not be decoded."""


class KeyDataset(Dataset[SampleKey]):
    """A source of ``size`` samples seen by the DataLoader: items are their own keys; the
    reading, decoding and augmentation of a whole batch happen in the collate function."""

    def __init__(self, size: int | ImageFolder) -> None:
        self.size = size if isinstance(size, int) else len(size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: SampleKey) -> SampleKey:
        return key

    def __getitems__(self, keys: list[SampleKey]) -> list[SampleKey]:
        return list(keys)


class ViewCollate:
    """Turns a list of ``(epoch, index)`` keys into a :class:`ViewBatch`: decodes the files in
    one native call (unreadable ones are skipped with a warning and listed in ``skipped``), then
    runs ``augmentation`` on the decoded images of different sizes with ``(seed, epoch, indices)``.

    Raises:
        ValueError: keys of more than one epoch in a batch.
    """

    def __init__(self, folder: ImageFolder, augmentation: Augmentation, *, seed: int = 0) -> None:
        if folder.gray != "rgb":
            raise ValueError("folder: the augmentations need RGB images; build the ImageFolder with gray='rgb'")
        self.folder = folder
        self.augmentation = augmentation
        self.seed = resolve_seed(seed)

    def __call__(self, keys: Sequence[SampleKey]) -> ViewBatch:
        epochs = {int(e) for e, _ in keys}
        if len(epochs) != 1:
            raise ValueError(f"keys: expected one epoch per batch, got {sorted(epochs)}")
        epoch = epochs.pop()
        loaded = self.folder.load([i for _, i in keys])
        if loaded.images:
            views = self.augmentation.run(loaded.images, seed=self.seed, epoch=epoch, indices=loaded.indices).views
        else:  # a batch without one readable image: empty views of the right shapes
            views = [v[:0] for v in self.augmentation.run([np.zeros((1, 1, 3), np.uint8)], seed=0).views]
        return ViewBatch(
            views,
            torch.tensor(loaded.targets, dtype=torch.int64),
            torch.tensor(loaded.indices, dtype=torch.int64),
            tuple(loaded.skipped),
        )


class ViewLoader:
    """Augmented multi-view batches of an :class:`ImageFolder`: a ``torch.utils.data.DataLoader``
    over :class:`KeyDataset` with an :class:`EpochBatchSampler` and a :class:`ViewCollate`.

    ``num_workers=0`` (default) decodes and augments each batch in the main process on all cores;
    ``num_workers > 0`` forks workers that each build whole batches on one core. Either way
    sample ``i`` of epoch ``e`` gets the same bytes. Unreadable files reported by workers are
    recorded in the folder's :attr:`ImageFolder.skipped` as their batches arrive.

    Example:
        >>> import tempfile, selfsup.transforms as T
        >>> from selfsup.data import ImageFolder, ViewLoader, write_photo_folder
        >>> root = tempfile.mkdtemp(); _ = write_photo_folder(root, count=6, size=40)
        >>> loader = ViewLoader(ImageFolder(root), T.simclr(32), batch_size=4, seed=0)
        >>> for epoch in range(2):
        ...     loader.set_epoch(epoch)
        ...     shapes = [[tuple(v.shape) for v in batch.views] for batch in loader]
        >>> shapes
        [[(4, 3, 32, 32), (4, 3, 32, 32)], [(2, 3, 32, 32), (2, 3, 32, 32)]]

    Raises:
        ValueError: invalid ``batch_size``, ``num_workers`` < 0.
    """

    def __init__(
        self,
        folder: ImageFolder,
        augmentation: Augmentation,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers: expected an int >= 0, got {num_workers!r}")
        self.folder = folder
        self.sampler = EpochBatchSampler(len(folder), batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last)
        self.collate = ViewCollate(folder, augmentation, seed=seed)
        self.dataloader: DataLoader[SampleKey] = DataLoader(
            KeyDataset(folder),
            batch_sampler=self.sampler,
            collate_fn=self.collate,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and num_workers > 0,
            multiprocessing_context="fork" if num_workers > 0 else None,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[ViewBatch]:
        for batch in self.dataloader:
            for _, path, reason in batch.skipped:
                self.folder.skipped.setdefault(path, reason)
            yield batch
