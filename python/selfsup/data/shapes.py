"""Generated colour shapes on textured backgrounds, labelled by the shape.

A third kind of embedded data, beside the grey strokes of the digits and the photograph patches:
each image is one of six shapes (disc, square, triangle, five-pointed star, plus, ring) in a
random colour, size (35–80 % of the side), position and rotation, on a background of a random
two-colour gradient with pixel noise. Colour, position and background carry no label, so a
feature that only sees colour or texture scores near chance (1/6); the shape must be seen.

Drawn at four times the resolution with Pillow and downsampled with its box filter (antialiased
edges); deterministic for a given ``seed``, the held-out images drawn from a stream of their own.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from selfsup.data.digits import Split, Splits
from selfsup.hookspecs import Register, hookimpl

SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "star", "plus", "ring")
SUPERSAMPLE = 4


def _polygon(kind: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    if kind == "square":
        corners = [(math.cos(angle + math.pi / 4 + k * math.pi / 2), math.sin(angle + math.pi / 4 + k * math.pi / 2)) for k in range(4)]
    elif kind == "triangle":
        corners = [(math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    elif kind == "star":
        corners = [
            ((1.0 if k % 2 == 0 else 0.42) * math.cos(angle + k * math.pi / 5), (1.0 if k % 2 == 0 else 0.42) * math.sin(angle + k * math.pi / 5))
            for k in range(10)
        ]
    else:  # plus: a 12-corner outline with arms a third of the width
        arm = 1 / 3
        outline = [(arm, 1), (-arm, 1), (-arm, arm), (-1, arm), (-1, -arm), (-arm, -arm), (-arm, -1), (arm, -1), (arm, -arm), (1, -arm), (1, arm), (arm, arm)]
        c, s = math.cos(angle), math.sin(angle)
        corners = [(x * c - y * s, x * s + y * c) for x, y in outline]
    return [(cx + radius * x, cy + radius * y) for x, y in corners]


def render_shape(
    kind: str, backdrop: npt.NDArray[np.uint8], centre: tuple[float, float], radius: float, angle: float, fill: tuple[int, int, int]
) -> npt.NDArray[np.uint8]:
    """``backdrop`` (``(S, S, 3)`` uint8, drawn at :data:`SUPERSAMPLE` times the output side) with
    shape ``kind`` of circumradius ``radius`` at ``centre``, rotated by ``angle``, filled with
    ``fill``, downsampled by :data:`SUPERSAMPLE` with Pillow's box filter."""
    from PIL import Image, ImageDraw

    cx, cy = centre
    image = Image.fromarray(backdrop)
    pen = ImageDraw.Draw(image)
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    if kind in ("disc", "ring"):
        pen.ellipse(box, fill=fill)
        if kind == "ring":  # the background shows through the hole
            inner = radius * 0.55
            mask = Image.new("L", image.size, 0)
            ImageDraw.Draw(mask).ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=255)
            image.paste(Image.fromarray(backdrop), (0, 0), mask)
    elif kind in SHAPES:
        pen.polygon(_polygon(kind, cx, cy, radius, angle), fill=fill)
    else:
        raise ValueError(f"kind: expected one of {', '.join(SHAPES)}, got {kind!r}")
    size = backdrop.shape[0] // SUPERSAMPLE
    return np.asarray(image.resize((size, size), Image.Resampling.BOX))


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """One ``(size, size, 3)`` uint8 image of shape ``kind`` with parameters drawn from ``rng``
    (see the module docstring)."""
    big = size * SUPERSAMPLE
    start, stop = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, big)[:, None, None]
    background = start * (1 - ramp) + stop * ramp
    if rng.random() < 0.5:
        background = background.transpose(1, 0, 2)
    noisy = np.broadcast_to(background, (big, big, 3)) + rng.normal(0, 12, (big, big, 3))
    colour = rng.integers(0, 256, 3)
    while np.abs(colour - (start + stop) / 2).sum() < 150:  # keep the shape visible against its background
        colour = rng.integers(0, 256, 3)
    radius = big * float(rng.uniform(0.35, 0.8)) / 2
    cx, cy = (float(rng.uniform(radius, big - radius)) for _ in range(2))
    angle = float(rng.uniform(0, 2 * math.pi))
    fill = (int(colour[0]), int(colour[1]), int(colour[2]))
    return render_shape(kind, np.clip(noisy, 0, 255).astype(np.uint8), (cx, cy), radius, angle, fill)


def load_shapes(size: int = 32, train_per_shape: int = 200, test_per_shape: int = 80, *, seed: int = 0) -> Splits:
    """Train and held-out splits ``(N, size, size, 3)`` uint8 with labels 0–5 (the index in
    :data:`SHAPES`), ``train_per_shape`` and ``test_per_shape`` images per class.

    Raises:
        ValueError: ``size`` < 8 or non-positive counts.
    """
    if size < 8:
        raise ValueError(f"size: expected at least 8 pixels, got {size}")
    for name, value in (("train_per_shape", train_per_shape), ("test_per_shape", test_per_shape)):
        if value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value}")
    splits = []
    for stream, per_shape in ((0, train_per_shape), (1, test_per_shape)):
        rng = np.random.default_rng([seed, stream])
        images = np.stack([draw_shape(kind, size, rng) for kind in SHAPES for _ in range(per_shape)])
        labels = np.repeat(np.arange(len(SHAPES), dtype=np.int64), per_shape)
        splits.append(Split(images, labels))
    return Splits(splits[0], splits[1])


def shapes_train(size: int = 32) -> Split:
    """The training split only (what pretraining may see)."""
    return load_shapes(size).train


@hookimpl
def selfsup_register_datasets(register: Register) -> None:
    register(shapes_train, name="shapes")
