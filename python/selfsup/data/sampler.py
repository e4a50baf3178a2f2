"""The one ordering of samples into batches, for the trainer and for epoch-at-a-time loaders.

Epoch ``e`` visits ``range(n)`` in the order of numpy's PCG64 permutation seeded by ``(seed, e)``.
A *micro-batch* ``m`` of global size ``B`` is the slice ``[p·B, (p+1)·B)`` of epoch ``e``'s order
with ``(e, p) = divmod(m, n // B)`` (the last partial batch of an epoch is dropped, so every step
sees ``B`` images); under ``torchrun`` rank ``r`` of ``W`` takes ``batch[r::W]``, so the union of
the ranks' samples in a step is the single-process global batch and every rank's epoch has the
same length. Everything is a function of ``(seed, m)``: a run resumed at micro-batch ``m`` sees the
same samples as one never interrupted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from selfsup.ops._common import check_epoch, resolve_seed

SampleKey = tuple[int, int]
"""``(epoch, index)``: what a batch sampler hands to the dataset for one sample."""
Int64Array = np.ndarray[Any, np.dtype[np.int64]]


def _check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def epoch_order(n: int, seed: int, epoch: int, stream: int | None = None) -> Int64Array:
    """The order in which epoch ``epoch`` visits ``range(n)``; ``stream`` keeps the orders of the
    parts of one source (labelled, unlabelled) independent of each other."""
    key = [seed, epoch] if stream is None else [seed, epoch, stream]
    return np.random.default_rng(key).permutation(n).astype(np.int64)


def rank_share(batch: Int64Array, rank: int, world: int) -> Int64Array:
    """Rank ``rank``'s share ``batch[rank::world]`` of a global batch; every rank gets as many.

    Raises:
        ValueError: the global batch does not split evenly over ``world`` processes.
    """
    if len(batch) % world:
        raise ValueError(f"batch_size: a global batch of {len(batch)} does not split over {world} processes")
    return batch[rank::world]


def _placement(batch_size: int, batch: str, seed: int, rank: int, world: int, start: int, stop: int | None) -> tuple[int, int, int, int, int | None]:
    """A step sampler's checked ``(seed, rank, world, start, stop)``; its ``batch_size`` (the
    ``batch`` one) must split over the ranks."""
    world = _check_positive(world, "world")
    if not 0 <= rank < world:
        raise ValueError(f"rank: expected 0 <= rank < {world}, got {rank}")
    if batch_size % world:
        raise ValueError(f"batch_size: a {batch} batch of {batch_size} does not split over {world} processes")
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"start, stop: expected 0 <= start <= stop, got {start}, {stop}")
    return resolve_seed(seed), rank, world, int(start), stop


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """Batches of ``(epoch, index)`` keys over ``range(n)`` for one epoch at a time, in the order of
    :func:`epoch_order` (or index order when ``shuffle`` is false). The epoch travels with the
    keys, so persistent workers see it too. Call :meth:`set_epoch` before each epoch.

    Raises:
        ValueError: ``n`` or ``batch_size`` < 1, negative ``epoch``.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, shuffle: bool = True, drop_last: bool = False) -> None:
        self.n = _check_positive(n, "n")
        self.batch_size = _check_positive(batch_size, "batch_size")
        self.seed = resolve_seed(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_epoch(epoch)

    def order(self) -> Int64Array:
        """The sample order of the current epoch."""
        if not self.shuffle:
            return np.arange(self.n, dtype=np.int64)
        return epoch_order(self.n, self.seed, self.epoch)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        order = self.order()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            if self.drop_last and len(chunk) < self.batch_size:
                return
            yield [(self.epoch, int(i)) for i in chunk]

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)


class StepBatchSampler(Sampler[list[SampleKey]]):
    """The trainer's micro-batches ``start, start + 1, …, stop − 1`` as this rank's lists of
    ``(epoch, index)`` keys, crossing epochs as needed (see the module docstring). ``start`` is
    the position saved in a checkpoint.

    Args:
        n: samples in the source. batch_size: the *global* batch (capped at ``n``).
        seed: fixes every epoch's order. rank, world: this process and the number of processes.
        start, stop: micro-batches to yield (``stop=None``: without end).

    Raises:
        ValueError: ``n`` or ``batch_size`` < 1; a global batch that does not split over ``world``;
            ``rank`` outside ``[0, world)``; ``start`` < 0 or ``stop`` < ``start``.
    """

    def __init__(
        self, n: int, batch_size: int, *, seed: int = 0, rank: int = 0, world: int = 1, start: int = 0, stop: int | None = None
    ) -> None:
        self.n = _check_positive(n, "n")
        self.batch_size = min(_check_positive(batch_size, "batch_size"), self.n)
        self.seed, self.rank, self.world, self.start, self.stop = _placement(self.batch_size, "global", seed, rank, world, start, stop)

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def global_batch(self, micro: int) -> tuple[int, Int64Array]:
        """The epoch and the global batch's dataset indices of micro-batch ``micro``."""
        epoch, position = divmod(micro, self.batches_per_epoch)
        order = epoch_order(self.n, self.seed, epoch)
        return epoch, order[position * self.batch_size : (position + 1) * self.batch_size]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        micro, order_epoch, order = self.start, -1, np.empty(0, np.int64)
        while self.stop is None or micro < self.stop:
            epoch, position = divmod(micro, self.batches_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(self.n, self.seed, epoch), epoch
            batch = order[position * self.batch_size : (position + 1) * self.batch_size]
            yield [(epoch, int(i)) for i in rank_share(batch, self.rank, self.world)]
            micro += 1

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("a StepBatchSampler without stop has no length")
        return self.stop - self.start


class SemiSupervisedBatchSampler(Sampler[list[SampleKey]]):
    """Micro-batches of a :class:`~selfsup.data.semi.SemiSupervisedSource`: ``B`` labelled and
    ``μB`` unlabelled samples each, every part from its own run of epoch orders.

    The labelled part of micro-batch ``m`` is the draws ``[m·B, (m+1)·B)`` of the labelled
    stream — epoch orders of ``range(L)`` from ``(seed, e, 0)`` laid end to end — and the
    unlabelled part the draws ``[m·μB, (m+1)·μB)`` of the pool's stream (orders of
    ``range(U)`` from ``(seed, e, 1)``, shifted by ``L``). Nothing is dropped, so a part smaller
    than its share of a batch (40 labels, ``B = 64``) is drawn more than once per batch, and the
    two parts run through their epochs at their own pace, as in FixMatch's code. Every key of
    micro-batch ``m`` carries ``m`` as its epoch, and repeated draws of an index in the global
    batch carry their draw number (:func:`distinct_streams` with ``L + U``: index ``i + k·(L +
    U)`` is the ``k``-th repeat of ``i``, which the source reads as ``i``); a sample's augmentation
    stream is ``(seed, m, key index)``, the same whichever rank holds it. Rank ``r`` of ``W``
    takes ``labelled[r::W]`` and ``unlabelled[r::W]``, labelled first.

    Raises:
        ValueError: ``labelled`` or ``batch_size`` < 1, ``ratio`` < 0, ``unlabelled`` < 1 with
            ``ratio`` > 0, parts that do not split over ``world``, a bad ``rank``/``start``/``stop``.
    """

    def __init__(
        self, labelled: int, unlabelled: int, batch_size: int, ratio: int, *, seed: int = 0, rank: int = 0, world: int = 1,
        start: int = 0, stop: int | None = None,
    ) -> None:
        self.labelled = _check_positive(labelled, "labelled")
        self.unlabelled = int(unlabelled)
        self.batch_size = _check_positive(batch_size, "batch_size")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 0:
            raise ValueError(f"ratio: expected an int >= 0 (unlabelled images per labelled one), got {ratio!r}")
        self.ratio = int(ratio)
        if self.ratio and self.unlabelled < 1:
            raise ValueError("unlabelled: a ratio of unlabelled images needs an unlabelled pool")
        # a labelled batch that splits over the ranks makes μB split too
        self.seed, self.rank, self.world, self.start, self.stop = _placement(self.batch_size, "labelled", seed, rank, world, start, stop)
        self._orders: dict[tuple[int, int], Int64Array] = {}

    def _order(self, n: int, stream: int, epoch: int) -> Int64Array:
        key = (stream, epoch)
        if key not in self._orders:
            if len(self._orders) >= 4:
                self._orders.pop(next(iter(self._orders)))
            self._orders[key] = epoch_order(n, self.seed, epoch, stream)
        return self._orders[key]

    def _draws(self, n: int, stream: int, first: int, count: int) -> Int64Array:
        out = np.empty(count, np.int64)
        done = 0
        while done < count:
            epoch, offset = divmod(first + done, n)
            take = min(n - offset, count - done)
            out[done : done + take] = self._order(n, stream, epoch)[offset : offset + take]
            done += take
        return out

    def global_batch(self, micro: int) -> tuple[int, Int64Array]:
        """``micro`` (every key's epoch) and the global batch's key indices: the labelled part,
        then the pool's, repeats carrying their draw number."""
        labelled = self._draws(self.labelled, 0, micro * self.batch_size, self.batch_size)
        unlabelled_size = self.batch_size * self.ratio
        pool = self._draws(self.unlabelled, 1, micro * unlabelled_size, unlabelled_size) + self.labelled if unlabelled_size else labelled[:0]
        return micro, distinct_streams(np.concatenate([labelled, pool]), self.labelled + self.unlabelled)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        micro = self.start
        while self.stop is None or micro < self.stop:
            _, batch = self.global_batch(micro)
            labelled, pool = batch[: self.batch_size], batch[self.batch_size :]
            share = np.concatenate([labelled[self.rank :: self.world], pool[self.rank :: self.world]])
            yield [(micro, int(i)) for i in share]
            micro += 1

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("a SemiSupervisedBatchSampler without stop has no length")
        return self.stop - self.start


def distinct_streams(indices: npt.ArrayLike, size: int) -> Int64Array:
    """Stream numbers for a batch's ``indices`` that tell repeated draws apart: the ``k``-th
    occurrence of index ``i`` (counting from 0, in batch order) gets ``i + k·size``, so
    ``size`` must exceed every index. A batch without repeats keeps its indices.

    Example:
        >>> distinct_streams([3, 1, 3, 3], 10).tolist()
        [3, 1, 13, 23]
    """
    index = np.asarray(indices, dtype=np.int64).reshape(-1)
    seen: dict[int, int] = {}
    occurrence = np.empty(len(index), np.int64)
    for position, value in enumerate(index.tolist()):
        occurrence[position] = seen.get(value, 0)
        seen[value] = occurrence[position] + 1
    return index + occurrence * int(size)
