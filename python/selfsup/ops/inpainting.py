"""Inpainting masks and image corruptions for the context-encoder and spot-the-artifact tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from selfsup import _native
from selfsup.ops._common import as_array, as_int64, check_epoch, pair, resolve_seed

U8Array = npt.NDArray[np.uint8]
IMAGENET_MEAN_COLOUR = (124, 116, 104)
CORRUPTIONS = ("none", "patch swap", "noise", "blur", "block artifacts", "colour shift")
"""Names of the corruption labels 0–5 of :func:`corrupt`."""


def inpaint_masks(
    n: int,
    size: int | tuple[int, int],
    kind: Literal["center", "blocks", "region"] = "center",
    *,
    fraction: float = 0.25,
    blocks: int = 8,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
) -> U8Array:
    """Masks ``(n, H, W)`` uint8 (1 = missing) as in Pathak et al. 2016, "Context Encoders"
    (arXiv:1604.07379, §3.3).

    ``center``: a centred rectangle of ``fraction`` of the area (¼: half the side, the paper's
    central region). ``blocks``: up to ``blocks`` random rectangles with sides of ⅛–¼ of the image,
    until ``fraction`` is covered. ``region``: a smooth random shape covering ``fraction`` (a
    thresholded, bilinearly upsampled 6×6 noise field; the paper used PASCAL segmentation masks,
    which cannot ship with the library).

    Raises:
        ValueError: ``n`` < 1, a non-positive size, ``fraction`` outside (0, 1], unknown kind.

    Example:
        >>> import selfsup.ops as ops
        >>> ops.inpaint_masks(2, 64).sum(axis=(1, 2)).tolist()
        [1024, 1024]
    """
    h, w = pair(size, "size")
    return _native.inpaint_masks(n, (h, w), kind, fraction, blocks, resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices"))


def apply_mask(
    images: Any,
    masks: Any,
    fill: int | Sequence[int] | Literal["noise"] = IMAGENET_MEAN_COLOUR,
    *,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
) -> U8Array:
    """Images with the masked pixels replaced: by a colour (an int, or one value per channel;
    default the ImageNet mean colour, as the paper's training code), or ``"noise"`` (uniform).

    Raises:
        ValueError: masks not ``(N, H, W)`` uint8 like the images, fill values outside 0–255.
    """
    images = as_array(images)
    channels = getattr(images, "shape", (0,))[-1]
    noise = isinstance(fill, str)
    if noise and fill != "noise":
        raise ValueError(f"fill: expected a colour or 'noise', got {fill!r}")
    if isinstance(fill, (int, np.integer)):
        values = [int(fill)] * channels
    elif noise:
        values = []
    else:
        values = [int(v) for v in fill]
        if channels == 1 and len(values) == 3:
            values = [round(sum(values) / 3)]
    return _native.apply_mask(
        images, as_array(masks), values, noise, resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices")
    )


class Corrupted(NamedTuple):
    images: U8Array
    """``(N, H, W, C)`` the corrupted images."""
    labels: npt.NDArray[np.int64]
    """``(N,)`` which corruption, 0–5 (see :data:`CORRUPTIONS`)."""
    masks: U8Array
    """``(N, H, W)`` 1 where pixels were changed."""
    regions: npt.NDArray[np.int64]
    """``(N, 2, 2)`` top-left ``(y, x)`` of the corrupted square and of the swap partner (−1 if none)."""


def corrupt(
    images: Any,
    kinds: Sequence[int] = (0, 1, 2, 3, 4, 5),
    size: float = 0.25,
    *,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
    labels: Any = None,
) -> Corrupted:
    """Local corruptions for "spot the artifacts" (Jenni & Favaro 2018, arXiv:1806.05024), in image
    space: a square of ``size`` × the shorter side at a random position gets one of: 1 patch swap
    with a disjoint square, 2 Gaussian noise (σ = 25), 3 a 5×5 box blur, 4 8×8 block averaging,
    5 a per-channel colour shift of ±20–60; 0 leaves the image as it is. The label is drawn
    uniformly from ``kinds`` (or given).

    Raises:
        ValueError: kinds outside 0–5, ``size`` outside (0, 0.5], labels out of range, bad images.

    Example:
        >>> import numpy as np, selfsup.ops as ops
        >>> out = ops.corrupt(np.zeros((4, 32, 32, 3), np.uint8), kinds=[2], seed=0)
        >>> out.labels.tolist(), int(out.masks[0].sum())
        ([2, 2, 2, 2], 64)
    """
    out = _native.corrupt(
        as_array(images), [int(k) for k in kinds], size, resolve_seed(seed), check_epoch(epoch),
        as_int64(indices, "indices"), as_int64(labels, "labels"),
    )
    return Corrupted(*out)
