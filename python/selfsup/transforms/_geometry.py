"""CenterCrop, RandomCrop, RandomVerticalFlip and RandomErasing (torchvision v2 semantics), run natively."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

from selfsup.transforms._transforms import Step, Transform, _check_p, _size


@dataclass(frozen=True)
class CenterCrop(Transform):
    """The centred ``size`` crop: top-left corner ``round((H − h)/2), round((W − w)/2)`` (ties to
    even); a side shorter than the crop is zero-padded by ``⌊(h − H)/2⌋`` before and the rest
    after, as torchvision. May follow :class:`RandomResizedCrop`/:class:`Resize` and must come
    before every other transform; it fixes the output size, so images of different sizes work.

    Raises:
        ValueError: ``size`` <= 0.
    """

    size: int | tuple[int, int]

    def __post_init__(self) -> None:
        _size(self.size)

    def _steps(self) -> list[Step]:
        h, w = _size(self.size)
        return [("center_crop", None, False, [h, w])]


@dataclass(frozen=True)
class RandomCrop(Transform):
    """A ``size`` crop at a uniform position of the image padded by ``padding`` on every side
    (torchvision's ``RandomCrop(size, padding, padding_mode=...)``; CIFAR's and FixMatch's
    translation by up to ``padding`` pixels). ``padding_mode``: ``"reflect"`` (``−1 → 1``, needs
    ``padding`` smaller than the image sides) or ``"constant"`` (zeros). Must be the first
    transform of a view; fixes the output size. Draws: ``top ~ U{0..H+2p−h}``, then ``left``.
    Parameters: ``top, left`` in the padded image.

    Raises:
        ValueError: ``size`` <= 0, ``padding`` < 0, unknown ``padding_mode``; when run, images
        too small for the crop or the reflection (message names ``images``).
    """

    size: int | tuple[int, int]
    padding: int = 0
    padding_mode: Literal["constant", "reflect"] = "constant"

    def __post_init__(self) -> None:
        _size(self.size)
        p = self.padding
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise ValueError(f"padding: expected a non-negative int, got {p!r}")
        if self.padding_mode not in ("constant", "reflect"):
            raise ValueError(f"padding_mode: expected 'constant' or 'reflect', got {self.padding_mode!r}")

    def _steps(self) -> list[Step]:
        h, w = _size(self.size)
        return [("random_crop", None, False, [h, w, float(self.padding), 1.0 if self.padding_mode == "reflect" else 0.0])]


@dataclass(frozen=True)
class RandomVerticalFlip(Transform):
    """Mirror top–bottom with probability ``p`` (one coin)."""

    p: float = 0.5

    def __post_init__(self) -> None:
        _check_p(self.p)

    def _steps(self) -> list[Step]:
        return [("vertical_flip", float(self.p), False, [])]


EraseFill = Union[float, tuple[float, float, float], Literal["random"]]


@dataclass(frozen=True)
class RandomErasing(Transform):
    """With probability ``p``, erase one box of the output (Zhong et al. 2020, "Random Erasing
    Data Augmentation", arXiv:1708.04896; torchvision v2's sampler).

    Up to ten tries draw an area fraction ``s ~ U[scale]`` and an aspect ratio ``r`` log-uniform
    in ``ratio``; ``h = round(√(s·A·r))``, ``w = round(√(s·A/r))`` for the output's area ``A``. The
    first box with ``h < H`` and ``w < W`` is placed uniformly (top, then left); if none fits,
    nothing is erased. Like torchvision (where it follows ``Normalize``) it acts on the view's
    output, so it must come last, after :class:`Normalize` if there is one. ``value``: a number
    or one per channel, in output units (normalised units after Normalize, grey levels 0..255 on
    uint8 output), or ``"random"``: per-pixel N(0, 1) after Normalize as torchvision; on uint8
    output uniform grey levels (torchvision casts normal draws to uint8 there).

    Raises:
        ValueError: ``p`` outside [0, 1]; ``scale`` not ``0 <= min <= max <= 1``; ``ratio`` not
        ``0 < min <= max``; ``value`` neither a number, three numbers nor ``"random"`` (or not a
        grey level on uint8 output, when the pipeline is built).
    """

    p: float = 0.5
    scale: tuple[float, float] = (0.02, 0.33)
    ratio: tuple[float, float] = (0.3, 3.3)
    value: EraseFill = 0.0

    def __post_init__(self) -> None:
        _check_p(self.p)
        lo, hi = self.scale
        if not (0 <= lo <= hi <= 1):
            raise ValueError(f"scale: expected 0 <= min <= max <= 1, got {self.scale}")
        lo, hi = self.ratio
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"ratio: expected 0 < min <= max, got {self.ratio}")
        self._fill()

    def _fill(self) -> tuple[float, list[float]]:
        v = self.value
        if isinstance(v, str):
            if v != "random":
                raise ValueError(f"value: expected a number, three numbers or 'random', got {v!r}")
            return 1.0, [0.0, 0.0, 0.0]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values = [float(v)] * 3
        elif isinstance(v, (tuple, list)) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v):
            values = [float(x) for x in v]
        else:
            raise ValueError(f"value: expected a number, three numbers or 'random', got {v!r}")
        if not all(math.isfinite(x) for x in values):
            raise ValueError(f"value: expected finite numbers, got {v!r}")
        return 0.0, values

    def _steps(self) -> list[Step]:
        mode, values = self._fill()
        return [("random_erasing", float(self.p), False, [*map(float, self.scale), *map(float, self.ratio), mode, *values])]
