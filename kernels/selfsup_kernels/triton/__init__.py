"""Triton kernels of the fused losses (GPU; on CPU only under ``TRITON_INTERPRET=1``).

Importing this package does not import :mod:`triton`; :mod:`selfsup_kernels.triton.host` does, and
is loaded only when a kernel is launched, so ``selfsup_kernels`` works where triton is absent.
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["interpreting", "is_available"]


def is_available() -> bool:
    """True when the ``triton`` package can be found (it is imported only on first launch)."""
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):
        return False


def interpreting() -> bool:
    """True when ``TRITON_INTERPRET`` is set: kernels then run on CPU tensors, slowly."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
