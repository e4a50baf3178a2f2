"""Which source a ``--data`` argument names: an image folder, a file list or tar shards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from selfsup.data.folder import FileList, FileSource, ImageFolder
from selfsup.data.shards import TarShards, is_shard_pattern


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
