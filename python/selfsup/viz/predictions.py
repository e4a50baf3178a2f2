"""``selfsup show``: what a trained method predicts, as one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import torch

from selfsup.viz.canvas import render

if TYPE_CHECKING:
    from selfsup.methods.base import Method


def show_predictions(method: Method, images: npt.NDArray[np.uint8], out: Path, seed: int = 0) -> Path:
    """Renders ``method.show(images)`` into ``out``. Raises ``ValueError`` when the method has no visual."""
    method.eval()
    with torch.no_grad():
        rows = method.show(images, seed=seed)
    if not rows:
        raise ValueError(f"method: {method.name!r} has no visual of its predictions")
    return render(rows, out)
