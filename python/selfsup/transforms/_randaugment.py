"""RandAugment and Cutout (FixMatch, UDA) with torchvision v2's semantics per operation, run natively."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from selfsup.transforms._transforms import Step, Transform, _check_p

RANDAUGMENT_OPS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
)
"""The fourteen operations in torchvision's order: the ``op`` column of the parameters indexes it."""

Fill = Union[int, tuple[int, int, int]]


def _int(value: object, name: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _grey(value: object, name: str) -> list[float]:
    """A grey level or one per channel, each an integer in 0..255."""
    values: list[object] = list(value) if isinstance(value, (tuple, list)) else [value] * 3
    levels = [int(v) for v in values if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255]
    if len(values) != 3 or len(levels) != 3:
        raise ValueError(f"{name}: expected a grey level 0..255 or three of them, got {value!r}")
    return [float(v) for v in levels]


@dataclass(frozen=True)
class RandAugment(Transform):
    """RandAugment (Cubuk et al. 2020, arXiv:1909.13719) with torchvision v2's operations and
    magnitude tables, optionally followed by Cutout (FixMatch, Sohn et al. 2020, arXiv:2001.07685).

    Per image, ``num_ops`` operations are drawn uniformly with replacement from
    :data:`RANDAUGMENT_OPS`; each uses magnitude bin ``magnitude`` of ``num_magnitude_bins``
    (torchvision's ``RandAugment``) or, with ``magnitude=None``, a bin drawn uniformly per
    operation (FixMatch's RandAugmentMC, UDA); signed operations get a random sign. Magnitudes at
    bin ``b`` of ``n`` (``t = b/(n−1)``; geometric ops use nearest interpolation and ``fill``):

    ============  ==========================================  ======
    op            magnitude                                   signed
    ============  ==========================================  ======
    ShearX/Y      ``0.3·t``, shear angle ``degrees(atan m)``  yes
    TranslateX/Y  ``150/331·W·t`` (``H``), ``int(m)`` pixels  yes
    Rotate        ``30·t`` degrees                            yes
    Brightness,   ``0.9·t``, factor ``1 + m``                 yes
    Color,
    Contrast,
    Sharpness
    Posterize     ``round(8 − 4t)`` bits                      no
    Solarize      threshold ``255·(1 − t)``                   no
    Identity, AutoContrast, Equalize: no magnitude
    ============  ==========================================  ======

    ``cutout=f`` adds a :class:`Cutout` of side up to ``f·min(H, W)`` filled with ``cutout_fill``
    (FixMatch: 0.5, grey 127). Draws, per op: the op, the bin (random magnitude only), one
    uniform for the sign (signed ops with a magnitude); then Cutout's. The parameters hold
    ``op{k}, bin{k}, sign{k}, magnitude{k}`` per op, ``magnitude`` being the signed value
    torchvision's ``_apply_image_or_video_transform`` receives (the op and magnitude are what a
    replay applies).

    Raises:
        ValueError: ``num_ops`` < 0, ``num_magnitude_bins`` < 2, ``magnitude`` outside
        ``0..num_magnitude_bins − 1``, ``fill``/``cutout_fill`` not grey levels, ``cutout``
        outside (0, 1].
    """

    num_ops: int = 2
    magnitude: int | None = 9
    num_magnitude_bins: int = 31
    fill: Fill = 0
    cutout: float | None = None
    cutout_fill: Fill = 127

    def __post_init__(self) -> None:
        _int(self.num_ops, "num_ops")
        bins = _int(self.num_magnitude_bins, "num_magnitude_bins", low=2)
        if self.magnitude is not None:
            m = _int(self.magnitude, "magnitude")
            if m >= bins:
                raise ValueError(f"magnitude: expected a bin in 0..{bins - 1} (or None for a random bin per op), got {m}")
        _grey(self.fill, "fill")
        if self.cutout is not None:
            Cutout(self.cutout, self.cutout_fill)

    def _steps(self) -> list[Step]:
        m = math.nan if self.magnitude is None else float(self.magnitude)
        args = [float(self.num_ops), m, float(self.num_magnitude_bins), *_grey(self.fill, "fill")]
        steps: list[Step] = [("rand_augment", None, False, args)]
        if self.cutout is not None:
            steps.extend(Cutout(self.cutout, self.cutout_fill)._steps())
        return steps


@dataclass(frozen=True)
class Cutout(Transform):
    """Cutout (DeVries & Taylor 2017, arXiv:1708.04552) as FixMatch's ``CutoutAbs``: with
    probability ``p``, a square of side ``s = v·min(H, W)``, ``v ~ U(0, max_fraction]``, centred at
    ``(y, x) ~ U[0, H) × U[0, W)``, rows ``int(max(0, y − s/2))`` up to ``int(min(H, top + s))``
    (excluded; likewise columns), clipped at the borders and filled with ``fill``. Draws: ``v``,
    ``y``, ``x``. Parameters: ``top, left, height, width``.

    Raises:
        ValueError: ``max_fraction`` outside (0, 1], ``fill`` not grey levels, ``p`` outside [0, 1].
    """

    max_fraction: float = 0.5
    fill: Fill = 127
    p: float = 1.0

    def __post_init__(self) -> None:
        f = self.max_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < float(f) <= 1.0:
            raise ValueError(f"cutout: expected a maximal side fraction in (0, 1], got {f!r}")
        _grey(self.fill, "fill")
        _check_p(self.p)

    def _steps(self) -> list[Step]:
        p = None if self.p == 1.0 else float(self.p)
        return [("cutout", p, False, [float(self.max_fraction), *_grey(self.fill, "fill")])]
