"""Atomic checkpoints: written to a temporary file in the same folder, flushed to disk, then
renamed over the old one, so a run killed at any moment leaves either the old or the new file."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Calls ``write`` on a temporary file beside ``path``, flushes it to disk, renames it over
    ``path`` and syncs the folder: a kill at any moment leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    return atomic_write(path, lambda handle: torch.save(state, handle))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def load_state_file(path: str | Path) -> dict[str, Any]:
    """Loads a file written by :func:`save_checkpoint` as data only (see :func:`load_checkpoint`).

    Raises:
        FileNotFoundError: no file at ``path``. ValueError: not such a file, or one that would
            need unpickling (names what it needs).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        detail = f"it needs {found.group(1)}" if found else "it needs classes that only unpickling can build"
        raise ValueError(
            f"checkpoint: {path} holds Python objects beyond tensors and plain values; loading it could run code "
            f"from the file, so it is refused ({detail})"
        ) from None
    except Exception as error:
        raise ValueError(f"checkpoint: {path} is not a readable checkpoint ({error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint: {path} holds a {type(state).__name__}, not a dict of state")
    return state


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint as data only (``torch.load(weights_only=True)``): tensors, containers and
    plain values. Checkpoints come from users; unpickling anything else can run code that the
    file carries, so such a file is refused, never executed.

    Raises:
        FileNotFoundError: no file at ``path``. ValueError: a file that is not a checkpoint, or one
            that holds objects beyond tensors and plain values (names what it holds).
    """
    state = load_state_file(path)
    if "model" not in state:
        raise ValueError(f"checkpoint: {path} has no model state")
    return state
