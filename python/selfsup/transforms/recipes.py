"""Augmentation recipes of joint-embedding methods, as two-view :class:`MultiView` pipelines."""

from __future__ import annotations

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
)


def blur_kernel(size: int) -> int:
    """SimCLR's blur kernel: 10% of the image side, made odd (23 for 224)."""
    k = max(1, int(0.1 * size))
    return k if k % 2 == 1 else k + 1


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
        steps = [
            RandomResizedCrop(size, scale=(0.08, 1.0)),
            RandomHorizontalFlip(0.5),
            RandomApply([ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            RandomGrayscale(0.2),
            *([RandomApply([GaussianBlur(blur_kernel(size), (0.1, 2.0))], p=blur_p)] if blur else []),
        ]
        if solarize_p > 0:
            steps.append(RandomSolarize(128, p=solarize_p))
        return Compose([*steps, *_normalize(normalize)])

    return MultiView([view(1.0, 0.0), view(0.1, 0.2)])


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
