"""Small image sets that ship inside installed packages (nothing is downloaded).

The colour photographs bundled with scikit-image serve as real-photo data for demos, tests and
benchmarks: :func:`sample_photos` returns them whole, :func:`photo_crops` cuts them into square
crops of one size.
"""

from __future__ import annotations

import os

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


def write_photo_folder(
    root: str | os.PathLike[str],
    count: int = 64,
    size: int = 256,
    *,
    classes: int = 0,
    image_format: str = "JPEG",
    quality: int = 90,
    seed: int = 0,
) -> list[str]:
    """Writes :func:`photo_crops` ``(count, size)`` as image files under ``root`` and returns their
    paths: a flat folder, or ``classes`` sub-folders ``class_0…`` (crop ``i`` in class ``i mod
    classes``). ``image_format``: a Pillow format (``"JPEG"``, ``"PNG"``, ``"WEBP"``).

    Raises:
        ValueError: negative ``classes``, an unknown format (and see :func:`photo_crops`).
    """
    from PIL import Image

    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 0:
        raise ValueError(f"classes: expected an int >= 0, got {classes!r}")
    suffix = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}.get(image_format.upper())
    if suffix is None:
        raise ValueError(f"image_format: expected 'JPEG', 'PNG' or 'WEBP', got {image_format!r}")
    crops = photo_crops(size, count, seed=seed)
    paths = []
    for i, crop in enumerate(crops):
        folder = os.path.join(os.fspath(root), f"class_{i % classes}") if classes else os.fspath(root)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{i:06d}{suffix}")
        options = {"quality": quality} if suffix != ".png" else {}
        Image.fromarray(crop).save(path, image_format.upper(), **options)
        paths.append(path)
    return paths


from selfsup.hookspecs import Register, hookimpl  # noqa: E402


@hookimpl
def selfsup_register_datasets(register: Register) -> None:
    register(photo_crops, name="photos")
