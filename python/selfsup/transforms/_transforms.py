"""Transform descriptions and the native pipelines that run them.

Each transform is a small frozen dataclass that validates its arguments and describes itself as
native steps; :class:`Compose` and :class:`MultiView` hand those steps to ``selfsup._native`` once
and then run a whole batch, every view, in one GIL-free call on selfsup's thread pool.

Semantics follow torchvision v2 on uint8 tensors (the reference the tests compare against with
injected parameters: at most 1 grey level apart). Known differences: the antialiased resize uses
fast_image_resize's fixed-point convolution (torchvision's uint8 kernel rounds slightly
differently); the blur is separable in float32 (torchvision: one 2-D float32 convolution); images
smaller than the blur padding are reflected repeatedly (torchvision raises).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

import numpy as np
import numpy.typing as npt

from selfsup import _native
from selfsup.ops._common import as_array, as_int64, check_epoch, resolve_seed

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_NAN = float("nan")

Step = tuple[str, Union[float, None], bool, list[float]]


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    return float(p)


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else tuple(size)  # type: ignore[arg-type]
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0 for s in pair):
        raise ValueError(f"size: expected a positive int or a pair of positive ints, got {size!r}")
    return int(pair[0]), int(pair[1])


def _range(value: float | tuple[float, float], name: str, *, centre: float, bound: float | None = None) -> tuple[float, float] | None:
    """torchvision's ColorJitter argument: ``v`` means ``[max(0, c − v), c + v]``; a pair is taken as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative value, got {value}")
        if value == 0:
            return None
        lo, hi = centre - float(value), centre + float(value)
        if bound is None:
            lo = max(0.0, lo)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise TypeError(f"{name}: expected a number or a pair of numbers, got {value!r}")
    floor = -bound if bound is not None else 0.0
    ceil = bound if bound is not None else math.inf
    if not (floor <= lo <= hi <= ceil):
        raise ValueError(f"{name}: expected {floor} <= min <= max <= {ceil}, got ({lo}, {hi})")
    return lo, hi


class Transform:
    """Base class: a transform describes itself as native steps."""

    def _steps(self) -> list[Step]:
        raise NotImplementedError


@dataclass(frozen=True)
class RandomResizedCrop(Transform):
    """A random box of area fraction ``s ~ U[scale]`` and log-uniform aspect ratio in ``ratio``
    (10 tries, then the centred box clamped to ``ratio``), resized to ``size`` with an antialiased
    bilinear filter (Szegedy et al. 2015; torchvision semantics). Draws per try: scale, log-ratio,
    then top and left for the first box that fits. Must be the first transform of a view.

    Raises:
        ValueError: ``size`` <= 0, ``scale``/``ratio`` not ``0 < min <= max``.
    """

    size: int | tuple[int, int]
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        _size(self.size)
        for name, (lo, hi) in (("scale", self.scale), ("ratio", self.ratio)):
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ValueError(f"{name}: expected 0 < min <= max, got ({lo}, {hi})")

    def _steps(self) -> list[Step]:
        h, w = _size(self.size)
        return [("random_resized_crop", None, False, [h, w, *map(float, self.scale), *map(float, self.ratio)])]


@dataclass(frozen=True)
class Resize(Transform):
    """The whole image resized to ``size`` (antialiased bilinear). Must come first."""

    size: int | tuple[int, int]

    def __post_init__(self) -> None:
        _size(self.size)

    def _steps(self) -> list[Step]:
        h, w = _size(self.size)
        return [("resize", None, False, [h, w])]


@dataclass(frozen=True)
class RandomHorizontalFlip(Transform):
    """Mirror left–right with probability ``p`` (one coin)."""

    p: float = 0.5

    def __post_init__(self) -> None:
        _check_p(self.p)

    def _steps(self) -> list[Step]:
        return [("horizontal_flip", float(self.p), False, [])]


@dataclass(frozen=True)
class ColorJitter(Transform):
    """Brightness, contrast, saturation and hue in a random order (torchvision v2 on uint8).

    ``brightness=b`` draws ``f ~ U[max(0, 1−b), 1+b]`` (likewise contrast, saturation); ``hue=h``
    draws ``δ ~ U[−h, h]`` with ``h <= 0.5``; pairs give the range directly; 0 disables an
    operation. Brightness: ``x·f``; contrast: ``x·f + m(1−f)`` with ``m`` the scalar mean of the
    floored grayscale; saturation: the same toward the per-pixel floored grayscale; hue: rotation
    in HSV. Each operation truncates to uint8. Draws: a permutation (3 draws), then one factor per
    enabled operation in the order b, c, s, h.

    Raises:
        ValueError: negative values, ``hue`` outside [−0.5, 0.5].
    """

    brightness: float | tuple[float, float] = 0.0
    contrast: float | tuple[float, float] = 0.0
    saturation: float | tuple[float, float] = 0.0
    hue: float | tuple[float, float] = 0.0

    def __post_init__(self) -> None:
        self._ranges()

    def _ranges(self) -> list[tuple[float, float] | None]:
        return [
            _range(self.brightness, "brightness", centre=1.0),
            _range(self.contrast, "contrast", centre=1.0),
            _range(self.saturation, "saturation", centre=1.0),
            _range(self.hue, "hue", centre=0.0, bound=0.5),
        ]

    def _steps(self) -> list[Step]:
        args: list[float] = []
        for r in self._ranges():
            args.extend(r if r is not None else (_NAN, _NAN))
        return [("color_jitter", None, False, args)]


@dataclass(frozen=True)
class RandomGrayscale(Transform):
    """With probability ``p``: ``trunc(0.2989 R + 0.587 G + 0.114 B)`` in all three channels."""

    p: float = 0.1

    def __post_init__(self) -> None:
        _check_p(self.p)

    def _steps(self) -> list[Step]:
        return [("grayscale", float(self.p), False, [])]


@dataclass(frozen=True)
class GaussianBlur(Transform):
    """Separable Gaussian blur, ``σ ~ U[sigma]`` per image (one draw), ``kernel_size`` odd taps,
    reflect padding, rounded to uint8 (torchvision v2). SimCLR uses 10% of the image side.

    Raises:
        ValueError: even or non-positive ``kernel_size``; ``sigma`` not ``0 < min <= max``.
    """

    kernel_size: int
    sigma: float | tuple[float, float] = (0.1, 2.0)

    def __post_init__(self) -> None:
        k = self.kernel_size
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0 or k % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive int, got {k!r}")
        lo, hi = self._sigma()
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"sigma: expected 0 < min <= max, got ({lo}, {hi})")

    def _sigma(self) -> tuple[float, float]:
        s = self.sigma
        return (float(s), float(s)) if isinstance(s, (int, float)) else (float(s[0]), float(s[1]))

    def _steps(self) -> list[Step]:
        return [("gaussian_blur", None, False, [int(self.kernel_size), *self._sigma()])]


@dataclass(frozen=True)
class RandomSolarize(Transform):
    """With probability ``p``: ``x >= threshold → 255 − x`` (uint8 scale; BYOL's 0.5 is 128)."""

    threshold: float = 128.0
    p: float = 0.5

    def __post_init__(self) -> None:
        _check_p(self.p)
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold: expected a finite number, got {self.threshold}")

    def _steps(self) -> list[Step]:
        return [("solarize", float(self.p), False, [float(self.threshold)])]


@dataclass(frozen=True)
class RandomApply(Transform):
    """Apply ``transforms`` together with probability ``p`` (one coin for all of them)."""

    transforms: Sequence[Transform]
    p: float = 0.5

    def __post_init__(self) -> None:
        _check_p(self.p)
        if not self.transforms:
            raise ValueError("transforms: expected at least one transform")

    def _steps(self) -> list[Step]:
        steps: list[Step] = []
        for t in self.transforms:
            for name, p, _, args in t._steps():
                if name in ("random_resized_crop", "random_crop", "resize", "center_crop", "normalize"):
                    raise ValueError(f"transforms: {type(t).__name__} cannot be wrapped in RandomApply")
                # an inner probability multiplies only when the inner step draws its own coin
                if p is not None and p != 1.0:
                    raise ValueError("transforms: RandomApply takes transforms without their own probability (use p=1)")
                steps.append((name, float(self.p), bool(steps), args))
        return steps


@dataclass(frozen=True)
class Normalize(Transform):
    """``(x/255 − mean)/std`` per channel, float32 CHW output. Must be last (only RandomErasing,
    which acts on the output, may follow); without it a view returns uint8 CHW."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean, std: expected three values each")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"std: expected positive values, got {self.std}")

    def _steps(self) -> list[Step]:
        return [("normalize", None, False, [*map(float, self.mean), *map(float, self.std)])]


class Augmented(NamedTuple):
    views: list[Any]
    """One ``torch.Tensor`` per view, ``(N, 3, H, W)`` float32 (normalised) or uint8."""
    params: list[npt.NDArray[np.float64]]
    """One ``(N, P)`` float64 array per view: the parameters used (see ``param_names``)."""


def _images(images: Any) -> Any:
    if isinstance(images, (list, tuple)):
        return [np.ascontiguousarray(as_array(x)) if hasattr(x, "numpy") else as_array(x) for x in images]
    return as_array(images)


@dataclass(frozen=True)
class MultiView:
    """Several differently parametrised views of every image, computed in one native call.

    Args:
        views: one :class:`Compose` (or list of transforms) per view.

    Calling it with ``images`` — uint8 ``(N, H, W, 3)`` (numpy or torch) or a list of ``(H, W, 3)``
    arrays of different sizes when every view fixes its size (a RandomResizedCrop, Resize or
    CenterCrop) — returns one tensor per view; views may have different sizes (multi-crop).
    View ``v`` of sample ``i`` draws from the stream ``(seed ⊕ v·φ, epoch, indices[i])``: the
    same bytes whatever the thread count or batch layout.

    Raises:
        TypeError: images not uint8; ValueError: wrong shape, empty batch, not 3 channels, invalid
        ``params``.

    Example:
        >>> import numpy as np, selfsup.transforms as T
        >>> views = T.simclr(size=32)(np.zeros((4, 40, 40, 3), np.uint8), seed=0)
        >>> [tuple(v.shape) for v in views]
        [(4, 3, 32, 32), (4, 3, 32, 32)]
    """

    views: Sequence[Compose | Sequence[Transform]]
    _native: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        composes = [v if isinstance(v, Compose) else Compose(list(v)) for v in self.views]
        if not composes:
            raise ValueError("views: expected at least one view")
        object.__setattr__(self, "views", composes)
        object.__setattr__(self, "_native", _native.AugmentPipeline([c._spec() for c in composes]))

    def param_names(self, view: int = 0) -> list[str]:
        """Column names of the parameter array of ``view``."""
        return list(self._native.param_names(view))

    def run(
        self, images: Any, *, seed: int | None = None, epoch: int = 0, indices: Any = None, params: Sequence[Any] | None = None
    ) -> Augmented:
        """All views and the parameters used. ``params`` (one ``(N, P)`` array or ``None`` per
        view) replays or injects parameters instead of drawing them."""
        import torch

        if params is not None:
            params = [None if p is None else np.ascontiguousarray(as_array(p), dtype=np.float64) for p in params]
        outs, used = self._native(
            _images(images), resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices"), params
        )
        return Augmented([torch.from_numpy(o) for o in outs], list(used))

    def __call__(self, images: Any, *, seed: int | None = None, epoch: int = 0, indices: Any = None) -> list[Any]:
        return self.run(images, seed=seed, epoch=epoch, indices=indices).views


class Compose:
    """A one-view pipeline run entirely in the native extension (one call per batch).

    Args:
        transforms: applied in order; a resize (:class:`RandomResizedCrop`/:class:`Resize`) may
            only come first and :class:`Normalize` only last.

    Returns (when called): a ``torch.Tensor`` ``(N, 3, H, W)``, float32 if the last transform is
    :class:`Normalize`, else uint8.

    Raises:
        ValueError: invalid order of transforms (message names ``transforms``).

    Example:
        >>> import numpy as np, selfsup.transforms as T
        >>> t = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.Normalize()])
        >>> t(np.zeros((2, 16, 16, 3), np.uint8), seed=0).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"transforms: expected selfsup.transforms objects, got {type(t).__name__}")
        self._pipeline = MultiView([self])

    def _spec(self) -> list[Step]:
        return [s for t in self.transforms for s in t._steps()]

    def param_names(self) -> list[str]:
        return self._pipeline.param_names(0)

    def run(self, images: Any, *, seed: int | None = None, epoch: int = 0, indices: Any = None, params: Any = None) -> Augmented:
        """The output and the parameters used; ``params`` ``(N, P)`` replays/injects them."""
        return self._pipeline.run(images, seed=seed, epoch=epoch, indices=indices, params=None if params is None else [params])

    def __call__(self, images: Any, *, seed: int | None = None, epoch: int = 0, indices: Any = None) -> Any:
        return self.run(images, seed=seed, epoch=epoch, indices=indices).views[0]

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"
