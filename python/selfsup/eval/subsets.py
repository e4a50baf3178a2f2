"""Labeled subsets drawn per class from a train split."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def labeled_subset(labels: npt.ArrayLike, per_class: int | None, seed: int) -> npt.NDArray[np.int64]:
    """Indices of ``per_class`` examples of every class (all of them for ``None``), sorted.

    Raises:
        ValueError: ``per_class`` < 1, or a class has fewer than ``per_class`` examples.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels: expected a non-empty 1-D array, got shape {y.shape}")
    if per_class is None:
        return np.arange(len(y), dtype=np.int64)
    if per_class < 1:
        raise ValueError(f"per_class: expected a positive int or None, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if len(members) < per_class:
            raise ValueError(f"per_class: class {cls} has only {len(members)} examples, {per_class} were asked for")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)
