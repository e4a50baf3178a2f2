"""Which source a ``--data`` argument names: a registered dataset, an image folder, a file list or tar shards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from selfsup.data.folder import FileList, FileSource, ImageFolder
from selfsup.data.shards import TarShards, is_shard_pattern

if TYPE_CHECKING:
    from selfsup.data.pipeline import Source


def open_source(spec: str | os.PathLike[str], *, gray: Literal["rgb", "keep"] = "rgb") -> FileSource:
    """The source ``spec`` names: a folder (:class:`~selfsup.data.ImageFolder`, class sub-folders
    or flat), WebDataset tar shards (a path or pattern ending in ``.tar``:
    :class:`~selfsup.data.TarShards`) or a list file (``.txt``/``.csv``:
    :class:`~selfsup.data.FileList`). Nothing is decoded here.

    Raises:
        FileNotFoundError: ``spec`` names nothing that exists, or a source without images.
        ValueError: a malformed list, pattern or shard.
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        return ImageFolder(path, gray=gray)
    if is_shard_pattern(text):
        return TarShards(text, gray=gray)
    if path.is_file():
        return FileList(path, gray=gray)
    raise FileNotFoundError(f"data: {text!r} is neither a folder, a file list nor tar shards")


def looks_like_path(name: str) -> bool:
    return os.sep in name or Path(name).exists() or name.endswith((".tar", ".txt", ".csv"))


def open_data(name: str) -> Source:
    """The source ``name`` stands for: a registered dataset (an in-memory
    :class:`~selfsup.data.ArraySource` with its labels), an image folder, a file list or tar shards.

    Raises:
        ValueError: ``data: ...`` for a missing, empty or unreadable source or an unknown dataset name.
    """
    from selfsup import plugins
    from selfsup.data.pipeline import ArraySource

    if looks_like_path(name):
        try:
            return open_source(name)
        except (ValueError, OSError) as error:
            raise ValueError(f"data: {str(error).removeprefix('data: ')}") from None
    try:
        factory = plugins.get("datasets", name)
    except plugins.UnknownNameError as error:
        raise ValueError(f"data: {error} (or a folder, file list or shards that does not exist)") from None
    data = factory()
    if hasattr(data, "clips"):
        from selfsup.data.clips import ClipArraySource

        return ClipArraySource(data.clips, getattr(data, "labels", None))
    return ArraySource(getattr(data, "images", data), getattr(data, "labels", None))
