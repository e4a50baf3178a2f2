"""The augmentations of joint-embedding methods, as :class:`MultiView` pipelines: one view
(InstDisc), two views (SimCLR, BYOL, MoCo v1 and v2) or multi-crop (DINO, SwAV: global and local
views of different sizes); FixMatch's weak and strong views (RandAugment + Cutout); the views of
clips (:func:`clip`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from selfsup.transforms._transforms import (
    ColorJitter,
    Compose,
    GaussianBlur,
    MultiView,
    Normalize,
    RandomApply,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
    Transform,
)
from selfsup.transforms._geometry import RandomCrop
from selfsup.transforms._randaugment import RandAugment


def blur_kernel(size: int) -> int:
    """SimCLR's blur kernel: 10% of the image side, made odd (23 for 224)."""
    k = max(1, int(0.1 * size))
    return k if k % 2 == 1 else k + 1


def pil_blur_kernel(sigma_max: float = 2.0) -> int:
    """Taps of the Gaussian standing in for Pillow's ``GaussianBlur(radius=σ)`` (the blur of the
    DINO and SwAV code): ``2·⌈3σmax⌉ + 1``, ±3σ at the largest σ (13 for σ ≤ 2)."""
    return 2 * math.ceil(3 * sigma_max) + 1


def simclr(
    size: int = 224,
    *,
    strength: float = 1.0,
    normalize: bool | Normalize = True,
    blur: bool = True,
    views: int = 2,
) -> MultiView:
    """SimCLR (Chen et al. 2020, arXiv:2002.05709, Appendix A): RandomResizedCrop (0.08, 1),
    horizontal flip, ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) with p = 0.8 (s = 0.5 gives the usual
    0.4/0.1), grayscale p = 0.2, Gaussian blur (10% kernel, σ ∈ [0.1, 2]) p = 0.5; two views.

    ``blur=False`` is the paper's CIFAR-10 setting (Appendix B.9: no blur for 32×32 images);
    ``views`` > 2 gives the multi-view variant; ``normalize`` may be a :class:`Normalize` with
    other statistics."""
    if views < 1:
        raise ValueError(f"views: expected at least 1, got {views}")
    s = 0.5 * strength
    view = Compose(
        [
            RandomResizedCrop(size, scale=(0.08, 1.0)),
            RandomHorizontalFlip(0.5),
            RandomApply([ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
            RandomGrayscale(0.2),
            *([RandomApply([GaussianBlur(blur_kernel(size), (0.1, 2.0))], p=0.5)] if blur else []),
            *_normalize(normalize),
        ]
    )
    return MultiView([view] * views)


def _normalize(normalize: bool | Normalize) -> list[Normalize]:
    if isinstance(normalize, Normalize):
        return [normalize]
    return [Normalize()] if normalize else []


def byol(size: int = 224, *, normalize: bool | Normalize = True, blur: bool = True) -> MultiView:
    """BYOL (Grill et al. 2020, arXiv:2006.07733, Table 6): asymmetric views — blur p = 1.0 / 0.1,
    solarize p = 0.0 / 0.2; ColorJitter(0.4, 0.4, 0.2, 0.1) p = 0.8, grayscale p = 0.2.
    ``blur=False`` drops the blur (small images, as :func:`simclr`)."""

    def view(blur_p: float, solarize_p: float) -> Compose:
        return _byol_view(size, (0.08, 1.0), blur_kernel(size) if blur else 0, blur_p, solarize_p, normalize)

    return MultiView([view(1.0, 0.0), view(0.1, 0.2)])


def _byol_view(
    size: int, scale: tuple[float, float], blur_taps: int, blur_p: float, solarize_p: float, normalize: bool | Normalize
) -> Compose:
    """One view of the BYOL family (BYOL, DINO): RandomResizedCrop ``scale``, flip, ColorJitter(0.4,
    0.4, 0.2, 0.1) p = 0.8, grayscale p = 0.2, blur σ ∈ [0.1, 2] with ``blur_taps`` (0: none) at
    ``blur_p``, solarize(128) at ``solarize_p`` (left out at 0)."""
    steps: list[Transform] = [
        RandomResizedCrop(size, scale=scale),
        RandomHorizontalFlip(0.5),
        RandomApply([ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        RandomGrayscale(0.2),
    ]
    if blur_taps:
        steps.append(RandomApply([GaussianBlur(blur_taps, (0.1, 2.0))], p=blur_p))
    if solarize_p > 0:
        steps.append(RandomSolarize(128, p=solarize_p))
    return Compose([*steps, *_normalize(normalize)])


def mocov1(size: int = 224, *, normalize: bool | Normalize = True) -> MultiView:
    """MoCo v1 (He et al. 2019, arXiv:1911.05722, §4 and the official code's augmentation):
    RandomResizedCrop (0.2, 1), grayscale p = 0.2, then ColorJitter(0.4, 0.4, 0.4, 0.4) on every
    image, flip; two views; no blur."""
    view = Compose(
        [
            RandomResizedCrop(size, scale=(0.2, 1.0)),
            RandomGrayscale(0.2),
            ColorJitter(0.4, 0.4, 0.4, 0.4),
            RandomHorizontalFlip(0.5),
            *_normalize(normalize),
        ]
    )
    return MultiView([view, view])


def mocov2(size: int = 224, *, normalize: bool | Normalize = True, blur: bool = True) -> MultiView:
    """MoCo v2 (Chen et al. 2020, arXiv:2003.04297): RandomResizedCrop (0.2, 1), ColorJitter(0.4,
    0.4, 0.4, 0.1) p = 0.8, grayscale p = 0.2, blur σ ∈ [0.1, 2] p = 0.5, flip; two views.
    ``blur=False`` drops the blur (small images, as :func:`simclr`)."""
    view = Compose(
        [
            RandomResizedCrop(size, scale=(0.2, 1.0)),
            RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            RandomGrayscale(0.2),
            *([RandomApply([GaussianBlur(blur_kernel(size), (0.1, 2.0))], p=0.5)] if blur else []),
            RandomHorizontalFlip(0.5),
            *_normalize(normalize),
        ]
    )
    return MultiView([view, view])


def clip_view(
    size: int, *, scale: tuple[float, float] = (0.6, 1.0), jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.05),
    normalize: bool | Normalize = True, blur: bool = False,
) -> Compose:
    """One view of a clip's frames for the temporal methods: RandomResizedCrop ``scale``,
    ColorJitter(``jitter``) p = 0.8, blur σ ∈ [0.1, 2] p = 0.5 when ``blur``. No flip: a mirrored
    clip moves the other way, and the crop keeps most of the frame, so that frames cut at other
    times still show the moving object."""
    return Compose([
        RandomResizedCrop(size, scale=scale),
        RandomApply([ColorJitter(*jitter)], p=0.8),
        *([RandomApply([GaussianBlur(blur_kernel(size), (0.1, 2.0))], p=0.5)] if blur else []),
        *_normalize(normalize),
    ])


def clip(size: int = 112, *, normalize: bool | Normalize = True, blur: bool = False) -> MultiView:
    """Two views of :func:`clip_view` (the temporal methods' augmentation), for clip-level
    contrast (ρBYOL, ρMoCo, ρSimCLR with ``augmentation="clip"``)."""
    view = clip_view(size, normalize=normalize, blur=blur)
    return MultiView([view, view])


def instdisc(size: int = 224, *, normalize: bool | Normalize = True, views: int = 1) -> MultiView:
    """InstDisc (Wu et al. 2018, arXiv:1805.01978; the official code, also MoCo v1's augmentation):
    RandomResizedCrop (0.2, 1), grayscale p = 0.2, ColorJitter(0.4, 0.4, 0.4, 0.4) always, flip;
    one view per image (``views`` > 1 repeats it)."""
    _check_count(views, "views", 1)
    view = Compose(
        [
            RandomResizedCrop(size, scale=(0.2, 1.0)),
            RandomGrayscale(0.2),
            ColorJitter(0.4, 0.4, 0.4, 0.4),
            RandomHorizontalFlip(0.5),
            *_normalize(normalize),
        ]
    )
    return MultiView([view] * views)


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def dino(
    global_size: int = 224,
    local_size: int = 96,
    n_local: int = 6,
    *,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    normalize: bool | Normalize = True,
    blur: bool = True,
) -> MultiView:
    """DINO multi-crop (Caron et al. 2021, arXiv:2104.14294, ``DataAugmentationDINO`` of the
    official code): two global views ``global_size`` with RandomResizedCrop ``global_scale`` and
    ``n_local`` local views ``local_size`` with ``local_scale``; each: flip p = 0.5,
    ColorJitter(0.4, 0.4, 0.2, 0.1) p = 0.8, grayscale p = 0.2; then asymmetric blur/solarize —
    global view 1: blur p = 1.0; global view 2: blur p = 0.1, solarize(128) p = 0.2; local views:
    blur p = 0.5. Blur σ ∈ [0.1, 2] with a :func:`pil_blur_kernel` Gaussian (the code uses
    Pillow's blur; its crops use bicubic resizing, ours bilinear). Returns ``2 + n_local`` views:
    ``(N, 3, global_size, global_size)`` twice, then ``(N, 3, local_size, local_size)``.
    ``blur=False`` drops the blur (small images, as :func:`simclr`).

    Raises:
        ValueError: non-positive sizes, ``n_local`` < 0, invalid scales.
    """
    _check_count(n_local, "n_local", 0)

    def view(size: int, scale: tuple[float, float], blur_p: float, solarize_p: float) -> Compose:
        return _byol_view(size, scale, pil_blur_kernel() if blur else 0, blur_p, solarize_p, normalize)

    local = view(local_size, local_scale, 0.5, 0.0)
    return MultiView([view(global_size, global_scale, 1.0, 0.0), view(global_size, global_scale, 0.1, 0.2), *[local] * n_local])


def swav(
    size_crops: Sequence[int] = (224, 96),
    n_crops: Sequence[int] = (2, 6),
    min_scale_crops: Sequence[float] = (0.14, 0.05),
    max_scale_crops: Sequence[float] = (1.0, 0.14),
    *,
    normalize: bool | Normalize = True,
    blur: bool = True,
) -> MultiView:
    """SwAV multi-crop (Caron et al. 2020, arXiv:2006.09882, ``MultiCropDataset`` of the official
    code, defaults of ``main_swav.py``): for each group ``k``, ``n_crops[k]`` views of size
    ``size_crops[k]`` with RandomResizedCrop scale ``(min_scale_crops[k], max_scale_crops[k])``,
    flip p = 0.5, ColorJitter(0.8, 0.8, 0.8, 0.2) p = 0.8, grayscale p = 0.2, blur σ ∈ [0.1, 2]
    p = 0.5 (:func:`pil_blur_kernel` taps; the code uses Pillow's blur). Views come group by group.
    ``blur=False`` drops the blur (small images, as :func:`simclr`).

    Raises:
        ValueError: sequences of different lengths, counts < 1, invalid sizes or scales.
    """
    lengths = {len(size_crops), len(n_crops), len(min_scale_crops), len(max_scale_crops)}
    if len(lengths) != 1 or not size_crops:
        raise ValueError("size_crops, n_crops, min_scale_crops, max_scale_crops: expected non-empty sequences of one length")
    views: list[Compose] = []
    for size, count, lo, hi in zip(size_crops, n_crops, min_scale_crops, max_scale_crops):
        _check_count(count, "n_crops", 1)
        view = Compose(
            [
                RandomResizedCrop(size, scale=(float(lo), float(hi))),
                RandomHorizontalFlip(0.5),
                RandomApply([ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
                RandomGrayscale(0.2),
                *([RandomApply([GaussianBlur(pil_blur_kernel(), (0.1, 2.0))], p=0.5)] if blur else []),
                *_normalize(normalize),
            ]
        )
        views.extend([view] * int(count))
    return MultiView(views)


def fixmatch(
    size: int = 32,
    *,
    normalize: bool | Normalize = True,
    num_ops: int = 2,
    cutout: float | None = 0.5,
    translate: float = 0.125,
    flip: bool = True,
) -> MultiView:
    """FixMatch (Sohn et al. 2020, arXiv:2001.07685, Appendix D): a weak and a strong view of
    every (unlabelled) image, ``size`` × ``size`` inputs (CIFAR: 32).

    Weak: translation by up to ``translate``·``size`` pixels (RandomCrop with reflect padding, as
    the reference code's ``RandomCrop(32, padding=4, padding_mode="reflect")``) and a horizontal
    flip. The crop comes first here (geometry leads a view); since the crop offset is uniform and
    symmetric, flip-then-crop and crop-then-flip give the same distribution. Strong: the weak
    view followed by :class:`RandAugment` with ``num_ops`` operations at a random magnitude each
    and Cutout of side up to ``cutout``·``size`` filled with grey 127 (``cutout=None``: none).

    The operations are torchvision's RandAugment set and tables; the reference code's
    RandAugmentMC differs in details (each op applied with probability 0.5, magnitudes 1..9 of
    10, its own op list). ``normalize`` may be a :class:`Normalize` with CIFAR statistics;
    ``flip=False`` leaves the flip out (the paper's SVHN protocol: digits do not survive a flip)."""
    pad = int(size * translate)
    weak: list[Transform] = [RandomCrop(size, padding=pad, padding_mode="reflect"), *([RandomHorizontalFlip(0.5)] if flip else [])]
    strong = [*weak, RandAugment(num_ops=num_ops, magnitude=None, cutout=cutout)]
    return MultiView([Compose([*weak, *_normalize(normalize)]), Compose([*strong, *_normalize(normalize)])])
