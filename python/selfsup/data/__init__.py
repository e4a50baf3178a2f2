"""Datasets: image folders decoded natively, multi-view loaders, embedded sample sets.

The loader classes (which need torch) are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from selfsup.data.digits import Digits, Split, Splits, load_digits, validation_splits
from selfsup.data.embedded import PHOTO_NAMES, photo_crops, sample_photos, write_photo_folder
from selfsup.data.folder import IMG_EXTENSIONS, CorruptImageWarning, ImageFolder, Loaded
from selfsup.data.photo_patches import load_photo_patches

if TYPE_CHECKING:
    from selfsup.data.loader import EpochBatchSampler, KeyDataset, ViewBatch, ViewCollate, ViewLoader

_LOADER_NAMES = ("EpochBatchSampler", "KeyDataset", "ViewBatch", "ViewCollate", "ViewLoader")

__all__ = [
    "IMG_EXTENSIONS",
    "PHOTO_NAMES",
    "CorruptImageWarning",
    "Digits",
    "EpochBatchSampler",
    "ImageFolder",
    "KeyDataset",
    "Loaded",
    "Split",
    "Splits",
    "ViewBatch",
    "ViewCollate",
    "ViewLoader",
    "load_digits",
    "load_photo_patches",
    "photo_crops",
    "sample_photos",
    "validation_splits",
    "write_photo_folder",
]


def __getattr__(name: str) -> Any:
    if name in _LOADER_NAMES:
        from selfsup.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'selfsup.data' has no attribute {name!r}")
