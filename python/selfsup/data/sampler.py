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
from torch.utils.data import Sampler

from selfsup.ops._common import check_epoch, resolve_seed

SampleKey = tuple[int, int]
"""``(epoch, index)``: what a batch sampler hands to the dataset for one sample."""
Int64Array = np.ndarray[Any, np.dtype[np.int64]]


def _check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def epoch_order(n: int, seed: int, epoch: int) -> Int64Array:
    """The order in which epoch ``epoch`` visits ``range(n)``."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def rank_share(batch: Int64Array, rank: int, world: int) -> Int64Array:
    """Rank ``rank``'s share ``batch[rank::world]`` of a global batch; every rank gets as many.

    Raises:
        ValueError: the global batch does not split evenly over ``world`` processes.
    """
    if len(batch) % world:
        raise ValueError(f"batch_size: a global batch of {len(batch)} does not split over {world} processes")
    return batch[rank::world]


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
        self.world = _check_positive(world, "world")
        if not 0 <= rank < self.world:
            raise ValueError(f"rank: expected 0 <= rank < {self.world}, got {rank}")
        if self.batch_size % self.world:
            raise ValueError(f"batch_size: a global batch of {self.batch_size} does not split over {self.world} processes")
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"start, stop: expected 0 <= start <= stop, got {start}, {stop}")
        self.seed = resolve_seed(seed)
        self.rank = rank
        self.start = int(start)
        self.stop = stop

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
