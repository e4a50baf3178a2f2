"""WebDataset-format tar shards: the format open_clip, timm and the ``webdataset`` package read.

A shard is a plain POSIX tar file; a *sample* is a run of consecutive members sharing a key — the
member name up to the first dot of its base name — and each member's extension names a field:
``000123.jpg`` (the encoded image) and ``000123.cls`` (its class index as ASCII digits) are the
fields ``jpg`` and ``cls`` of sample ``000123``. :class:`TarShards` indexes the members' offsets
once (headers only) and then reads any sample's bytes directly (``os.pread``), so batches of
samples in any order — a shuffled epoch, a rank's share — cost one read per image.
:func:`write_shards` writes such shards from any image source.
"""

from __future__ import annotations

import glob
import io
import os
import re
import tarfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from selfsup.data.folder import CorruptImageWarning, FileSource
from selfsup.ops.decode import Source as EncodedImage
from selfsup.ops.decode import Unreadable

IMAGE_FIELDS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp")
"""Fields read as the sample's image, the first one present in this order."""
LABEL_FIELD = "cls"
_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_pattern(pattern: str) -> list[str]:
    """The shard paths of ``pattern``: brace ranges ``{000000..000127}`` (zero padding kept) and
    lists ``{a,b}`` as in the ``braceexpand`` package and shell globs (``*``, ``?``, ``[…]``),
    in order; a literal path is returned as it is.

    Raises:
        ValueError: a malformed range (``{3..1}`` or non-numbers).
    """
    match = _BRACES.search(pattern)
    if match is None:
        return sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    body, head, tail = match.group(1), pattern[: match.start()], pattern[match.end() :]
    if ".." in body:
        lo, hi = body.split("..", 1)
        if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
            raise ValueError(f"data: expected a range {{first..last}} of non-negative integers, got {{{body}}} in {pattern!r}")
        width = len(lo) if lo.startswith("0") else 0
        parts = [str(k).zfill(width) for k in range(int(lo), int(hi) + 1)]
    else:
        parts = body.split(",")
    return [path for part in parts for path in expand_pattern(head + part + tail)]


def is_shard_pattern(spec: str) -> bool:
    """Whether ``spec`` names tar shards (a path or pattern ending in ``.tar``)."""
    return spec.endswith(".tar") or bool(re.search(r"\.tar\}?$", spec))


class _Member(NamedTuple):
    shard: int
    name: str
    offset: int
    size: int


def _split_name(name: str) -> tuple[str, str] | None:
    match = _KEY.match(name)
    return (match.group(1), match.group(2).lower()) if match else None


def _index_shard(path: str, shard: int) -> list[tuple[str, dict[str, _Member]]]:
    """``(key, {field: member})`` of each sample of one shard, in file order. A shard cut short
    after its first member keeps the samples whose headers were read (with a warning); the cut
    member's bytes are found short when its batch is read.

    Raises:
        ValueError: not a tar file, compressed, or a damaged first header (names the shard).
    """
    samples: list[tuple[str, dict[str, _Member]]] = []
    key: str | None = None
    fields: dict[str, _Member] = {}
    last: str | None = None
    try:
        with tarfile.open(path, mode="r:") as archive:
            for info in archive:
                last = info.name
                if not info.isreg():
                    continue
                split = _split_name(info.name)
                if split is None:
                    continue
                if split[0] != key:
                    if key is not None:
                        samples.append((key, fields))
                    key, fields = split[0], {}
                fields[split[1]] = _Member(shard, info.name, info.offset_data, info.size)
    except tarfile.ReadError as error:
        if last is None:
            raise ValueError(f"data: shard {path}: not a readable uncompressed tar file ({error})") from None
        warnings.warn(f"shard {path} ends early after member {last!r} ({error})", CorruptImageWarning, stacklevel=3)
    except OSError as error:
        raise ValueError(f"data: shard {path}: {error.strerror or error}") from None
    if key is not None:
        samples.append((key, fields))
    return samples


class TarShards(FileSource):
    """Samples of WebDataset-format tar shards, decoded per batch from the stored bytes.

    Opening reads every shard's headers (not the images) to find each sample's image member
    (fields ``jpg``, ``jpeg``, ``png`` or ``webp``) and its ``cls`` label. The source is labeled
    when every sample has a ``cls``. Samples without an image are left out and counted in
    :attr:`without_image`. A member cut short by a truncated shard is found unreadable when its
    batch is loaded (skipped, counted, named ``shard:member``).

    Args:
        pattern: a shard path, a brace pattern ``shards/train-{000000..000127}.tar`` or a glob.
        gray, exif_orientation, max_pixels: as :class:`~selfsup.data.ImageFolder`.

    Raises:
        FileNotFoundError: no shard matches, or a named shard does not exist.
        ValueError: a shard that is not an uncompressed tar file; shards without any image; a
            ``cls`` field that is not a non-negative integer (names shard and member).

    Example:
        >>> import tempfile
        >>> from selfsup.data import ImageFolder, TarShards, write_photo_folder, write_shards
        >>> root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
        >>> _ = write_photo_folder(root, count=5, size=24)
        >>> [p.name for p in write_shards(ImageFolder(root), out, shard_size=3)]
        ['train-000000.tar', 'train-000001.tar']
        >>> shards = TarShards(out + "/train-{000000..000001}.tar")
        >>> len(shards), shards[4][0].shape
        (5, (24, 24, 3))
    """

    def __init__(
        self, pattern: str, *, gray: Literal["rgb", "keep"] = "rgb", exif_orientation: bool = True, max_pixels: int | None = None
    ) -> None:
        super().__init__(gray=gray, exif_orientation=exif_orientation, max_pixels=max_pixels)
        self.pattern = str(pattern)
        self.paths = expand_pattern(self.pattern)
        if not self.paths:
            raise FileNotFoundError(f"data: no shard matches {self.pattern!r}")
        missing = [p for p in self.paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"data: shard {missing[0]!r} does not exist" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        self.members: list[_Member] = []
        labels: list[int | None] = []
        self.keys: list[str] = []
        self.without_image = 0
        for shard, path in enumerate(self.paths):
            with open(path, "rb") as handle:  # one open per shard for its labels
                for key, fields in _index_shard(path, shard):
                    image = next((fields[f] for f in IMAGE_FIELDS if f in fields), None)
                    if image is None:
                        self.without_image += 1
                        continue
                    self.members.append(image)
                    self.keys.append(key)
                    labels.append(_label(handle.fileno(), path, fields.get(LABEL_FIELD)))
        if not self.members:
            raise ValueError(f"data: no sample with a {'/'.join(IMAGE_FIELDS)} field in {self.pattern!r}")
        self.labeled = all(label is not None for label in labels)
        self.samples = [(f"{self.paths[m.shard]}:{m.name}", label if self.labeled and label is not None else -1) for m, label in zip(self.members, labels)]

    def encoded(self, indices: Sequence[int]) -> list[EncodedImage]:
        by_shard: dict[int, list[int]] = {}
        for k, i in enumerate(indices):
            by_shard.setdefault(self.members[i].shard, []).append(k)
        out: list[EncodedImage] = [b""] * len(indices)
        for shard, positions in by_shard.items():
            path = self.paths[shard]
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as error:
                for k in positions:
                    out[k] = Unreadable(self.samples[indices[k]][0], f"cannot open the shard: {error.strerror}")
                continue
            try:
                for k in positions:
                    member = self.members[indices[k]]
                    data = os.pread(fd, member.size, member.offset)
                    out[k] = data if len(data) == member.size else Unreadable(
                        self.samples[indices[k]][0],
                        f"truncated shard: member {member.name} needs {member.size} bytes at offset {member.offset}, found {len(data)}"
                    )
            finally:
                os.close(fd)
        return out

    def __repr__(self) -> str:
        return f"TarShards({self.pattern!r}, {len(self.paths)} shards, {len(self)} images, {'labeled' if self.labeled else 'unlabeled'})"


def _label(fd: int, path: str, member: _Member | None) -> int | None:
    """The class in a ``cls`` member (ASCII digits), read from the open shard ``fd``."""
    if member is None:
        return None
    text = os.pread(fd, member.size, member.offset).decode("ascii", errors="replace").strip()
    if not text.isdigit():
        raise ValueError(f"data: shard {path}, member {member.name}: expected a non-negative integer class, got {text[:20]!r}")
    return int(text)


def write_shards(
    source: FileSource, out_dir: str | os.PathLike[str], shard_size: int = 1000, *, prefix: str = "train", progress: bool = False
) -> list[Path]:
    """Writes the samples of ``source`` (an :class:`~selfsup.data.ImageFolder` or
    :class:`~selfsup.data.FileList`) as WebDataset shards ``{prefix}-000000.tar``, … of
    ``shard_size`` samples each, in sample order: for sample ``i`` the original file's bytes as
    ``{i:09d}.{ext}`` and, for a labeled source, its class index as ``{i:09d}.cls``. Nothing is
    re-encoded. Members carry mode 0444, owner 0 and mtime 0, so the same files give the same
    shards. Each shard is written to a temporary name and renamed when complete. Files that cannot
    be read are skipped with a :class:`~selfsup.data.CorruptImageWarning`.

    Raises:
        ValueError: ``shard_size`` < 1, a ``prefix`` with a path separator, ``source`` not file
            based. FileExistsError: ``out_dir`` already holds shards of this prefix.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size: expected a positive int, got {shard_size!r}")
    if not prefix or os.sep in prefix:
        raise ValueError(f"prefix: expected a file name prefix, got {prefix!r}")
    if isinstance(source, TarShards):
        raise ValueError("source: expected an image folder or a file list, got shards")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob(f"{prefix}-*.tar")):
        raise FileExistsError(f"out: {str(out)!r} already holds {prefix}-*.tar shards")
    written: list[Path] = []
    for first in range(0, len(source), shard_size):
        path = out / f"{prefix}-{len(written):06d}.tar"
        partial = path.with_suffix(".tar.partial")
        with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for i in range(first, min(first + shard_size, len(source))):
                file_path, target = source.samples[i]
                try:
                    with open(file_path, "rb") as handle:
                        data = handle.read()
                except OSError as error:
                    warnings.warn(f"skipping an unreadable image {file_path}: {error.strerror}", CorruptImageWarning, stacklevel=2)
                    continue
                ext = os.path.splitext(file_path)[1].lower().lstrip(".") or "jpg"
                _add(archive, f"{i:09d}.{ext}", data)
                if source.labeled:
                    _add(archive, f"{i:09d}.{LABEL_FIELD}", str(int(target)).encode())
        os.replace(partial, path)
        written.append(path)
        if progress:
            print(f"\rwrote {len(written)} shards, {min(first + shard_size, len(source))}/{len(source)} images", end="", flush=True)
    if progress:
        print()
    return written


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o444, 0, 0, 0
    archive.addfile(info, io.BytesIO(data))
