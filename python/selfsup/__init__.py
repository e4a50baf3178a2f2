"""selfsup: self-supervised learning for computer vision.

The native data path lives in :mod:`selfsup.ops`; the fused contrastive losses in
:mod:`selfsup.losses` (the ``selfsup-kernels`` distribution, imported on first use so that
``import selfsup`` does not pull in torch).
"""

from __future__ import annotations

from typing import Any

from selfsup import ops
from selfsup._native import __version__

__all__ = ["__version__", "losses", "ops"]


def __getattr__(name: str) -> Any:
    if name == "losses":
        import importlib

        return importlib.import_module("selfsup.losses")
    raise AttributeError(f"module 'selfsup' has no attribute {name!r}")
