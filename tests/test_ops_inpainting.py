"""Inpainting masks and corruptions against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import uniform_filter

import selfsup.ops as ops
from conftest import random_images


def test_centre_mask_geometry():
    masks = ops.inpaint_masks(3, (64, 48), "center")
    expected = np.zeros((64, 48), np.uint8)
    expected[16:48, 12:36] = 1
    for m in masks:
        np.testing.assert_array_equal(m, expected)


@pytest.mark.parametrize("kind", ["blocks", "region"])
def test_random_masks_cover_the_fraction_and_vary(kind):
    masks = ops.inpaint_masks(50, 64, kind, fraction=0.25, blocks=40, seed=3)
    cover = masks.mean(axis=(1, 2))
    assert (cover >= 0.24).all() and (cover <= 0.45).all(), cover
    assert len({m.tobytes() for m in masks}) == 50
    if kind == "region":
        np.testing.assert_allclose(cover, 0.25, atol=1e-3)
    again = ops.inpaint_masks(50, 64, kind, fraction=0.25, blocks=40, seed=3)
    np.testing.assert_array_equal(masks, again)


def test_masks_do_not_depend_on_thread_count():
    before = ops.get_num_threads()
    try:
        ops.set_num_threads(1)
        a = ops.inpaint_masks(200, 32, "region", seed=1, epoch=2)
        ops.set_num_threads(2)
        b = ops.inpaint_masks(200, 32, "region", seed=1, epoch=2)
    finally:
        ops.set_num_threads(before)
    np.testing.assert_array_equal(a, b)


def test_apply_mask(rng):
    images = random_images(rng, 3, 20, 20)
    masks = ops.inpaint_masks(3, 20, "blocks", seed=0)
    out = ops.apply_mask(images, masks)
    expected = np.where(masks[..., None] == 1, np.array([124, 116, 104], np.uint8), images)
    np.testing.assert_array_equal(out, expected)
    noisy = ops.apply_mask(images, masks, "noise", seed=1)
    np.testing.assert_array_equal(noisy[masks == 0], images[masks == 0])
    assert noisy[masks == 1].std() > 60
    grey = ops.apply_mask(images[..., :1], masks, 7)
    assert (grey[masks == 1] == 7).all()


def test_corruptions_match_references(rng):
    images = random_images(rng, 60, 48, 40)
    out = ops.corrupt(images, size=0.25, seed=5)
    side = 10
    blurred = np.floor(uniform_filter(images.astype(np.float64), size=(1, 5, 5, 1), mode="nearest") + 0.5).astype(np.uint8)
    for i in range(60):
        label, (first, second) = int(out.labels[i]), out.regions[i]
        y, x = first
        changed = out.masks[i] == 1
        np.testing.assert_array_equal(out.images[i][~changed], images[i][~changed])
        region = (slice(y, y + side), slice(x, x + side))
        if label == 0:
            assert not changed.any()
            np.testing.assert_array_equal(out.images[i], images[i])
            continue
        assert changed[region].all()
        if label == 1:
            sy, sx = second
            other = (slice(sy, sy + side), slice(sx, sx + side))
            np.testing.assert_array_equal(out.images[i][region], images[i][other])
            np.testing.assert_array_equal(out.images[i][other], images[i][region])
            assert changed.sum() == 2 * side * side
        elif label == 2:
            diff = out.images[i][region].astype(float) - images[i][region]
            assert 15 < diff.std() < 30
        elif label == 3:
            np.testing.assert_allclose(out.images[i][region], blurred[i][region], atol=1)
        elif label == 4:
            for yy in range(y, y + side):
                for xx in range(x, x + side):
                    by, bx = yy // 8 * 8, xx // 8 * 8
                    block = images[i, by : by + 8, bx : bx + 8].reshape(-1, 3).mean(0)
                    np.testing.assert_allclose(out.images[i, yy, xx], np.floor(block + 0.5), atol=1)
        else:
            diff = out.images[i][region].astype(int) - images[i][region]
            unclipped = (out.images[i][region] > 0) & (out.images[i][region] < 255)
            for ch in range(3):
                values = set(diff[..., ch][unclipped[..., ch]].tolist())
                assert len(values) <= 1 and all(20 <= abs(v) <= 60 for v in values)
    assert set(out.labels.tolist()) == set(range(6))


def test_corrupt_explicit_labels_and_kinds(rng):
    images = random_images(rng, 4, 32, 32)
    out = ops.corrupt(images, labels=[0, 3, 3, 5], seed=0)
    assert out.labels.tolist() == [0, 3, 3, 5]
    only = ops.corrupt(images, kinds=[2, 4], seed=1)
    assert set(only.labels.tolist()) <= {2, 4}
    assert ops.CORRUPTIONS[3] == "blur"


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: ops.inpaint_masks(0, 8), ValueError, "n: expected a positive"),
        (lambda: ops.inpaint_masks(2, (0, 8)), ValueError, "size"),
        (lambda: ops.inpaint_masks(2, 8, fraction=1.5), ValueError, "fraction"),
        (lambda: ops.inpaint_masks(2, 8, "stars"), ValueError, "kind"),
        (lambda: ops.apply_mask(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 7), np.uint8)), ValueError, "masks"),
        (lambda: ops.apply_mask(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8), np.uint8), (1, 2)), ValueError, "fill"),
        (lambda: ops.apply_mask(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8), np.uint8), 300), ValueError, "fill"),
        (lambda: ops.corrupt(np.zeros((2, 8, 8, 3), np.uint8), kinds=[7]), ValueError, "kinds"),
        (lambda: ops.corrupt(np.zeros((2, 8, 8, 3), np.uint8), size=0.9), ValueError, "size"),
        (lambda: ops.corrupt(np.zeros((2, 8, 8, 3), np.uint8), labels=[0, 6]), ValueError, "labels"),
        (lambda: ops.corrupt(np.zeros((2, 8, 8, 3), np.float32)), TypeError, "images"),
    ],
)
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), c=st.sampled_from([1, 3]), size=st.floats(0.01, 0.5), label=st.integers(0, 5))
def test_corrupt_property(h, w, c, size, label):
    images = np.full((2, h, w, c), 100, np.uint8)
    out = ops.corrupt(images, size=size, labels=[label, label], seed=0)
    assert out.images.shape == images.shape and out.masks.shape == (2, h, w)
    side = max(1, round(min(h, w) * size))
    assert (out.regions[:, 0] >= 0).all() and (out.regions[:, 0, 0] + side <= h).all()
