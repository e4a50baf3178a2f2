"""A folder of image files (JPEG, PNG, WebP), scanned once and decoded natively."""

from __future__ import annotations

import csv
import os
import stat
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from selfsup.ops.decode import DecodeError, decode_images
from selfsup.ops.decode import Source as EncodedImage

if TYPE_CHECKING:
    from selfsup.data.pipeline import Source

U8Array = npt.NDArray[np.uint8]
IMG_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")
"""File name endings :class:`ImageFolder` reads by default (compared case-insensitively)."""


class CorruptImageWarning(UserWarning):
    """An image file that could not be read or decoded and was skipped."""


class Loaded(NamedTuple):
    images: list[U8Array]
    """Decoded ``(H, W, C)`` uint8 arrays of the readable samples."""
    targets: list[int]
    """Their class indices (``-1`` for an unlabeled folder)."""
    indices: list[int]
    """Their dataset indices."""
    skipped: list[tuple[int, str, str]]
    """``(index, path, reason)`` of each sample that could not be decoded."""


def _walk(top: str) -> list[tuple[str, list[str]]]:
    """Folders under ``top`` sorted by path, each with its sorted file names (torchvision's
    ``sorted(os.walk(top, followlinks=True))``), raising on unreadable folders. Symbolic links to
    folders are followed, but every real folder is visited once (a link loop does not repeat
    its files); names that are not regular files (FIFOs, sockets, devices: reading one can block
    forever) are left out with a :class:`CorruptImageWarning`."""

    def fail(error: OSError) -> None:
        raise OSError(f"root: cannot read the folder {error.filename!r}: {error.strerror}") from error

    seen: set[tuple[int, int]] = set()
    found: list[tuple[str, list[str]]] = []
    for folder, dirs, files in os.walk(top, onerror=fail, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        regular = []
        for name in files:
            path = os.path.join(folder, name)
            try:
                is_regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:  # a dangling link: reported when it is read
                is_regular = True
            if is_regular:
                regular.append(name)
            else:
                warnings.warn(f"skipping {path}: not a regular file", CorruptImageWarning, stacklevel=4)
        found.append((folder, sorted(regular)))
    return sorted(found)


class FileSource:
    """Image files with their class indices (``-1`` when unlabeled): the part of a source that
    reads and decodes. :class:`ImageFolder` and :class:`FileList` find the files.

    Decoding (Rust: zune-jpeg, png, image-webp; see :func:`selfsup.ops.decode_images`) happens
    on selfsup's thread pool, from the original files, one batch at a time. A file that cannot be
    decoded is skipped with a :class:`CorruptImageWarning` and recorded in :attr:`skipped` (path →
    reason); it never stops an epoch.
    """

    labeled: bool
    samples: list[tuple[str, int]]

    def __init__(self, *, gray: Literal["rgb", "keep"] = "rgb", exif_orientation: bool = True, max_pixels: int | None = None) -> None:
        if gray not in ("rgb", "keep"):
            raise ValueError(f"gray: expected 'rgb' or 'keep', got {gray!r}")
        if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1):
            raise ValueError(f"max_pixels: expected a positive int or None, got {max_pixels!r}")
        self.gray: Literal["rgb", "keep"] = gray
        self.exif_orientation = bool(exif_orientation)
        self.max_pixels = max_pixels
        """Images declaring more pixels are unreadable (:func:`~selfsup.ops.decode_images`)."""
        self.samples = []
        self.skipped: dict[str, str] = {}
        """Files found unreadable so far: path → reason."""

    @property
    def targets(self) -> list[int]:
        return [t for _, t in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_skipped(self) -> int:
        """How many files were found unreadable so far."""
        return len(self.skipped)

    def record_skipped(self, path: str, reason: str) -> None:
        """Counts ``path`` as unreadable and warns the first time."""
        if path not in self.skipped:
            self.skipped[path] = reason
            warnings.warn(f"skipping an unreadable image {path}: {reason}", CorruptImageWarning, stacklevel=3)

    def readable_targets(self) -> npt.NDArray[np.int64] | None:
        """The class indices of the samples not found unreadable so far, in sample order (after
        :func:`load_folder_array`, the labels of its images); ``None`` for an unlabeled source."""
        if not self.labeled:
            return None
        return np.array([t for path, t in self.samples if path not in self.skipped], dtype=np.int64)

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        n = len(self.samples)
        if not -n <= int(index) < n:
            raise IndexError(f"index: expected -{n} <= index < {n}, got {index}")
        return int(index) % n

    def encoded(self, indices: Sequence[int]) -> list[EncodedImage]:
        """What the decoder reads for the samples ``indices``: their paths (bytes for sources that
        hold the images themselves; :class:`~selfsup.ops.decode.Unreadable` where those could not
        be read)."""
        return [self.samples[i][0] for i in indices]

    def _decode(self, indices: Sequence[int]) -> list[U8Array | DecodeError]:
        return decode_images(
            self.encoded(indices), gray=self.gray, exif_orientation=self.exif_orientation, errors="return", max_pixels=self.max_pixels
        )

    def load(self, indices: Sequence[int]) -> Loaded:
        """Decodes the samples ``indices`` in one native call; unreadable ones are skipped (with a
        warning, recorded in :attr:`skipped`) and listed in the result's ``skipped``."""
        idx = [self._index(i) for i in indices]
        decoded = self._decode(idx)
        out = Loaded([], [], [], [])
        for i, d in zip(idx, decoded):
            path = self.samples[i][0]
            if isinstance(d, DecodeError):
                self.record_skipped(path, d.reason)
                out.skipped.append((i, path, d.reason))
            else:
                out.images.append(d)
                out.targets.append(self.samples[i][1])
                out.indices.append(i)
        return out

    def __getitem__(self, index: int) -> tuple[U8Array, int]:
        """``(image, target)``; an unreadable file raises :class:`~selfsup.ops.DecodeError`."""
        i = self._index(index)
        path, target = self.samples[i]
        image = self._decode([i])[0]
        if isinstance(image, DecodeError):
            self.record_skipped(path, image.reason)
            raise DecodeError(i, path, image.reason)
        return image, target

    def __iter__(self) -> Iterator[tuple[U8Array, int]]:
        """Every readable ``(image, target)`` in order, decoded 64 at a time."""
        for start in range(0, len(self.samples), 64):
            loaded = self.load(range(start, min(start + 64, len(self.samples))))
            yield from zip(loaded.images, loaded.targets)


class ImageFolder(FileSource):
    """The image files under ``root``, unlabeled or one class per sub-folder.

    Scanning is recursive and sorted (deterministic on every machine). With class sub-folders the
    classes are the sorted names of ``root``'s immediate sub-folders, ``class_to_idx`` maps them to
    0, 1, … and every file below a class folder (at any depth) has that class — torchvision's
    ``ImageFolder`` semantics. ``labeled="auto"`` means class folders when ``root`` holds
    sub-folders and no image file of its own. Only names ending in one of ``extensions`` count.

    Decoding (Rust: zune-jpeg, png, image-webp; see :func:`selfsup.ops.decode_images`) happens
    on selfsup's thread pool. A file that cannot be decoded is skipped with a
    :class:`CorruptImageWarning` and recorded in :attr:`skipped` (path → reason); it never stops
    an epoch. :meth:`load` decodes a list of indices in one call; :class:`ViewLoader` turns a
    folder into augmented multi-view batches.

    Args:
        root: the folder.
        labeled: ``True`` (class sub-folders), ``False`` (all files, target ``-1``) or ``"auto"``.
        extensions: accepted file name endings.
        gray: ``"rgb"`` (greyscale images as three channels) or ``"keep"`` (one channel).
        exif_orientation: apply the EXIF orientation tag.
        max_pixels: images declaring more pixels are unreadable (default: Pillow's bomb limit).

    Raises:
        FileNotFoundError: ``root`` is not a folder; no class folder (``labeled=True``); no image
            file at all, or a class folder without any. OSError: a folder that cannot be read.
        ValueError: empty ``extensions``, an unknown ``labeled`` or ``gray``.

    Example:
        >>> import tempfile, PIL.Image
        >>> from selfsup.data import ImageFolder
        >>> root = tempfile.mkdtemp()
        >>> for c in ("cat", "dog"):
        ...     os.makedirs(f"{root}/{c}")
        ...     PIL.Image.new("RGB", (8, 6)).save(f"{root}/{c}/a.png")
        >>> folder = ImageFolder(root)
        >>> folder.class_to_idx, len(folder), folder[1][0].shape, folder[1][1]
        ({'cat': 0, 'dog': 1}, 2, (6, 8, 3), 1)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        labeled: bool | Literal["auto"] = "auto",
        extensions: Sequence[str] = IMG_EXTENSIONS,
        gray: Literal["rgb", "keep"] = "rgb",
        exif_orientation: bool = True,
        max_pixels: int | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root: {str(self.root)!r} is not a folder")
        if isinstance(extensions, str) or not extensions:
            raise ValueError(f"extensions: expected a non-empty sequence of endings such as '.jpg', got {extensions!r}")
        if labeled not in (True, False, "auto"):
            raise ValueError(f"labeled: expected True, False or 'auto', got {labeled!r}")
        super().__init__(gray=gray, exif_orientation=exif_orientation, max_pixels=max_pixels)
        self.extensions = tuple(e.lower() for e in extensions)
        if labeled == "auto":
            top = sorted(os.scandir(self.root), key=lambda e: e.name)
            has_dirs = any(e.is_dir() for e in top)
            labeled = has_dirs and not any(e.is_file() and self._accepts(e.name) for e in top)
        self.labeled = bool(labeled)
        self.classes: list[str] = []
        self.class_to_idx: dict[str, int] = {}
        if self.labeled:
            self._scan_classes()
        else:
            self.samples = [(p, -1) for p in self._files(str(self.root))]
            if not self.samples:
                raise FileNotFoundError(f"root: no file ending in {', '.join(self.extensions)} under {str(self.root)!r}")

    def _accepts(self, name: str) -> bool:
        return name.lower().endswith(self.extensions)

    def _files(self, top: str) -> list[str]:
        return [os.path.join(folder, f) for folder, files in _walk(top) for f in files if self._accepts(f)]

    def _scan_classes(self) -> None:
        self.classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not self.classes:
            raise FileNotFoundError(f"root: no class sub-folder in {str(self.root)!r} (use labeled=False for a flat folder)")
        self.class_to_idx = {c: k for k, c in enumerate(self.classes)}
        empty = []
        for c in self.classes:
            files = self._files(str(self.root / c))
            if not files:
                empty.append(c)
            self.samples.extend((p, self.class_to_idx[c]) for p in files)
        if empty:
            raise FileNotFoundError(
                f"root: no file ending in {', '.join(self.extensions)} in the class folder(s) {', '.join(empty)} of {str(self.root)!r}"
            )

    def __repr__(self) -> str:
        kind = f"{len(self.classes)} classes" if self.labeled else "unlabeled"
        return f"ImageFolder({str(self.root)!r}, {len(self)} images, {kind})"


class FileList(FileSource):
    """The image files named in a list file: a text file with one path per line, or a CSV file
    (``.csv``) of ``path,label`` rows with an optional ``path,label`` header, where labels are
    class names or integers (names are numbered in sorted order, as folder classes). Relative paths
    are taken from the list file's folder; blank lines and lines starting with ``#`` are ignored.
    Files are only read when their batch is loaded, so missing ones are skipped then, and counted.

    Raises:
        FileNotFoundError: ``path`` is not a file. ValueError: a list without any path; a CSV row
            without a label while others have one (names the line).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, gray: Literal["rgb", "keep"] = "rgb", exif_orientation: bool = True, max_pixels: int | None = None
    ) -> None:
        super().__init__(gray=gray, exif_orientation=exif_orientation, max_pixels=max_pixels)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"data: {str(self.path)!r} is not a file list")
        base = self.path.parent
        rows: list[tuple[str, str | None]] = []
        with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            if self.path.suffix.lower() == ".csv":
                for number, row in enumerate(csv.reader(handle), start=1):
                    if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                        continue
                    if number == 1 and [c.strip().lower() for c in row[:2]] == ["path", "label"]:
                        continue
                    if len(row) > 2:
                        raise ValueError(f"data: line {number} of {str(self.path)!r}: expected path,label, got {len(row)} fields")
                    rows.append((row[0].strip(), row[1].strip() if len(row) == 2 else None))
            else:
                for line in handle:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        rows.append((line, None))
        if not rows:
            raise ValueError(f"data: {str(self.path)!r} names no image file")
        with_label = [label is not None for _, label in rows]
        if any(with_label) and not all(with_label):
            bad = with_label.index(False) if with_label[0] else with_label.index(True)
            raise ValueError(f"data: {str(self.path)!r}: some rows have a label and row {bad + 1} does not agree")
        self.labeled = all(with_label)
        self.classes: list[str] = []
        self.class_to_idx: dict[str, int] = {}
        labels = [label for _, label in rows if label is not None]
        if self.labeled and all(label.lstrip("-").isdigit() for label in labels):
            numbers = [int(label) for label in labels]
            if min(numbers) < 0:
                raise ValueError(f"data: {str(self.path)!r}: integer labels must be >= 0, got {min(numbers)}")
            targets = numbers
        elif self.labeled:
            self.classes = sorted(set(labels))
            self.class_to_idx = {c: k for k, c in enumerate(self.classes)}
            targets = [self.class_to_idx[label] for label in labels]
        else:
            targets = [-1] * len(rows)
        self.samples = [(os.path.join(base, p), t) for (p, _), t in zip(rows, targets)]

    def __repr__(self) -> str:
        return f"FileList({str(self.path)!r}, {len(self)} images, {'labeled' if self.labeled else 'unlabeled'})"


def load_folder_array(root: str | os.PathLike[str], size: int, *, batch: int = 256) -> tuple[U8Array, ImageFolder]:
    """Every readable image under ``root`` as one uint8 ``(N, size, size, 3)`` array for in-memory
    training: the central square of each image (side min(H, W)), resized with antialiasing to
    ``size`` — torchvision's ``Resize(size)`` + ``CenterCrop(size)`` up to rounding of the crop.
    Decoding and resizing run ``batch`` images per native call. Corrupt files are skipped with a
    :class:`CorruptImageWarning` (see the returned folder's ``skipped``); the folder's
    :meth:`~ImageFolder.readable_targets` are the images' class labels.

    Raises:
        ValueError: ``size`` < 1; ``root`` missing, empty or without a readable image.
    """
    if size < 1:
        raise ValueError(f"size: expected a positive int, got {size}")
    folder = ImageFolder(root, gray="rgb")
    images, _ = source_squares(folder, size, batch=batch)
    if images is None:
        raise ValueError(f"root: none of the {len(folder)} image files under {str(folder.root)!r} could be decoded")
    return images, folder


def source_squares(source: Source, size: int, *, batch: int = 256) -> tuple[U8Array | None, list[int]]:
    """Every readable sample of ``source`` as
    :func:`center_squares` of side ``size``, RGB (grey images repeated over three channels), and
    their targets, decoded ``batch`` at a time; ``(None, [])`` when none could be read. Unreadable
    samples are left out (and recorded by the source)."""
    chunks: list[U8Array] = []
    targets: list[int] = []
    for start in range(0, len(source), batch):
        loaded = source.load(range(start, min(start + batch, len(source))))
        if loaded.images:
            rgb = [np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3] for image in loaded.images]
            chunks.append(center_squares(rgb, size))
            targets += loaded.targets
    return (np.concatenate(chunks) if chunks else None), targets


def center_squares(images: Sequence[U8Array], size: int) -> U8Array:
    """Decoded images of any sizes → one uint8 ``(N, size, size, 3)`` array: each image's central
    square (side ``min(H, W)``) resized with antialiasing — torchvision's ``Resize(size)`` +
    ``CenterCrop(size)`` up to rounding of the crop; one native call for the batch."""
    from selfsup.transforms import Compose, Resize

    squares = []
    for image in images:
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        squares.append(np.ascontiguousarray(image[top : top + side, left : left + side]))
    out = Compose([Resize(size)])(squares, seed=0)
    result: U8Array = out.permute(0, 2, 3, 1).contiguous().numpy()
    return result
