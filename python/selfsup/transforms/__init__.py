"""Native multi-view image augmentation (SimCLR/BYOL/MoCo v2 recipes) with torchvision v2 semantics."""

from selfsup.transforms._transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Augmented,
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
    Resize,
    Transform,
)
from selfsup.transforms.recipes import blur_kernel, byol, mocov2, simclr

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Augmented",
    "ColorJitter",
    "Compose",
    "GaussianBlur",
    "MultiView",
    "Normalize",
    "RandomApply",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomSolarize",
    "Resize",
    "Transform",
    "blur_kernel",
    "byol",
    "mocov2",
    "simclr",
]
