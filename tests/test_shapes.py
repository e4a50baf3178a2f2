"""The generated shapes set: deterministic, balanced, the label in the shape and not the colour."""

from __future__ import annotations

import numpy as np
import pytest

from selfsup import plugins
from selfsup.data.labelled import HELD_OUT_SETS
from selfsup.data.shapes import SHAPES, SUPERSAMPLE, load_shapes, render_shape


def test_deterministic_balanced_and_registered():
    a, b = load_shapes(16, 4, 2, seed=1), load_shapes(16, 4, 2, seed=1)
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.test.images, b.test.images)
    assert a.train.images.shape == (24, 16, 16, 3) and a.train.images.dtype == np.uint8
    assert np.bincount(a.train.labels).tolist() == [4] * len(SHAPES) and np.bincount(a.test.labels).tolist() == [2] * len(SHAPES)
    assert not np.array_equal(load_shapes(16, 4, 2, seed=2).train.images, a.train.images)
    assert not any(np.array_equal(x, y) for x in a.train.images for y in a.test.images)  # the splits are separate draws
    assert plugins.get("datasets", "shapes")(size=16).images.shape[1:] == (16, 16, 3)
    assert "shapes" in HELD_OUT_SETS
    with pytest.raises(ValueError, match="size"):
        load_shapes(4)


def test_shape_areas_follow_their_geometry():
    """Each shape covers the area its geometry gives (r the circumradius): a disc πr², a square
    2r², a triangle (3√3/4)r², a star 5·r·r_in·sin 36° (r_in = 0.42r), a plus (20/9)r²·½ (five
    squares of side 2r/3), a ring π(r² − (0.55r)²)."""
    expected = {
        "disc": np.pi, "square": 2.0, "triangle": 3 * np.sqrt(3) / 4, "star": 5 * 0.42 * np.sin(np.pi / 5),
        "plus": 5 * (2 / 3) ** 2, "ring": np.pi * (1 - 0.55**2),
    }
    black = np.zeros((256, 256, 3), np.uint8)
    for kind, factor in expected.items():
        for radius, angle in ((60.0, 0.3), (90.0, 1.1)):
            image = render_shape(kind, black, (128.0, 128.0), radius, angle, (255, 255, 255))
            area = image[..., 0].astype(float).sum() / 255 * SUPERSAMPLE**2
            assert area == pytest.approx(factor * radius**2, rel=0.05), kind  # Pillow fills boundary pixels: long outlines gain ~4 %
    with pytest.raises(ValueError, match="kind"):
        render_shape("hexagon", black, (128.0, 128.0), 60.0, 0.0, (255, 255, 255))


def test_colour_alone_does_not_give_the_label():
    """A nearest-class-mean classifier on the mean colour of each image scores near chance (1/6)."""
    data = load_shapes(16, 60, 30)
    means = {label: data.train.images[data.train.labels == label].reshape(-1, 3).mean(0) for label in range(len(SHAPES))}
    test_colours = data.test.images.reshape(len(data.test.images), -1, 3).mean(1)
    predicted = np.argmin([[np.abs(c - means[k]).sum() for k in range(len(SHAPES))] for c in test_colours], axis=1)
    assert (predicted == data.test.labels).mean() < 0.35
