"""Colour patches of scikit-image's sample photographs, labelled by the photograph they come from.

The embedded digits are grey, so colour-sensitive pretext tasks (colorization, CMC's L/ab views)
have nothing to learn from them. This set gives them real colour photographs with labels: each of
the 7 photographs of :data:`selfsup.data.embedded.PHOTO_NAMES` is one class, and a sample is a
random square patch of it (side ``min_side``–``max_side`` pixels of the original) resized to
``size`` with Pillow's antialiased bilinear filter. The held-out split shares no pixel with the
training split: test patches lie in the rightmost ``test_fraction`` of each photograph's width,
training patches in the rest.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from selfsup.data.digits import Split, Splits
from selfsup.data.embedded import PHOTO_NAMES, sample_photos
from selfsup.hookspecs import Register, hookimpl


def _patches(
    photo: npt.NDArray[np.uint8], count: int, columns: tuple[int, int], size: int, sides: tuple[int, int], rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """``count`` random squares of ``photo`` lying within the column range ``[start, stop)``."""
    from PIL import Image

    start, stop = columns
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        side = int(rng.integers(sides[0], sides[1] + 1))
        y = int(rng.integers(0, photo.shape[0] - side + 1))
        x = int(rng.integers(start, stop - side + 1))
        patch = Image.fromarray(np.ascontiguousarray(photo[y : y + side, x : x + side]))
        out[i] = np.asarray(patch.resize((size, size), Image.Resampling.BILINEAR))
    return out


def load_photo_patches(
    size: int = 32,
    train_per_photo: int = 192,
    test_per_photo: int = 72,
    *,
    min_side: int = 48,
    max_side: int = 128,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> Splits:
    """Train and held-out splits ``(N, size, size, 3)`` uint8 with labels 0–6 (the index of the
    photograph in :data:`PHOTO_NAMES`), ``train_per_photo`` and ``test_per_photo`` patches per
    class. Deterministic for a given ``seed``.

    Raises:
        ValueError: ``size`` < 8; non-positive counts; ``min_side`` < 1 or > ``max_side``;
            ``test_fraction`` outside (0, 1); a split region narrower than ``max_side``.
    """
    if size < 8:
        raise ValueError(f"size: expected at least 8 pixels, got {size}")
    for name, value in (("train_per_photo", train_per_photo), ("test_per_photo", test_per_photo)):
        if value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value}")
    if not 1 <= min_side <= max_side:
        raise ValueError(f"min_side: expected 1 <= min_side <= max_side ({max_side}), got {min_side}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a value in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    splits: dict[str, list[npt.NDArray[np.uint8]]] = {"train": [], "test": []}
    for photo, name in zip(sample_photos(), PHOTO_NAMES):
        height, width = photo.shape[:2]
        boundary = int(round(width * (1 - test_fraction)))
        if min(boundary, width - boundary, height) < max_side:
            raise ValueError(f"max_side: {max_side} px does not fit both splits of the {width}×{height} photo {name!r}")
        splits["train"].append(_patches(photo, train_per_photo, (0, boundary), size, (min_side, max_side), rng))
        splits["test"].append(_patches(photo, test_per_photo, (boundary, width), size, (min_side, max_side), rng))
    classes = np.arange(len(PHOTO_NAMES), dtype=np.int64)
    return Splits(
        Split(np.concatenate(splits["train"]), np.repeat(classes, train_per_photo)),
        Split(np.concatenate(splits["test"]), np.repeat(classes, test_per_photo)),
    )


def photo_patches_train(size: int = 32) -> Split:
    """The training split only (what pretraining may see)."""
    return load_photo_patches(size).train


@hookimpl
def selfsup_register_datasets(register: Register) -> None:
    register(photo_patches_train, name="photo_patches")
