"""scikit-learn's handwritten digits (1797 images, 10 classes), shipped inside scikit-learn.

The 8×8 images (values 0–16) are scaled to 0–255, upsampled to ``size`` px with Pillow's bilinear
filter and repeated over 3 channels. A fixed, seeded permutation holds out ``test_size`` images
that no pretraining or probe fitting ever sees (EVALUATION.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from selfsup.hookspecs import Register, hookimpl

SPLIT_SEED = 20180406


class Split(NamedTuple):
    images: npt.NDArray[np.uint8]
    """``(N, size, size, 3)`` uint8."""
    labels: npt.NDArray[np.int64]
    """``(N,)`` class indices (digits: 0–9)."""


class Splits(NamedTuple):
    """A training split and a held-out test split that no pretraining or probe fitting sees."""

    train: Split
    test: Split


Digits = Splits
"""The digits' splits (the name predates the other labelled sets)."""


def load_digits(size: int = 32, test_size: int = 500) -> Digits:
    """The digits as uint8 RGB images with a fixed held-out test split.

    Raises:
        ValueError: ``size`` < 8 or ``test_size`` outside [1, 1796].
    """
    from PIL import Image
    from sklearn.datasets import load_digits as sklearn_digits

    if size < 8:
        raise ValueError(f"size: expected at least 8 pixels, got {size}")
    data = sklearn_digits()
    n = len(data.target)
    if not 1 <= test_size < n:
        raise ValueError(f"test_size: expected 1 to {n - 1}, got {test_size}")
    small = np.clip(np.rint(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR)) for im in small])
    images = np.ascontiguousarray(np.repeat(images[..., None], 3, axis=-1))
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    test, train = order[:test_size], order[test_size:]
    return Digits(Split(images[train], labels[train]), Split(images[test], labels[test]))


VALIDATION_SEED = 20190325


def validation_splits(splits: Splits, size: int) -> Splits:
    """Splits for choosing recipes and options without the held-out test split (EVALUATION.md):
    ``size`` training images, drawn by a fixed seeded permutation, become the test split and the
    rest the training split; the held-out test split is dropped.

    Raises:
        ValueError: ``size`` outside [1, len(train) − 1].
    """
    n = len(splits.train.labels)
    if not 1 <= size < n:
        raise ValueError(f"size: expected a validation size of 1 to {n - 1} images, got {size}")
    order = np.random.default_rng(VALIDATION_SEED).permutation(n)
    held, kept = np.sort(order[:size]), np.sort(order[size:])
    train = splits.train
    return Splits(Split(train.images[kept], train.labels[kept]), Split(train.images[held], train.labels[held]))


def digits_train(size: int = 32) -> Split:
    """The training split only (what pretraining may see)."""
    return load_digits(size).train


@hookimpl
def selfsup_register_datasets(register: Register) -> None:
    register(digits_train, name="digits")
