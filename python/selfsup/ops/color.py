"""Colour: sRGB ↔ CIE Lab and the quantised ab space of colorization.

Zhang, Isola & Efros 2016, "Colorful Image Colorization" (arXiv:1603.08511): the network sees the
L channel and predicts a distribution over Q ab bins; targets are soft-encoded over the 5 nearest
bins with σ = 5 (§2.1), classes are rebalanced by the smoothed empirical prior (eq. 3–4, λ = ½),
and predictions are decoded with the annealed mean at T = 0.38 (eq. 5).

The bins are *derived*: a grid of ``grid`` ab units, keeping the cells that the ab coordinates of
some 8-bit sRGB colour (all 256³ are converted) round into. For ``grid=10`` that is 261 bins
spanning a ∈ [−90, 100], b ∈ [−110, 90], the ranges of the paper's released set (whose 313 bins
also include cells no sRGB colour reaches).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from selfsup import _native
from selfsup.ops._common import as_array

F32Array = npt.NDArray[np.float32]


def rgb_to_lab(images: Any) -> F32Array:
    """sRGB (D65) → CIE Lab, as scikit-image's ``rgb2lab`` (within 1e-3). ``images``: uint8 ``(..., 3)``,
    or float32/float64 in [0, 1]. Returns float32 ``(..., 3)``: L in [0, 100], a, b.

    Raises:
        TypeError: another dtype. ValueError: last dimension not 3, empty, NaN.

    Example:
        >>> import numpy as np, selfsup.ops as ops
        >>> ops.rgb_to_lab(np.array([[255, 255, 255]], np.uint8)).round(2).tolist()
        [[100.0, 0.01, -0.01]]
    """
    return _native.rgb_to_lab(as_array(images))


def lab_to_rgb(lab: Any) -> F32Array:
    """CIE Lab → sRGB in [0, 1], float32 ``(..., 3)``, as scikit-image's ``lab2rgb`` (out-of-gamut
    values clipped)."""
    return _native.lab_to_rgb(as_array(lab))


def ab_bins(grid: int = 10) -> F32Array:
    """In-gamut ab bin centres ``(Q, 2)`` float32, sorted by (a, b); Q = 261 for ``grid=10``."""
    return _native.ab_bins(grid)


def encode_ab(ab: Any, sigma: float = 5.0, neighbours: int = 5, grid: int = 10) -> F32Array:
    """Soft encoding ``(..., Q)`` of ab values ``(..., 2)``: weights ``exp(−d²/2σ²)`` on the
    ``neighbours`` nearest bins, normalised to 1.

    Raises:
        ValueError: ``sigma`` ≤ 0, ``neighbours`` outside 1..Q, last dimension not 2, NaN.
    """
    return _native.encode_ab(as_array(ab), sigma, neighbours, grid)


def nearest_ab_bin(ab: Any, grid: int = 10) -> npt.NDArray[np.int64]:
    """Index of the nearest bin of every ab value ``(..., 2)`` → int64 ``(...)``."""
    return _native.nearest_ab_bin(as_array(ab), grid)


def decode_ab(probs: Any, temperature: float = 0.38, grid: int = 10) -> F32Array:
    """Annealed mean of bin probabilities ``(..., Q)`` → ab ``(..., 2)``: ``T = 1`` is the mean,
    ``T → 0`` the mode; the paper uses 0.38."""
    return _native.decode_ab(as_array(probs), temperature, grid)


def ab_prior(ab: Any, sigma: float = 5.0, grid: int = 10) -> F32Array:
    """Smoothed empirical distribution ``(Q,)`` of ab values over the bins: nearest-bin counts,
    convolved with a Gaussian of ``sigma`` ab units over the bin centres, normalised to 1."""
    if sigma <= 0:
        raise ValueError(f"sigma: expected > 0, got {sigma}")
    bins = ab_bins(grid).astype(np.float64)
    counts = np.bincount(nearest_ab_bin(ab, grid).ravel(), minlength=len(bins)).astype(np.float64)
    if counts.sum() == 0:
        raise ValueError("ab: no values")
    d2 = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma**2))
    smoothed = kernel @ (counts / counts.sum())
    prior: F32Array = (smoothed / smoothed.sum()).astype(np.float32)
    return prior


def rebalance_weights(prior: Any, gamma: float = 0.5) -> F32Array:
    """Class-rebalancing weights ``w ∝ ((1 − γ)·p̃ + γ/Q)^−1`` normalised so ``Σ p̃·w = 1``."""
    p = np.asarray(prior, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or (p < 0).any() or not np.isfinite(p).all():
        raise ValueError("prior: expected a non-empty 1-D array of non-negative probabilities")
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma: expected a value in [0, 1], got {gamma}")
    p = p / p.sum()
    w = 1.0 / ((1 - gamma) * p + gamma / p.size)
    weights: F32Array = (w / (p * w).sum()).astype(np.float32)
    return weights
