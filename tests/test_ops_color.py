"""Colour ops against scikit-image and numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color as sc

import selfsup.ops as ops


def test_rgb_to_lab_matches_skimage_on_every_colour():
    v = np.arange(256, dtype=np.uint8)
    every = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(256, 65536, 3)
    for block in np.array_split(every, 8):
        np.testing.assert_allclose(ops.rgb_to_lab(block), sc.rgb2lab(block), atol=1e-3)


def test_float_input_and_lab_to_rgb_match_skimage(rng):
    rgb = rng.random((4, 9, 11, 3))
    np.testing.assert_allclose(ops.rgb_to_lab(rgb), sc.rgb2lab(rgb), atol=1e-3)
    lab = np.stack([rng.uniform(0, 100, 500), rng.uniform(-120, 120, 500), rng.uniform(-120, 120, 500)], -1)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = sc.lab2rgb(lab)
    np.testing.assert_allclose(ops.lab_to_rgb(lab), expected, atol=1e-3)
    images = rng.integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    np.testing.assert_allclose(ops.lab_to_rgb(ops.rgb_to_lab(images)) * 255, images, atol=0.05)


def test_ab_bins_are_the_rounded_gamut():
    bins = ops.ab_bins()
    assert bins.shape == (261, 2) and bins.dtype == np.float32
    assert (bins[:, 0].min(), bins[:, 0].max(), bins[:, 1].min(), bins[:, 1].max()) == (-90, 100, -110, 90)
    # independent check on a subsample of colours: every rounded cell is a bin
    rng = np.random.default_rng(0)
    sample = rng.integers(0, 256, (20000, 1, 3), dtype=np.uint8)
    cells = np.unique(np.round(sc.rgb2lab(sample)[:, 0, 1:] / 10).astype(int) * 10, axis=0)
    assert {tuple(c) for c in cells} <= {tuple(b) for b in bins.astype(int)}
    assert len(ops.ab_bins(20)) < 261


def test_soft_encoding_formula(rng):
    ab = rng.uniform(-80, 80, (300, 2)).astype(np.float32)
    enc = ops.encode_ab(ab)
    bins = ops.ab_bins().astype(np.float64)
    np.testing.assert_allclose(enc.sum(-1), 1, atol=1e-5)
    assert ((enc > 0).sum(-1) == 5).all()
    d2 = ((ab[:, None, :] - bins[None]) ** 2).sum(-1)
    nearest = np.argsort(d2, axis=1)[:, :5]
    w = np.exp(-np.take_along_axis(d2, nearest, 1) / (2 * 25.0))
    expected = np.zeros_like(enc)
    np.put_along_axis(expected, nearest, w / w.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(enc, expected, atol=1e-5)
    np.testing.assert_array_equal(enc.argmax(-1), d2.argmin(1))
    np.testing.assert_array_equal(ops.nearest_ab_bin(ab), d2.argmin(1))


def test_annealed_mean(rng):
    probs = rng.dirichlet(np.ones(261), size=20).astype(np.float32)
    bins = ops.ab_bins()
    np.testing.assert_allclose(ops.decode_ab(probs, 1.0), probs @ bins, atol=1e-3)
    peaked = probs.copy()
    peaked[np.arange(20), rng.integers(0, 261, 20)] += 0.5
    peaked /= peaked.sum(-1, keepdims=True)
    np.testing.assert_allclose(ops.decode_ab(peaked, 0.01), bins[peaked.argmax(-1)], atol=1e-2)
    t = 0.38
    f = np.exp(np.log(probs.astype(np.float64)) / t)
    f /= f.sum(-1, keepdims=True)
    np.testing.assert_allclose(ops.decode_ab(probs, t), f @ bins, atol=1e-3)


def test_prior_and_rebalancing(rng):
    ab = rng.normal(0, 15, (5000, 2)).astype(np.float32)
    prior = ops.ab_prior(ab)
    assert prior.shape == (261,) and abs(prior.sum() - 1) < 1e-5
    assert prior.argmax() == ops.nearest_ab_bin(np.zeros((1, 2), np.float32))[0]
    w = ops.rebalance_weights(prior, 0.5)
    np.testing.assert_allclose((prior * w).sum(), 1, atol=1e-5)
    expected = 1 / (0.5 * prior + 0.5 / 261)
    np.testing.assert_allclose(w, expected / (prior * expected).sum(), rtol=1e-4)
    assert w[prior.argmax()] == w.min()


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: ops.rgb_to_lab(np.zeros((2, 4), np.uint8)), ValueError, "images: expected a last dimension of 3"),
        (lambda: ops.rgb_to_lab(np.zeros((2, 3), np.int64)), TypeError, "images"),
        (lambda: ops.rgb_to_lab(np.zeros((0, 3), np.uint8)), ValueError, "images: the array is empty"),
        (lambda: ops.lab_to_rgb(np.full((1, 3), np.nan)), ValueError, "lab: contains NaN"),
        (lambda: ops.encode_ab(np.zeros((1, 2), np.float32), sigma=0), ValueError, "sigma"),
        (lambda: ops.encode_ab(np.zeros((1, 2), np.float32), neighbours=0), ValueError, "neighbours"),
        (lambda: ops.decode_ab(np.ones((1, 5), np.float32)), ValueError, "probs: expected a last dimension of 261"),
        (lambda: ops.decode_ab(np.ones((1, 261), np.float32), temperature=0), ValueError, "temperature"),
        (lambda: ops.ab_bins(0), ValueError, "grid"),
        (lambda: ops.rebalance_weights(np.ones(4), gamma=2), ValueError, "gamma"),
    ],
)
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
