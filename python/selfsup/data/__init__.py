"""Datasets: image folders decoded natively, multi-view loaders, embedded sample sets.

The loader classes (which need torch) are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from selfsup.data.digits import Digits, Split, Splits, load_digits, validation_splits
from selfsup.data.embedded import PHOTO_NAMES, photo_crops, sample_photos, write_photo_folder
from selfsup.data.folder import IMG_EXTENSIONS, CorruptImageWarning, FileList, FileSource, ImageFolder, Loaded
from selfsup.data.photo_patches import load_photo_patches
from selfsup.data.shards import TarShards, expand_pattern, write_shards
from selfsup.data.sources import open_source

if TYPE_CHECKING:
    from selfsup.data.loader import KeyDataset, ViewBatch, ViewCollate, ViewLoader
    from selfsup.data.pipeline import ArraySource, BatchPipeline, Source, TrainBatch, TrainLoader
    from selfsup.data.sampler import EpochBatchSampler, SemiSupervisedBatchSampler, StepBatchSampler
    from selfsup.data.semi import SemiSupervisedSource, SubsetSource

_LAZY = {
    "KeyDataset": "loader",
    "ViewBatch": "loader",
    "ViewCollate": "loader",
    "ViewLoader": "loader",
    "ArraySource": "pipeline",
    "BatchPipeline": "pipeline",
    "Source": "pipeline",
    "TrainBatch": "pipeline",
    "TrainLoader": "pipeline",
    "EpochBatchSampler": "sampler",
    "StepBatchSampler": "sampler",
    "SemiSupervisedBatchSampler": "sampler",
    "SemiSupervisedSource": "semi",
    "SubsetSource": "semi",
}

__all__ = [
    "IMG_EXTENSIONS",
    "PHOTO_NAMES",
    "ArraySource",
    "BatchPipeline",
    "CorruptImageWarning",
    "Digits",
    "EpochBatchSampler",
    "FileList",
    "FileSource",
    "ImageFolder",
    "KeyDataset",
    "Loaded",
    "SemiSupervisedBatchSampler",
    "SemiSupervisedSource",
    "Source",
    "Split",
    "Splits",
    "StepBatchSampler",
    "SubsetSource",
    "TarShards",
    "TrainBatch",
    "TrainLoader",
    "ViewBatch",
    "ViewCollate",
    "ViewLoader",
    "expand_pattern",
    "load_digits",
    "load_photo_patches",
    "open_source",
    "photo_crops",
    "sample_photos",
    "validation_splits",
    "write_photo_folder",
    "write_shards",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"selfsup.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'selfsup.data' has no attribute {name!r}")
