"""Small image sets that ship inside installed packages (nothing is downloaded).

The colour photographs bundled with scikit-image serve as real-photo data for demos, tests and
benchmarks: :func:`sample_photos` returns them whole, :func:`photo_crops` cuts them into square
crops of one size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PHOTO_NAMES: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
"""scikit-image sample photographs (RGB, uint8) that are part of its wheel."""


def sample_photos(names: tuple[str, ...] = PHOTO_NAMES) -> list[npt.NDArray[np.uint8]]:
    """The named scikit-image sample photographs as ``(H, W, 3)`` uint8 arrays.

    Raises:
        ValueError: an unknown name.
        RuntimeError: the photo is not part of the installed scikit-image.
    """
    import skimage.data

    photos = []
    for name in names:
        if name not in PHOTO_NAMES:
            raise ValueError(f"names: unknown photo {name!r}; expected one of {', '.join(PHOTO_NAMES)}")
        try:
            image = getattr(skimage.data, name)()
        except Exception as error:  # pooch-backed images need a download
            raise RuntimeError(f"the scikit-image sample photo {name!r} cannot be loaded: {error}") from error
        photos.append(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    return photos


def photo_crops(size: int = 256, count: int = 64, *, seed: int = 0, min_scale: float = 0.5) -> npt.NDArray[np.uint8]:
    """``count`` square crops ``(count, size, size, 3)`` uint8 of the sample photos.

    Crop ``i`` comes from photo ``i mod 7``: a random square of side between ``min_scale`` and 1
    times the photo's shorter side, resized to ``size`` with Pillow's antialiased bilinear filter.
    Deterministic for a given ``seed``.

    Raises:
        ValueError: non-positive ``size`` or ``count``, ``min_scale`` outside (0, 1].
    """
    from PIL import Image

    if size <= 0:
        raise ValueError(f"size: expected a positive int, got {size}")
    if count <= 0:
        raise ValueError(f"count: expected a positive int, got {count}")
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale: expected a value in (0, 1], got {min_scale}")
    photos = sample_photos()
    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(round(min(h, w) * rng.uniform(min_scale, 1.0)))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side])
        out[i] = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))
    return out


from selfsup.hookspecs import Register, hookimpl  # noqa: E402


@hookimpl
def selfsup_register_datasets(register: Register) -> None:
    register(photo_crops, name="photos")
