"""Shared fixtures: small deterministic image batches."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def random_images(rng: np.random.Generator, n: int, h: int, w: int, c: int = 3) -> np.ndarray:
    return rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
