"""Datasets: embedded sample sets shipped inside installed packages."""

from selfsup.data.embedded import PHOTO_NAMES, photo_crops, sample_photos

__all__ = ["PHOTO_NAMES", "photo_crops", "sample_photos"]
