"""selfsup: self-supervised learning for computer vision.

The native data path lives in :mod:`selfsup.ops`; the fused contrastive losses in
:mod:`selfsup.losses` (the ``selfsup-kernels`` distribution, imported on first use so that
``import selfsup`` does not pull in torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfsup import ops
from selfsup._native import __version__

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from torch import nn

    from selfsup.data import Source
    from selfsup.run.api import Run

__all__ = ["__version__", "load_backbone", "losses", "ops", "train"]


def train(
    method: str | None = None,
    data: str | Path | Source | npt.NDArray[np.uint8] | None = None,
    out: str | Path | None = None,
    **settings: Any,
) -> Run:
    """Trains a registered method and returns the run: :func:`selfsup.run.api.train`."""
    from selfsup.run.api import train as train_run

    return train_run(method, data, out, **settings)


def load_backbone(checkpoint: str | Path, *, backbone: nn.Module | None = None, device: str = "cpu") -> nn.Module:
    """The trained backbone of a checkpoint: :func:`selfsup.run.restore.load_backbone`."""
    from selfsup.run.restore import load_backbone as load

    return load(checkpoint, backbone=backbone, device=device)


def __getattr__(name: str) -> Any:
    if name == "losses":
        import importlib

        return importlib.import_module("selfsup.losses")
    raise AttributeError(f"module 'selfsup' has no attribute {name!r}")
