"""Labelled data for evaluation: a training split and a held-out split, in memory.

``data`` is one of the embedded sets with a fixed held-out split (:data:`HELD_OUT_SETS`), or any
labelled source — an image folder with class sub-folders, a ``.csv`` of ``path,label``, labelled
tar shards, a registered dataset with labels. A source's images are decoded and brought to
``image_size`` (:func:`~selfsup.data.folder.center_squares`); its held-out split is ``test`` (another
labelled source with the same class names) or a seeded, stratified ``test_fraction`` of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from selfsup.data.digits import Split, Splits, load_digits
from selfsup.data.folder import source_squares
from selfsup.data.photo_patches import load_photo_patches
from selfsup.data.shapes import load_shapes
from selfsup.data.sources import open_data

HELD_OUT_SETS: dict[str, tuple[str, Callable[[], Splits]]] = {
    "digits": ("sklearn digits 32x32", load_digits),
    "photo_patches": ("scikit-image photo patches 32x32, 7 photos", load_photo_patches),
    "shapes": ("generated colour shapes 32x32, 6 shapes", load_shapes),
}
"""Embedded labelled sets with a fixed held-out split that pretraining never sees."""


class LabelledData(NamedTuple):
    splits: Splits
    name: str
    """What the data is, for reports and plots."""
    classes: list[str]


def source_array(source: Any, size: int, *, batch: int = 256) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Every readable sample of ``source`` as uint8 ``(N, size, size, 3)`` and its labels ``(N,)``
    (an in-memory array source of that size as it is). Unreadable files are left out (and
    recorded in ``source.skipped``).

    Raises:
        ValueError: no sample could be read.
    """
    images = getattr(source, "images", None)
    if isinstance(images, np.ndarray) and images.shape[1:3] == (size, size) and images.shape[-1] == 3:
        return images, np.asarray(source.targets, dtype=np.int64)
    decoded, labels = source_squares(source, size, batch=batch)
    if decoded is None:
        raise ValueError(f"data: none of the {len(source)} samples could be decoded")
    return decoded, np.asarray(labels, dtype=np.int64)


def stratified_split(labels: npt.ArrayLike, fraction: float, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Training and held-out indices: ``round(fraction · n_c)`` of each class's ``n_c`` samples
    (at least one, and at least one left for training where the class has two), drawn with
    ``seed``; both sorted.

    Raises:
        ValueError: ``fraction`` outside (0, 1).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"test_fraction: expected a fraction in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(max(1, round(fraction * len(members))), max(1, len(members) - 1))
        held += rng.choice(members, size=count, replace=False).tolist()
    test = np.sort(np.asarray(held, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), test).astype(np.int64)
    return train, test


def _labelled_source(name: str, role: str) -> Any:
    try:
        source = open_data(name)
    except ValueError as error:
        raise ValueError(f"{role}: {str(error).removeprefix('data: ')}") from None
    if not source.labeled:
        raise ValueError(f"{role}: {name} has no labels; evaluation needs a folder with one sub-folder per class or a .csv of path,label")
    return source


def _class_names(source: Any) -> list[str]:
    names = getattr(source, "classes", None)
    if names:
        return [str(c) for c in names]
    return [str(c) for c in sorted(set(source.targets))]


def load_labelled(data: str, *, image_size: int, test: str | None = None, test_fraction: float = 0.2, seed: int = 0) -> LabelledData:
    """The training and held-out splits of ``data`` (see the module docstring).

    Raises:
        ValueError: ``data: ...``/``test_data: ...`` for a missing, unlabelled or unreadable source,
            ``test_data`` with other class names, a bad ``test_fraction``.
    """
    if data in HELD_OUT_SETS and test is None:
        description, load = HELD_OUT_SETS[data]
        splits = load()
        classes = [str(c) for c in range(int(splits.train.labels.max()) + 1)]
        return LabelledData(splits, description, classes)
    source = _labelled_source(data, "data")
    images, labels = source_array(source, image_size)
    classes = _class_names(source)
    if test is not None:
        other = _labelled_source(test, "test_data")
        if _class_names(other) != classes:
            raise ValueError(f"test_data: {test} has the classes {_class_names(other)}, {data} has {classes}")
        test_images, test_labels = source_array(other, image_size)
        splits = Splits(Split(images, labels), Split(test_images, test_labels))
        name = f"{data} (held out: {test})"
    else:
        train, held = stratified_split(labels, test_fraction, seed)
        splits = Splits(Split(images[train], labels[train]), Split(images[held], labels[held]))
        name = f"{data} (held out: {test_fraction:.0%}, split seed {seed})"
    return LabelledData(splits, f"{name}, {image_size}x{image_size}", classes)
