"""Native multi-view image augmentation (InstDisc/SimCLR/BYOL/MoCo v1, v2/DINO/SwAV augmentations;
RandAugment and Cutout for FixMatch/UDA) with torchvision v2 semantics."""

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
from selfsup.transforms._geometry import CenterCrop, RandomCrop, RandomErasing, RandomVerticalFlip
from selfsup.transforms._randaugment import RANDAUGMENT_OPS, Cutout, RandAugment
from selfsup.transforms.presets import blur_kernel, byol, dino, fixmatch, instdisc, mocov1, mocov2, pil_blur_kernel, simclr, swav

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RANDAUGMENT_OPS",
    "Augmented",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Cutout",
    "GaussianBlur",
    "MultiView",
    "Normalize",
    "RandAugment",
    "RandomApply",
    "RandomCrop",
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
    "fixmatch",
    "instdisc",
    "mocov1",
    "mocov2",
    "pil_blur_kernel",
    "simclr",
    "swav",
]
