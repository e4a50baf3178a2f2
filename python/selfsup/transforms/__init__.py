"""Native multi-view image augmentation (SimCLR/BYOL/MoCo v2/DINO/SwAV recipes) with torchvision v2 semantics."""

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
from selfsup.transforms._geometry import CenterCrop, RandomErasing, RandomVerticalFlip
from selfsup.transforms.recipes import blur_kernel, byol, dino, mocov2, pil_blur_kernel, simclr, swav

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Augmented",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "GaussianBlur",
    "MultiView",
    "Normalize",
    "RandomApply",
    "RandomErasing",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomSolarize",
    "RandomVerticalFlip",
    "Resize",
    "Transform",
    "blur_kernel",
    "byol",
    "dino",
    "mocov2",
    "pil_blur_kernel",
    "simclr",
    "swav",
]
