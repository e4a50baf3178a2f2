"""Decoding JPEG, PNG and WebP images into uint8 ``(H, W, C)`` arrays on the native thread pool."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal, Union, overload

import numpy as np
import numpy.typing as npt

from selfsup import _native

U8Array = npt.NDArray[np.uint8]


class Unreadable:
    """A source whose bytes could not be read before decoding (a member cut short in a shard, a
    file that cannot be opened): its ``source`` name and the ``reason``. :func:`decode_images`
    reports it as a :class:`DecodeError` like any file that does not decode."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason


Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", Unreadable]


class DecodeError(ValueError):
    """An image that could not be read or decoded: ``index`` in the list, its ``source`` (the
    path, or ``"<bytes>"``) and the decoder's ``reason``."""

    def __init__(self, index: int, source: str, reason: str) -> None:
        super().__init__(f"sources[{index}] ({source}): {reason}")
        self.index = index
        self.source = source
        self.reason = reason


def _native_source(k: int, src: object) -> bytes | str | Unreadable:
    """What the native decoder takes: bytes, or a path it can open. A path that is not valid
    UTF-8 (a file name in another encoding, held as surrogate escapes) is read here, since the
    native layer takes UTF-8 paths; one that cannot be read becomes :class:`Unreadable`."""
    if isinstance(src, (bytes, Unreadable)):
        return src
    if isinstance(src, (bytearray, memoryview)):
        return bytes(src)
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            try:
                with open(path, "rb") as handle:
                    return _PathBytes(handle.read(), path)
            except OSError as error:
                return Unreadable(path, f"cannot read the file: {error.strerror or error}")
        return path
    raise TypeError(f"sources[{k}]: expected bytes or a path (str or os.PathLike), got {type(src).__name__}")


class _PathBytes(bytes):
    """A file's bytes read on the Python side, remembering the path for error messages."""

    path: str

    def __new__(cls, data: bytes, path: str) -> _PathBytes:
        out = super().__new__(cls, data)
        out.path = path
        return out


def _name(src: bytes | str | Unreadable) -> str:
    if isinstance(src, Unreadable):
        return src.source
    return src if isinstance(src, str) else getattr(src, "path", "<bytes>")


@overload
def decode_images(
    sources: Sequence[Source], *, gray: Literal["rgb", "keep"] = ..., exif_orientation: bool = ..., errors: Literal["raise"] = ...,
    max_pixels: int | None = ...,
) -> list[U8Array]: ...
@overload
def decode_images(
    sources: Sequence[Source], *, gray: Literal["rgb", "keep"] = ..., exif_orientation: bool = ..., errors: Literal["return"],
    max_pixels: int | None = ...,
) -> list[U8Array | DecodeError]: ...
def decode_images(
    sources: Sequence[Source],
    *,
    gray: Literal["rgb", "keep"] = "rgb",
    exif_orientation: bool = True,
    errors: Literal["raise", "return"] = "raise",
    max_pixels: int | None = None,
) -> list[U8Array] | list[U8Array | DecodeError]:
    """Reads and decodes images in one GIL-free call, one image per thread of selfsup's pool.

    ``sources`` are encoded images (``bytes``), file paths or :class:`Unreadable` placeholders.
    Each becomes a uint8 array ``(H, W, 3)`` — RGB, alpha dropped as Pillow's ``convert("RGB")``,
    16-bit samples scaled to 8 bits — or ``(H, W, 1)`` for a greyscale image when ``gray="keep"``. ``exif_orientation``
    applies the EXIF orientation tag as Pillow's ``ImageOps.exif_transpose``. Decoders: zune-jpeg
    (JPEG; within a few grey levels of libjpeg-turbo, whose IDCT and chroma upsampling differ),
    png, image-webp (both exact). A JPEG that ends before its end-of-image marker is an error, as
    in Pillow.

    Untrusted files: the pixel count an image's header declares is checked before anything is
    allocated, against ``max_pixels`` (default ``2 · 89,478,485``, where Pillow raises
    ``DecompressionBombError``), and its decoded size against 1 GiB; a file over either limit is a
    :class:`DecodeError` (skipped and counted in a folder), never an allocation that aborts.

    Args:
        max_pixels: the largest width × height accepted (``None``: the default above).
        errors: ``"raise"``: the first bad source raises :class:`DecodeError` (after all are
            decoded); ``"return"``: a bad source's entry is its :class:`DecodeError` instead.

    Raises:
        TypeError: a source that is neither bytes nor a path. ValueError: unknown ``gray`` or
        ``errors``. DecodeError: a source that cannot be read or decoded (``errors="raise"``).

    Example:
        >>> import io, numpy as np, PIL.Image, selfsup.ops as ops
        >>> buf = io.BytesIO(); PIL.Image.new("RGB", (5, 4), (9, 8, 7)).save(buf, "PNG")
        >>> [a.shape for a in ops.decode_images([buf.getvalue()])]
        [(4, 5, 3)]
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors: expected 'raise' or 'return', got {errors!r}")
    if gray not in ("rgb", "keep"):
        raise ValueError(f"gray: expected 'rgb' or 'keep', got {gray!r}")
    native = [_native_source(k, s) for k, s in enumerate(sources)]
    decoded = iter(_native.decode_images([n for n in native if not isinstance(n, Unreadable)], gray, bool(exif_orientation), max_pixels))
    out: list[U8Array | DecodeError] = []
    for k, item in enumerate(native):
        r = item.reason if isinstance(item, Unreadable) else next(decoded)
        if isinstance(r, str):
            error = DecodeError(k, _name(item), r)
            if errors == "raise":
                raise error
            out.append(error)
        else:
            out.append(r)
    return out
