"""Argument handling shared by the native-op facades."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import numpy.typing as npt


def resolve_seed(seed: int | None) -> int:
    """A fresh random seed for ``None``; otherwise ``seed`` checked to fit in 64 bits."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed: expected 0 <= seed < 2**64, got {seed}")
    return int(seed)


def check_epoch(epoch: int) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or int(epoch) < 0:
        raise ValueError(f"epoch: expected a non-negative int, got {epoch!r}")
    return int(epoch)


def as_array(value: Any) -> Any:
    """Torch tensors become numpy arrays (no copy for CPU tensors); everything else passes unchanged
    and is validated by the native layer, which names the argument in its errors."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value


def as_int64(value: Any, name: str) -> npt.NDArray[np.int64] | None:
    """``None`` stays ``None``; integer sequences/arrays become C-contiguous int64."""
    if value is None:
        return None
    array = np.asarray(as_array(value))
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
