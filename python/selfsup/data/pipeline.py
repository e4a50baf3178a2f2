"""The trainer's data path: sample keys → source → a method's batch pipeline → ready tensors.

:class:`TrainLoader` wraps a ``torch.utils.data.DataLoader`` whose batch sampler
(:class:`~selfsup.data.sampler.StepBatchSampler`) yields this rank's ``(epoch, index)`` keys of
each micro-batch from a start position, whose dataset hands the keys through
(:class:`~selfsup.data.loader.KeyDataset`), and whose collate (:class:`BatchCollate`) reads and
decodes the batch from its :class:`Source` and runs the method's data side on it
(:class:`BatchPipeline`): views, multi-crop, puzzles, rotations, masks, Lab, corruptions — the
native ops, in worker processes or on the native pool. The training loop receives tensors.

With ``workers=0`` a background thread builds the next ``prefetch`` batches while the current
step computes (the native calls release the GIL); with ``workers=k`` forked worker processes do
(``prefetch`` batches each). Either way batch ``m`` holds the same bytes: every random draw
comes from ``(seed, epoch, index)``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader, Sampler

from selfsup.data.folder import Loaded, center_squares
from selfsup.data.loader import KeyDataset
from selfsup.data.sampler import SampleKey, StepBatchSampler

U8Array = npt.NDArray[np.uint8]


@runtime_checkable
class Source(Protocol):
    """What the data path reads: ``len(source)`` samples, each decoded on demand.

    :class:`~selfsup.data.ImageFolder`, :class:`~selfsup.data.FileList`,
    :class:`~selfsup.data.TarShards` and :class:`ArraySource` implement it.
    """

    labeled: bool
    skipped: dict[str, str]

    def __len__(self) -> int: ...

    @property
    def targets(self) -> list[int]: ...

    def load(self, indices: Sequence[int]) -> Loaded: ...


class ArraySource:
    """In-memory uint8 images ``(N, H, W, C)`` of one size (the embedded sets) with optional
    integer labels ``(N,)``. A batch is ``images[indices]``, one array, exactly as given.

    Raises:
        ValueError: not a non-empty uint8 ``(N, H, W, C)`` array; labels of another length.
    """

    def __init__(self, images: U8Array, labels: npt.ArrayLike | None = None) -> None:
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
            shape = getattr(images, "shape", type(images).__name__)
            raise ValueError(f"images: expected a non-empty uint8 (N, H, W, C) array, got {getattr(images, 'dtype', '')} {shape}")
        self.images = images
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and self.labels.shape != (len(images),):
            raise ValueError(f"labels: expected {len(images)} integer class labels, got shape {self.labels.shape}")
        self.labeled = self.labels is not None
        self.skipped: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def targets(self) -> list[int]:
        return [-1] * len(self.images) if self.labels is None else [int(t) for t in self.labels]

    def load(self, indices: Sequence[int]) -> Loaded:
        idx = np.asarray(indices, dtype=np.int64)
        targets = [-1] * len(idx) if self.labels is None else [int(t) for t in self.labels[idx]]
        batch: Any = np.ascontiguousarray(self.images[idx])
        return Loaded(batch, targets, idx.tolist(), [])

    def __repr__(self) -> str:
        return f"ArraySource({len(self)} images of {self.images.shape[1]}x{self.images.shape[2]}x{self.images.shape[3]})"


class BatchMaker(Protocol):
    """A method's data side: uint8 images (one array, or a list of decoded originals for methods
    with ``takes_originals``) → the tensors its ``training_step`` reads."""

    def make_batch(
        self, images: Any, *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class BatchPipeline:
    """A method's data side as the loader runs it: decoded images → the method's batch.

    Images from an in-memory array reach ``maker.make_batch`` as they are. Decoded originals of
    different sizes reach it as a list when the method cuts its own crops from originals
    (``takes_originals``: random-resized crops, multi-crop); otherwise each is first brought to
    ``image_size`` by its central square (:func:`center_squares`). Picklable when ``maker`` is
    (a method pickles with its weights; forked workers share them copy-on-write). ``maker``'s data
    side must not depend on state that training changes.
    """

    maker: BatchMaker
    seed: int
    image_size: int | None = None
    takes_originals: bool = False

    def __call__(self, images: Sequence[U8Array] | U8Array, *, epoch: int, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        batch: Any = images
        if not isinstance(images, np.ndarray) and not self.takes_originals:
            if self.image_size is None:
                raise ValueError("image_size: decoded images of different sizes need the size the method trains at")
            batch = center_squares(images, self.image_size)
        return self.maker.make_batch(batch, seed=self.seed, epoch=epoch, indices=index, device="cpu")


class TrainBatch(NamedTuple):
    tensors: dict[str, torch.Tensor]
    """What the method's ``training_step`` reads (on the CPU; pinned when asked)."""
    epoch: int
    size: int
    """Samples in this rank's micro-batch."""
    skipped: tuple[tuple[int, str, str], ...]
    """``(index, path, reason)`` of the unreadable samples that were replaced in this batch."""


class BatchCollate:
    """``(epoch, index)`` keys → :class:`TrainBatch`: loads the samples from ``source`` and runs
    ``pipeline``. An unreadable sample is replaced by the next readable one in index order (the
    batch keeps its size, so every rank and every BatchNorm sees as many samples); the
    replacement uses its own per-sample stream.

    Raises:
        ValueError: keys of more than one epoch. RuntimeError: no readable sample in the source.
    """

    def __init__(self, source: Source, pipeline: BatchPipeline, pin_memory: bool = False) -> None:
        self.source = source
        self.pipeline = pipeline
        self.pin_memory = pin_memory

    def __call__(self, keys: Sequence[SampleKey]) -> TrainBatch:
        epochs = {int(e) for e, _ in keys}
        if len(epochs) != 1:
            raise ValueError(f"keys: expected one epoch per batch, got {sorted(epochs)}")
        epoch = epochs.pop()
        wanted = [int(i) for _, i in keys]
        loaded = self.source.load(wanted)
        if not loaded.skipped:
            images: Any = loaded.images
            indices = loaded.indices
        else:
            images, indices = self._replace(loaded, len(wanted))
        tensors = self.pipeline(images, epoch=epoch, indices=indices)
        if self.pin_memory:
            tensors = {k: v.pin_memory() for k, v in tensors.items()}
        return TrainBatch(tensors, epoch, len(indices), tuple(loaded.skipped))

    def _replace(self, loaded: Loaded, size: int) -> tuple[list[U8Array], list[int]]:
        n = len(self.source)
        images, indices = list(loaded.images), list(loaded.indices)
        taken = set(indices) | {i for i, _, _ in loaded.skipped}
        cursor = max(i for i, _, _ in loaded.skipped)
        tried = len(taken)
        while len(images) < size:
            candidates: list[int] = []
            while len(candidates) < size - len(images) and tried < n:
                cursor = (cursor + 1) % n
                if cursor not in taken:
                    candidates.append(cursor)
                    taken.add(cursor)
                    tried += 1
            if not candidates:
                if not images:
                    raise RuntimeError(f"data: none of the {n} samples could be decoded")
                candidates = [indices[k % len(indices)] for k in range(size - len(images))]
            more = self.source.load(candidates)
            loaded.skipped.extend(more.skipped)
            images.extend(more.images)
            indices.extend(more.indices)
        return images, indices


class _ThreadPrefetcher:
    """Runs ``iterable`` in a background thread, ``depth`` items ahead; re-raises its errors."""

    _DONE = object()

    def __init__(self, iterable: Any, depth: int) -> None:
        self.items: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(iterable,), name="selfsup-prefetch", daemon=True)
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterable: Any) -> None:
        try:
            for item in iterable:
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put(error)
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self.items.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


class TrainLoader:
    """This rank's micro-batches ``start … stop − 1`` as :class:`TrainBatch` (see the module
    docstring); ``sampler`` replaces the :class:`StepBatchSampler` (the semi-supervised one).
    ``workers=0``: the main process builds the batches on the native pool, in a
    prefetch thread; ``workers=k``: ``k`` forked workers, ``prefetch`` batches each.

    Raises:
        ValueError: ``workers`` < 0, ``prefetch`` < 1, and the sampler's errors.
    """

    def __init__(
        self,
        source: Source,
        pipeline: BatchPipeline,
        batch_size: int,
        *,
        seed: int,
        start: int = 0,
        stop: int | None = None,
        rank: int = 0,
        world: int = 1,
        workers: int = 0,
        prefetch: int = 2,
        pin_memory: bool = False,
        sampler: Sampler[list[SampleKey]] | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers: expected an int >= 0, got {workers!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch: expected a positive int, got {prefetch!r}")
        self.sampler = (
            sampler if sampler is not None
            else StepBatchSampler(len(source), batch_size, seed=seed, rank=rank, world=world, start=start, stop=stop)
        )
        self.collate = BatchCollate(source, pipeline, pin_memory=pin_memory and not workers)
        self.workers = workers
        self.prefetch = prefetch
        self.dataloader: DataLoader[SampleKey] = DataLoader(
            KeyDataset(len(source)),
            batch_sampler=self.sampler,
            collate_fn=self.collate,
            num_workers=workers,
            prefetch_factor=prefetch if workers else None,
            pin_memory=pin_memory and bool(workers),
            multiprocessing_context="fork" if workers else None,
        )

    def __iter__(self) -> Iterator[TrainBatch]:
        if self.workers:
            return iter(self.dataloader)
        return iter(_ThreadPrefetcher(self.dataloader, self.prefetch))
