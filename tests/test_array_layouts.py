"""Every memory layout of the same pixels gives the same result: C order, Fortran order, strided,
negative strides, read-only, broadcast, and torch tensors with such strides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import selfsup.ops as ops
import selfsup.transforms as T

RNG = np.random.default_rng(7)
IMAGES = RNG.integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)


def layouts(images: np.ndarray) -> dict[str, Any]:
    """The same logical array in other memory layouts."""
    flipped = np.ascontiguousarray(images[:, ::-1])
    read_only = images.copy()
    read_only.flags.writeable = False
    wide = np.zeros(images.shape[:2] + (images.shape[2] * 2, images.shape[3]), np.uint8)
    wide[:, :, ::2] = images
    return {
        "fortran": np.asfortranarray(images),
        "strided": wide[:, :, ::2],
        "negative strides": flipped[:, ::-1],
        "read-only": read_only,
        "channels first, transposed": np.ascontiguousarray(images.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1),
        "torch fortran": torch.from_numpy(np.asfortranarray(images)),
    }


def outputs(result: Any) -> list[np.ndarray]:
    if isinstance(result, torch.Tensor):
        return [result.numpy()]
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, (list, tuple)):
        return [a for item in result for a in outputs(item)]
    return [np.asarray(v) for v in result]


OPS: dict[str, Callable[[Any], Any]] = {
    "patch_grid": lambda x: ops.patch_grid(x, grid=2, cell=18, patch=14, seed=1),
    "jigsaw": lambda x: ops.jigsaw(x, ops.jigsaw_permutations(10), cell=12, patch=10, seed=2),
    "relative_patches": lambda x: ops.relative_patches(x, patch=10, gap=2, jitter=1, seed=3),
    "rotations": lambda x: ops.rotations(x, mode="all"),
    "rgb_to_lab": ops.rgb_to_lab,
    "corrupt": lambda x: ops.corrupt(x, seed=4),
    "apply_mask": lambda x: ops.apply_mask(x, ops.inpaint_masks(3, 40, "blocks", seed=0), (10, 200, 30), seed=0),
    "Compose": lambda x: T.Compose([T.RandomResizedCrop(24), T.ColorJitter(0.4, 0.4, 0.4, 0.1)])(x, seed=5),
    "MultiView simclr": lambda x: T.simclr(24)(x, seed=6),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_layout_gives_the_c_order_result(op: str):
    expected = outputs(OPS[op](IMAGES))
    for name, array in layouts(IMAGES).items():
        got = outputs(OPS[op](array))
        assert len(got) == len(expected), name
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b, err_msg=f"{op} on a {name} array")


def test_a_transposed_grey_image_and_stacked_planes():
    grey = RNG.integers(0, 256, (30, 20), dtype=np.uint8)
    transposed = grey.T[None, :, :, None]  # Fortran-ordered view
    np.testing.assert_array_equal(ops.rotations(transposed, k=np.array([1])).images, ops.rotations(np.ascontiguousarray(transposed), k=np.array([1])).images)
    r, g, b = (RNG.integers(0, 256, (20, 30), dtype=np.uint8) for _ in range(3))
    planes = np.stack([r, g, b]).T[None]  # (1, 30, 20, 3), Fortran order
    assert not planes.flags.c_contiguous
    np.testing.assert_array_equal(ops.rgb_to_lab(planes), ops.rgb_to_lab(np.ascontiguousarray(planes)))
    np.testing.assert_allclose(ops.rgb_to_lab(planes)[0, 4, 7], ops.rgb_to_lab(np.array([[[[r[7, 4], g[7, 4], b[7, 4]]]]], np.uint8))[0, 0, 0])
