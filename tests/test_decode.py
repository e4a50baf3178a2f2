"""selfsup.ops.decode_images against Pillow (libjpeg-turbo, libpng, libwebp) on real photos."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import selfsup.ops as ops
from selfsup.data import photo_crops


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return photo_crops(80, 4, seed=2)


def encode(image: np.ndarray | Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    pil.save(buf, fmt, **options)
    return buf.getvalue()


def pil_decode(data: bytes) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


def test_png_and_lossless_webp_are_exact(photos):
    sources = [encode(photos[0], "PNG"), encode(photos[1], "WEBP", lossless=True)]
    out = ops.decode_images(sources)
    np.testing.assert_array_equal(out[0], photos[0])
    np.testing.assert_array_equal(out[1], photos[1])
    assert out[0].dtype == np.uint8 and out[0].flags.c_contiguous


def test_lossy_webp_matches_libwebp(photos):
    data = encode(photos[2], "WEBP", quality=80)
    diff = np.abs(ops.decode_images([data])[0].astype(int) - pil_decode(data))
    assert diff.max() <= 1


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_is_within_a_few_grey_levels_of_libjpeg_turbo(photos, subsampling):
    data = encode(photos[3], "JPEG", quality=90, subsampling=subsampling)
    diff = np.abs(ops.decode_images([data])[0].astype(int) - pil_decode(data))
    # zune-jpeg and libjpeg-turbo differ in IDCT rounding and chroma upsampling
    assert diff.mean() < 0.5 and diff.max() <= 8, (diff.mean(), diff.max())


def test_grey_rgba_and_16_bit_as_pillow(photos):
    gray = np.asarray(Image.fromarray(photos[0]).convert("L"))
    rgba = np.dstack([photos[1], np.arange(80 * 80, dtype=np.uint8).reshape(80, 80)])
    wide = Image.fromarray((gray.astype(np.uint16) * 257 + 100).astype(np.uint16))
    sources = [encode(gray, "PNG"), encode(rgba, "PNG"), encode(gray, "JPEG", quality=95), encode(wide, "PNG")]
    rgb = ops.decode_images(sources)
    kept = ops.decode_images(sources, gray="keep")
    np.testing.assert_array_equal(rgb[0], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(kept[0], gray[..., None])
    np.testing.assert_array_equal(rgb[1], photos[1])  # alpha dropped, as convert("RGB")
    assert kept[1].shape == (80, 80, 3)
    assert kept[2].shape == (80, 80, 1) and np.abs(kept[2][..., 0].astype(int) - gray).mean() < 2
    np.testing.assert_array_equal(kept[3][..., 0], np.round((gray.astype(np.uint16) * 257 + 100) / 257).astype(np.uint8))


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_as_pillow_exif_transpose(photos, orientation):
    image = Image.fromarray(photos[0][:, :60])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())
    out = ops.decode_images([data])[0]
    ref = pil_decode(data)
    assert out.shape == ref.shape
    assert np.abs(out.astype(int) - ref).mean() < 0.5
    raw = ops.decode_images([data], exif_orientation=False)[0]
    assert raw.shape == (80, 60, 3)


def test_paths_bytes_and_pathlike(tmp_path: Path, photos):
    path = tmp_path / "a.png"
    path.write_bytes(encode(photos[0], "PNG"))
    out = ops.decode_images([path, str(path), bytearray(path.read_bytes()), memoryview(path.read_bytes())])
    for image in out:
        np.testing.assert_array_equal(image, photos[0])


def test_corrupt_and_truncated_items_are_per_item_errors(tmp_path: Path, photos):
    jpeg = encode(photos[0], "JPEG", quality=90)
    png = encode(photos[1], "PNG")
    webp = encode(photos[2], "WEBP", quality=80)
    garbled = bytearray(png)
    garbled[100:140] = b"\x00" * 40
    sources = [jpeg, jpeg[: len(jpeg) // 2], png[:-30], webp[: len(webp) // 2], b"not an image", b"", bytes(garbled),
               str(tmp_path / "missing.jpg"), png]
    out = ops.decode_images(sources, errors="return")
    assert isinstance(out[0], np.ndarray) and isinstance(out[-1], np.ndarray)
    np.testing.assert_array_equal(out[-1], photos[1])
    for k in range(1, 8):
        assert isinstance(out[k], ops.DecodeError), k
        assert out[k].index == k
    assert "truncated" in out[1].reason
    assert "JPEG, PNG or WebP" in out[4].reason
    assert "empty" in out[5].reason
    assert out[7].source.endswith("missing.jpg") and "cannot read" in out[7].reason
    with pytest.raises(ops.DecodeError, match=r"^sources\[1\] \(<bytes>\): truncated"):
        ops.decode_images(sources)


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"^sources\[1\]"):
        ops.decode_images([b"x", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="^gray"):
        ops.decode_images([b"x"], gray="grey")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="^errors"):
        ops.decode_images([b"x"], errors="skip")  # type: ignore[call-overload]
    assert ops.decode_images([]) == []


def test_many_images_in_parallel_equal_one_by_one(photos):
    sources = [encode(p, "JPEG", quality=85) for p in photo_crops(48, 40, seed=5)]
    together = ops.decode_images(sources)
    before = ops.get_num_threads()
    try:
        ops.set_num_threads(1)
        alone = [ops.decode_images([s])[0] for s in sources]
    finally:
        ops.set_num_threads(before)
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)
