"""``selfsup show-pretext``: one PNG of what each pretext task sees on the sample photos."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

import selfsup.ops as ops
from selfsup.data import sample_photos
from selfsup.viz.canvas import Row, draw_boxes, mosaic, render

Photo = npt.NDArray[np.uint8]


def centre_square(photo: Photo, side: int) -> Photo:
    h, w = photo.shape[:2]
    if min(h, w) < side:
        raise ValueError(f"photo of {h}x{w} is smaller than {side}")
    y, x = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(photo[y : y + side, x : x + side])


def jigsaw_row(photo: Photo, seed: int) -> Row:
    image = centre_square(photo, 255)[None]
    perms = ops.jigsaw_permutations(100)
    puzzle = ops.jigsaw(image, perms, seed=seed)
    label = int(puzzle.labels[0])
    perm = perms[label]
    boxes = [(int(y), int(x), 64, 64, "yellow") for y, x in puzzle.positions[0]]
    row = Row("jigsaw (3x3, 100 perms)")
    row.add(draw_boxes(image[0], boxes), "255 crop, 64-px tiles")
    row.add(mosaic(puzzle.tiles[0], 3, 3), f"shuffled: perm #{label}")
    row.add(mosaic(puzzle.tiles[0][np.argsort(perm)], 3, 3), "solved (inverse perm)")
    row.add(np.zeros((1, 1, 3), np.uint8) + 255, " ".join(map(str, perm)))
    return row


def relative_row(photo: Photo, seed: int) -> Row:
    image = centre_square(photo, 400)[None]
    pair = ops.relative_patches(image, seed=seed)
    dropped = ops.relative_patches(image, drop_colors=True, seed=seed)
    (cy, cx), (ny, nx) = pair.positions[0]
    row = Row("relative position")
    row.add(draw_boxes(image[0], [(int(cy), int(cx), 96, 96, "lime"), (int(ny), int(nx), 96, 96, "red")]), "centre / neighbour")
    row.add(pair.centre[0], "centre")
    row.add(pair.neighbour[0], f"neighbour: label {int(pair.labels[0])}")
    row.add(dropped.centre[0], "colour dropped")
    row.add(dropped.neighbour[0], "colour dropped")
    return row


def rotation_row(photo: Photo, seed: int) -> Row:
    image = centre_square(photo, 256)[None]
    rotated = ops.rotations(image, mode="all")
    row = Row("rotation")
    for img, k in zip(rotated.images, rotated.labels):
        row.add(img, f"k={int(k)} ({90 * int(k)} deg ccw)")
    return row


def colour_row(photo: Photo, seed: int) -> Row:
    image = centre_square(photo, 256)
    lab = ops.rgb_to_lab(image)
    grey_l = np.repeat(lab[..., :1] / 100.0, 3, axis=-1)
    ab_only = ops.lab_to_rgb(np.concatenate([np.full_like(lab[..., :1], 60.0), lab[..., 1:]], axis=-1))
    soft = ops.encode_ab(lab[::4, ::4, 1:])
    decoded = ops.decode_ab(soft, temperature=0.38)
    up = np.repeat(np.repeat(decoded, 4, axis=0), 4, axis=1)
    recoloured = ops.lab_to_rgb(np.concatenate([lab[..., :1], up], axis=-1))
    row = Row("colorization (Lab)")
    row.add(image, "input RGB")
    row.add(grey_l.astype(np.float32), "L: what the net sees")
    row.add(ab_only, "ab target (at L=60)")
    row.add(recoloured, f"{soft.shape[-1]} bins, annealed mean")
    return row


def inpainting_row(photo: Photo, seed: int) -> Row:
    image = centre_square(photo, 256)[None]
    row = Row("inpainting masks")
    for kind in ("center", "blocks", "region"):
        mask = ops.inpaint_masks(1, 256, kind, seed=seed)
        row.add(ops.apply_mask(image, mask)[0], f"{kind}: {mask.mean():.0%} missing")
    return row


def corruption_row(photo: Photo, seed: int) -> Row:
    image = np.repeat(centre_square(photo, 256)[None], 6, axis=0)
    size = 0.3
    side = round(image.shape[1] * size)
    out = ops.corrupt(image, labels=np.arange(6), size=size, seed=seed)
    row = Row("corruptions")
    for i in range(6):
        boxes = []
        for y, x in out.regions[i]:
            if y >= 0 and out.labels[i] != 0:
                boxes.append((int(y), int(x), side, side, "red"))
        row.add(draw_boxes(out.images[i], boxes), f"{int(out.labels[i])}: {ops.CORRUPTIONS[int(out.labels[i])]}")
    return row


def _clip(seed: int) -> npt.NDArray[np.uint8]:
    from selfsup.data.moving_digits import moving_digits

    return moving_digits(1, frames=16, seed=seed).clips


def clip_row(photo: Photo, seed: int) -> Row:
    """Every other frame of a generated moving-digits clip (the photo is not used)."""
    clip = _clip(seed)[0]
    row = Row("video clip")
    for t in range(0, len(clip), 2):
        row.add(clip[t], f"frame {t}")
    return row


def tuple_row(positive: bool) -> Callable[[Photo, int], Row]:
    """A Shuffle & Learn tuple of the clip: in order (``positive``) or shuffled."""

    def make(photo: Photo, seed: int) -> Row:
        tuples = ops.shuffle_learn_tuples(_clip(seed), window=10, positive_rate=1.0 if positive else 0.0, seed=seed)
        letters = dict(zip((int(v) for v in tuples.five[0]), "abcde"))
        row = Row("positive tuple" if positive else "negative tuple")
        for frame, number in zip(tuples.frames[0], tuples.shown[0]):
            row.add(frame, f"{letters[int(number)]}: frame {int(number)}")
        return row

    return make


ROWS: list[tuple[str, Callable[[Photo, int], Row]]] = [
    ("jigsaw", jigsaw_row),
    ("relative patches", relative_row),
    ("rotations", rotation_row),
    ("colour", colour_row),
    ("inpainting", inpainting_row),
    ("corruptions", corruption_row),
    ("video clip", clip_row),
    ("positive tuple", tuple_row(True)),
    ("negative tuple", tuple_row(False)),
]


def show_pretext(out: Path, *, seed: int = 0, photo: str = "astronaut", progress: bool = True) -> Path:
    """Renders every pretext task's inputs and targets for one sample photo into ``out`` (PNG)."""
    (image,) = sample_photos((photo,))
    rows = []
    for step, (name, make) in enumerate(ROWS, start=1):
        if progress:
            print(f"\r[{step}/{len(ROWS)}] {name:<24}", end="", file=sys.stderr, flush=True)
        rows.append(make(image, seed))
    if progress:
        print(f"\r[{len(ROWS)}/{len(ROWS)}] done{' ' * 24}", file=sys.stderr)
    return render(rows, out)
