"""Native pretext-task ops vs numpy, scikit-image and albumentations, measured in one run.

For each op: images/s of selfsup on 1 thread and on all cores, of the peers (single-threaded
by nature), and the ratios ours/peer. Inputs are crops of the scikit-image sample photos.

    python benchmarks/bench_ops.py [--batch 128] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_time, print_table  # noqa: E402

import selfsup.ops as ops  # noqa: E402
from selfsup.data import photo_crops  # noqa: E402


def numpy_jigsaw(images: np.ndarray, perms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reference: random 255 crop, 3x3 cells of 85, a random 64-px tile per cell, permuted."""
    out = np.empty((len(images), 9, 64, 64, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):
        oy, ox = rng.integers(0, image.shape[0] - 254), rng.integers(0, image.shape[1] - 254)
        perm = perms[rng.integers(len(perms))]
        tiles = []
        for r in range(3):
            for q in range(3):
                dy, dx = rng.integers(0, 22, size=2)
                y, x = oy + 85 * r + dy, ox + 85 * q + dx
                tiles.append(image[y : y + 64, x : x + 64])
        out[i] = np.stack(tiles)[perm]
    return out


def numpy_relative(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    offsets = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    out = np.empty((len(images), 2, 96, 96, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):
        oy, ox = rng.integers(7, image.shape[0] - 384 - 7 + 1, size=2)
        r, q = offsets[rng.integers(8)]
        for k, (rr, qq) in enumerate([(1, 1), (r, q)]):
            dy, dx = rng.integers(-7, 8, size=2)
            y, x = oy + 144 * rr + dy, ox + 144 * qq + dx
            out[i, k] = image[y : y + 96, x : x + 96]
    return out


def numpy_rotations(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ks = rng.integers(0, 4, len(images))
    return np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(images, ks)])


def numpy_rgb_to_lab(images: np.ndarray) -> np.ndarray:
    """Vectorised float32 sRGB -> CIE Lab (D65), the textbook formula."""
    rgb = images.astype(np.float32) / 255.0
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]], np.float32)
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def per_image(transform: Callable[..., dict[str, np.ndarray]], images: np.ndarray) -> Callable[[], object]:
    return lambda: [transform(image=image)["image"] for image in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import albumentations as A
    import cv2
    import skimage.color

    cv2.setNumThreads(1)
    cores = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    n = args.batch
    crops256 = photo_crops(256, n, seed=0)
    crops400 = photo_crops(400, max(n // 2, 1), seed=1)
    perms = ops.jigsaw_permutations(100)

    cases: list[tuple[str, np.ndarray, Callable[[], object], list[tuple[str, Callable[[], object]]]]] = [
        (
            "jigsaw 256->9x64",
            crops256,
            lambda: ops.jigsaw(crops256, perms, seed=1),
            [
                ("numpy", lambda: numpy_jigsaw(crops256, perms, rng)),
                ("albumentations RandomGridShuffle", per_image(A.RandomGridShuffle(grid=(3, 3), p=1.0), crops256)),
            ],
        ),
        (
            "relative pairs 400",
            crops400,
            lambda: ops.relative_patches(crops400, seed=1),
            [("numpy", lambda: numpy_relative(crops400, rng))],
        ),
        (
            "rotation 256",
            crops256,
            lambda: ops.rotations(crops256, seed=1),
            [
                ("numpy rot90", lambda: numpy_rotations(crops256, rng)),
                ("albumentations RandomRotate90", per_image(A.RandomRotate90(p=1.0), crops256)),
            ],
        ),
        (
            "rgb_to_lab 256",
            crops256,
            lambda: ops.rgb_to_lab(crops256),
            [
                ("scikit-image rgb2lab", lambda: skimage.color.rgb2lab(crops256)),
                ("numpy float32", lambda: numpy_rgb_to_lab(crops256)),
            ],
        ),
    ]

    rows = []
    for name, images, ours, peers in cases:
        count = len(images)
        ops.set_num_threads(1)
        t1 = best_time(ours, args.repeat)
        ops.set_num_threads(cores)
        tn = best_time(ours, args.repeat)
        for peer_name, peer in peers:
            tp = best_time(peer, args.repeat)
            rows.append([
                name, f"{count / t1:,.0f}", f"{count / tn:,.0f}", peer_name, f"{count / tp:,.0f}",
                f"{tp / t1:.1f}x", f"{tp / tn:.1f}x",
            ])
    print(f"batch {n}, best of {args.repeat}, {cores} cores; images/s (higher is better)")
    print_table(["op", "ours 1 thr", f"ours {cores} thr", "peer", "peer", "ratio 1 thr", f"ratio {cores} thr"], rows)


if __name__ == "__main__":
    main()
