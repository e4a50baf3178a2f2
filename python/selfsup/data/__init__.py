"""Datasets: embedded sample sets shipped inside installed packages."""

from selfsup.data.digits import Digits, Split, load_digits
from selfsup.data.embedded import PHOTO_NAMES, photo_crops, sample_photos

__all__ = ["PHOTO_NAMES", "Digits", "Split", "load_digits", "photo_crops", "sample_photos"]
