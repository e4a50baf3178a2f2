"""Labelled and unlabelled samples as one source, for semi-supervised training.

A :class:`SemiSupervisedSource` puts ``L`` labelled samples at indices ``[0, L)`` and an
unlabelled pool of ``U`` samples at ``[L, L + U)``; the pool's targets are ``-1`` whatever labels
its own source has, so a method cannot see them. The labelled part is a labelled source, a
:class:`SubsetSource` of one (N labels per class drawn with a seed: :func:`labels_per_class`),
and the pool another source (a folder, shards, a file list) or the whole labelled source with
its labels hidden — the convention of FixMatch and MixMatch, whose unlabelled set is the entire
training set. The trainer reads both parts through one loader
(:class:`~selfsup.data.sampler.SemiSupervisedBatchSampler`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from selfsup.data.folder import Loaded


def _check_source(source: Any, name: str) -> None:
    if not all(hasattr(source, attribute) for attribute in ("load", "targets", "labeled", "skipped", "__len__")):
        raise TypeError(f"{name}: expected a data source (an ImageFolder, FileList, TarShards or ArraySource), got {type(source).__name__}")
    if len(source) == 0:
        raise ValueError(f"{name}: the source has no samples")


class SubsetSource:
    """The samples ``indices`` of ``source`` as a source of their own (index ``k`` is sample
    ``indices[k]``), with their labels, or with targets ``-1`` when ``hide_labels``.

    Raises:
        ValueError: empty ``indices`` or ones outside the source.
    """

    def __init__(self, source: Any, indices: npt.ArrayLike, *, hide_labels: bool = False) -> None:
        _check_source(source, "source")
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(self.indices) == 0:
            raise ValueError("indices: expected at least one sample")
        if int(self.indices.min()) < 0 or int(self.indices.max()) >= len(source):
            raise ValueError(f"indices: expected sample indices in [0, {len(source)}), got {int(self.indices.min())}..{int(self.indices.max())}")
        self.hide_labels = bool(hide_labels)
        self.labeled = bool(source.labeled) and not self.hide_labels
        self.skipped: dict[str, str] = source.skipped
        images = getattr(source, "images", None)
        if isinstance(images, np.ndarray):
            self.images = images[self.indices]
            """In-memory sources stay in memory (one array of one size)."""

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def targets(self) -> list[int]:
        if not self.labeled:
            return [-1] * len(self.indices)
        every = self.source.targets
        return [int(every[i]) for i in self.indices]

    def load(self, indices: Sequence[int]) -> Loaded:
        positions = np.asarray(indices, dtype=np.int64)
        loaded = self.source.load(self.indices[positions].tolist())
        position_of: dict[int, int] = {}
        for k, i in zip(positions.tolist(), self.indices[positions].tolist()):
            position_of.setdefault(int(i), int(k))
        targets = [-1] * len(loaded.targets) if self.hide_labels else list(loaded.targets)
        return Loaded(
            loaded.images, targets, [position_of[int(i)] for i in loaded.indices],
            [(position_of[int(i)], path, reason) for i, path, reason in loaded.skipped],
        )

    def __repr__(self) -> str:
        hidden = ", labels hidden" if self.hide_labels else ""
        return f"SubsetSource({len(self)} of {self.source!r}{hidden})"


def labels_per_class(labels: npt.ArrayLike, per_class: int, seed: int) -> npt.NDArray[np.int64]:
    """Sorted indices of ``per_class`` samples of every class of ``labels``, drawn with ``seed``
    (all of a class's samples where it has fewer). The draws for ``per_class = n`` are the first
    ``n`` of a per-class order fixed by ``seed``: 5 labels per class include the 1 per class.

    Raises:
        ValueError: ``per_class`` < 1; labels below 0 (unlabelled samples).
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"labels_per_class: expected a positive int, got {per_class!r}")
    array = np.asarray(labels, dtype=np.int64)
    if array.size == 0 or int(array.min()) < 0:
        raise ValueError("labels: expected the class labels of a labelled source (all >= 0)")
    rng = np.random.default_rng([int(seed), 0x5E41])
    chosen: list[npt.NDArray[np.int64]] = []
    for label in np.unique(array):
        members = np.flatnonzero(array == label)
        chosen.append(members[rng.permutation(len(members))][:per_class])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


class SemiSupervisedSource:
    """``labelled`` at indices ``[0, L)``, ``unlabelled`` at ``[L, L + U)`` with targets ``-1``
    (module docstring).

    Example:
        >>> import numpy as np
        >>> from selfsup.data import ArraySource
        >>> images = np.zeros((20, 8, 8, 3), np.uint8)
        >>> data = SemiSupervisedSource.from_labelled(ArraySource(images, np.arange(20) % 2), per_class=3, seed=0)
        >>> data.labelled_count, data.unlabelled_count, data.targets[:7]
        (6, 20, [0, 0, 0, 1, 1, 1, -1])

    Raises:
        ValueError: a labelled part without labels or with a label < 0, an empty part.
        TypeError: a part that is not a source.
    """

    def __init__(self, labelled: Any, unlabelled: Any) -> None:
        _check_source(labelled, "labelled")
        _check_source(unlabelled, "unlabelled")
        if not labelled.labeled or min(labelled.targets) < 0:
            raise ValueError("labelled: expected a source with a class label for every sample (class folders or a .csv of path,label)")
        self.labelled = labelled
        self.unlabelled = unlabelled
        self.labelled_count = len(labelled)
        self.unlabelled_count = len(unlabelled)
        self.labeled = True
        self.skipped: dict[str, str] = {}
        self.classes = getattr(labelled, "classes", None) or getattr(getattr(labelled, "source", None), "classes", None)
        parts = [getattr(labelled, "images", None), getattr(unlabelled, "images", None)]
        if all(isinstance(p, np.ndarray) for p in parts) and parts[0].shape[1:] == parts[1].shape[1:]:  # type: ignore[union-attr]
            self.images: npt.NDArray[np.uint8] = np.concatenate(parts)  # type: ignore[arg-type]
            """Both parts in memory at one size: the whole source as one array."""

    @classmethod
    def from_labelled(
        cls, source: Any, *, per_class: int | None = None, seed: int = 0, unlabelled: Any = None, pool: str = "all"
    ) -> SemiSupervisedSource:
        """A labelled ``source`` split for semi-supervised training: ``per_class`` labels per class
        drawn with ``seed`` (``None``: every label), the pool ``unlabelled`` when given, else the
        source's samples with their labels hidden — ``pool="all"`` of them (FixMatch's
        convention) or ``"rest"``, those not drawn.

        Raises:
            ValueError: an unlabelled ``source``, a bad ``per_class`` or ``pool``, no sample left for
                the pool.
        """
        _check_source(source, "data")
        if not source.labeled:
            raise ValueError("data: semi-supervised training needs labels (class sub-folders, a .csv of path,label, or a labelled dataset)")
        if pool not in ("all", "rest"):
            raise ValueError(f"pool: expected 'all' or 'rest', got {pool!r}")
        every = np.arange(len(source), dtype=np.int64)
        chosen = every if per_class is None else labels_per_class(source.targets, per_class, seed)
        labelled: Any = source if per_class is None else SubsetSource(source, chosen)
        if unlabelled is None:
            rest = every if pool == "all" else np.setdiff1d(every, chosen)
            if len(rest) == 0:
                raise ValueError("pool: every sample is labelled, none is left for the unlabelled pool; use pool='all' or another unlabelled source")
            unlabelled = SubsetSource(source, rest, hide_labels=True)
        return cls(labelled, unlabelled)

    def __len__(self) -> int:
        return self.labelled_count + self.unlabelled_count

    @property
    def targets(self) -> list[int]:
        return [int(t) for t in self.labelled.targets] + [-1] * self.unlabelled_count

    def load(self, indices: Sequence[int]) -> Loaded:
        """The samples ``indices``, labelled ones first. A key index ``i + k·len(self)`` (a
        repeated draw, see :class:`~selfsup.data.sampler.SemiSupervisedBatchSampler`) reads
        sample ``i`` and is reported as asked."""
        keys = np.asarray(indices, dtype=np.int64)
        index = keys % len(self)
        is_labelled = index < self.labelled_count
        first = self.labelled.load(index[is_labelled].tolist())
        second = self.unlabelled.load((index[~is_labelled] - self.labelled_count).tolist())
        for part in (self.labelled, self.unlabelled):
            self.skipped.update(part.skipped)
        offset = self.labelled_count
        asked: dict[int, list[int]] = {}
        for key, i in zip(keys.tolist(), index.tolist()):
            asked.setdefault(i, []).append(key)

        def key_of(i: int) -> int:
            return asked[i].pop(0)

        images: Any
        if isinstance(first.images, np.ndarray) and isinstance(second.images, np.ndarray) and first.images.shape[1:] == second.images.shape[1:]:
            images = np.concatenate([first.images, second.images])
        else:
            images = list(first.images) + list(second.images)
        return Loaded(
            images,
            list(first.targets) + [-1] * len(second.targets),
            [key_of(int(i)) for i in first.indices] + [key_of(int(i) + offset) for i in second.indices],
            [(key_of(int(i)), path, reason) for i, path, reason in first.skipped]
            + [(key_of(int(i) + offset), path, reason) for i, path, reason in second.skipped],
        )

    def __repr__(self) -> str:
        return f"SemiSupervisedSource({self.labelled_count} labelled: {self.labelled!r}; {self.unlabelled_count} unlabelled: {self.unlabelled!r})"


def semi_supervised_source(data: Any, labels: npt.ArrayLike | None = None) -> SemiSupervisedSource:
    """``data`` (a labelled source, or a uint8 ``(N, H, W, C)`` array with ``labels``) with every
    label kept and all its samples, labels hidden, as the unlabelled pool.

    Raises:
        ValueError: no labels; ``labels`` next to a source (which brings its own).
    """
    from selfsup.data.pipeline import ArraySource

    if isinstance(data, np.ndarray):
        if labels is None:
            raise ValueError("labels: semi-supervised training on an array needs its labels (pass labels=, or a SemiSupervisedSource)")
        data = ArraySource(data, labels)
    elif labels is not None:
        raise ValueError("labels: a source brings its own labels; pass labels only with an array")
    return SemiSupervisedSource.from_labelled(data)
