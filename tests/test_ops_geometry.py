"""Patch grids, jigsaw, relative patches and rotations against numpy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import selfsup.ops as ops
from conftest import random_images


def crop(image: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
    return image[y : y + size, x : x + size]


# ---------------------------------------------------------------- patch grid


def test_patch_grid_tiles_are_the_crops_at_their_positions(rng):
    images = random_images(rng, 5, 256, 260)
    out = ops.patch_grid(images, grid=3, cell=85, patch=64, seed=7)
    assert out.tiles.shape == (5, 9, 64, 64, 3) and out.tiles.dtype == np.uint8
    for i in range(5):
        for t in range(9):
            y, x = out.positions[i, t]
            np.testing.assert_array_equal(out.tiles[i, t], crop(images[i], y, x, 64))


def test_patch_grid_tiles_stay_in_their_cells(rng):
    images = random_images(rng, 64, 260, 256)
    pos = ops.patch_grid(images, grid=3, cell=85, patch=64, seed=3).positions
    # every tile lies in cell (r, q) of a grid whose origin is the same for the whole image
    for i in range(64):
        p = pos[i].reshape(3, 3, 2)
        origin_lo = (p[0, 0] - 21).clip(0)
        for r, q in itertools.product(range(3), range(3)):
            cell_y = p[r, q, 0] - r * 85
            cell_x = p[r, q, 1] - q * 85
            assert origin_lo[0] <= cell_y <= p[0, 0, 0] + 21 and origin_lo[1] <= cell_x <= p[0, 0, 1] + 21
        assert p[..., 0].max() + 64 <= 260 and p[..., 1].max() + 64 <= 256
    # offsets inside cells take all values 0..21 over many samples
    offs = set((pos[:, 4, 0] - pos[:, 3, 0]).tolist())
    assert len(offs) > 10


def test_patch_grid_without_jitter_is_centred(rng):
    images = random_images(rng, 2, 265, 255)
    pos = ops.patch_grid(images, grid=(3, 3), cell=85, patch=64, jitter=False).positions
    # slack 10 in y -> origin 5; play 21 -> offset 10
    expected = np.array([[5 + 10 + r * 85, 0 + 10 + q * 85] for r in range(3) for q in range(3)])
    np.testing.assert_array_equal(pos[0], expected)
    np.testing.assert_array_equal(pos[1], expected)


def test_overlapping_cpc_grid(rng):
    images = random_images(rng, 2, 256, 256, 1)
    out = ops.patch_grid(images, grid=7, cell=32, patch=64, seed=0)
    expected = np.array([[r * 32, q * 32] for r in range(7) for q in range(7)])
    np.testing.assert_array_equal(out.positions[1], expected)
    np.testing.assert_array_equal(out.tiles[1, 8], images[1, 32:96, 32:96])


def test_patch_grid_explicit_positions(rng):
    images = random_images(rng, 2, 40, 50)
    positions = np.array([[[0, 0], [10, 20]], [[32, 42], [5, 5]]])
    out = ops.patch_grid(images, grid=(1, 2), cell=8, patch=8, positions=positions)
    np.testing.assert_array_equal(out.positions, positions)
    np.testing.assert_array_equal(out.tiles[1, 0], images[1, 32:40, 42:50])
    with pytest.raises(ValueError, match="positions"):
        ops.patch_grid(images, grid=(1, 2), cell=8, patch=8, positions=positions + 1)


# ---------------------------------------------------------------- permutations


def hamming_stats(perms: np.ndarray) -> tuple[float, int]:
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    upper = d[np.triu_indices(len(perms), 1)]
    return float(upper.mean()), int(upper.min())


def test_hundred_permutations_of_nine():
    perms = ops.jigsaw_permutations(100, 9, seed=0)
    assert perms.shape == (100, 9) and perms.dtype == np.int64
    np.testing.assert_array_equal(np.sort(perms, axis=1), np.tile(np.arange(9), (100, 1)))
    assert len({tuple(p) for p in perms}) == 100
    mean, minimum = hamming_stats(perms)
    assert mean >= 8.0 and minimum >= 2


def test_maxmean_criterion_matches_noroozi_mean():
    perms = ops.jigsaw_permutations(100, 9, seed=0, criterion="maxmean")
    mean, minimum = hamming_stats(perms)
    assert mean >= 8.0 and minimum >= 2


def reference_greedy(first: tuple[int, ...], count: int, tiles: int, criterion: str) -> np.ndarray:
    """Independent greedy selection over itertools' lexicographic permutations."""
    candidates = np.array(list(itertools.permutations(range(tiles))))
    chosen = [candidates.tolist().index(list(first))]
    while len(chosen) < count:
        d = (candidates[:, None, :] != candidates[chosen][None, :, :]).sum(-1)
        score_min, score_sum = d.min(1), d.sum(1)
        best = None
        for j in range(len(candidates)):
            if j in chosen:
                continue
            key = (score_min[j], score_sum[j]) if criterion == "maxmin" else (score_sum[j],)
            if best is None or key > best[1]:
                best = (j, key)
        chosen.append(best[0])
    return candidates[chosen]


@pytest.mark.parametrize("criterion", ["maxmin", "maxmean"])
def test_permutation_set_matches_reference_greedy(criterion):
    perms = ops.jigsaw_permutations(20, 5, seed=11, criterion=criterion)
    expected = reference_greedy(tuple(perms[0]), 20, 5, criterion)
    np.testing.assert_array_equal(perms, expected)


def test_permutation_errors():
    with pytest.raises(ValueError, match="count"):
        ops.jigsaw_permutations(25, 4)
    with pytest.raises(ValueError, match="count"):
        ops.jigsaw_permutations(-1, 4)
    with pytest.raises(ValueError, match="tiles"):
        ops.jigsaw_permutations(10, 12)
    with pytest.raises(ValueError, match="criterion"):
        ops.jigsaw_permutations(10, 4, criterion="best")  # type: ignore[arg-type]
    assert ops.jigsaw_permutations(24, 4).shape == (24, 4)


# ---------------------------------------------------------------- jigsaw


def test_jigsaw_slots_hold_the_permuted_tiles(rng):
    images = random_images(rng, 6, 255, 255)
    perms = ops.jigsaw_permutations(30)
    out = ops.jigsaw(images, perms, seed=5)
    assert out.tiles.shape == (6, 9, 64, 64, 3)
    for i in range(6):
        perm = perms[out.labels[i]]
        for k in range(9):
            y, x = out.positions[i, perm[k]]
            np.testing.assert_array_equal(out.tiles[i, k], crop(images[i], y, x, 64))
        # the inverse permutation restores row-major order
        restored = out.tiles[i][np.argsort(perm)]
        for t in range(9):
            y, x = out.positions[i, t]
            np.testing.assert_array_equal(restored[t], crop(images[i], y, x, 64))


def test_jigsaw_labels_are_uniform(rng):
    images = random_images(rng, 4000, 9, 9, 1)
    perms = ops.jigsaw_permutations(10, 9)
    labels = ops.jigsaw(images, perms, grid=3, cell=3, patch=3, seed=1).labels
    counts = np.bincount(labels, minlength=10)
    expected = 400
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 27.9  # p = 0.001 for 9 degrees of freedom


def test_jigsaw_explicit_labels_and_positions(rng):
    images = random_images(rng, 3, 30, 30)
    perms = ops.jigsaw_permutations(24, 4)
    positions = np.tile(np.array([[0, 0], [0, 10], [10, 0], [10, 10]]), (3, 1, 1))
    out = ops.jigsaw(images, perms, grid=2, cell=10, patch=10, labels=[0, 5, 23], positions=positions)
    np.testing.assert_array_equal(out.labels, [0, 5, 23])
    perm = perms[23]
    for k in range(4):
        y, x = positions[2, perm[k]]
        np.testing.assert_array_equal(out.tiles[2, k], crop(images[2], y, x, 10))
    with pytest.raises(ValueError, match="labels"):
        ops.jigsaw(images, perms, grid=2, cell=10, patch=10, labels=[0, 5, 24])


def test_channel_jitter_shifts_each_channel_within_bounds(rng):
    images = random_images(rng, 4, 100, 100)
    perms = ops.jigsaw_permutations(5, 4)
    out = ops.jigsaw(images, perms, grid=2, cell=40, patch=30, channel_jitter=2, seed=0)
    for i in range(4):
        perm = perms[out.labels[i]]
        for k in range(4):
            y0, x0 = out.positions[i, perm[k]]
            for ch in range(3):
                found = any(
                    np.array_equal(out.tiles[i, k, ..., ch], images[i, y : y + 30, x : x + 30, ch])
                    for y in range(max(0, y0 - 2), min(70, y0 + 2) + 1)
                    for x in range(max(0, x0 - 2), min(70, x0 + 2) + 1)
                )
                assert found


def test_standardized_tiles_match_numpy(rng):
    tiles = random_images(rng, 7, 12, 12)
    tiles[3, ..., 1] = 9  # a constant channel is only centred
    ours = ops.standardize_tiles(tiles)
    ref = tiles.astype(np.float64)
    mean = ref.mean(axis=(1, 2), keepdims=True)
    std = ref.std(axis=(1, 2), keepdims=True)
    std[std < 1e-6] = 1.0
    np.testing.assert_allclose(ours, (ref - mean) / std, atol=1e-5)
    assert ours.dtype == np.float32
    puzzle = ops.jigsaw(random_images(rng, 2, 255, 255), ops.jigsaw_permutations(4), standardize=True, seed=0)
    assert puzzle.tiles.dtype == np.float32
    np.testing.assert_allclose(puzzle.tiles.mean(axis=(2, 3)), 0, atol=1e-4)


def test_jigsaw_rejects_bad_permutations(rng):
    images = random_images(rng, 2, 255, 255)
    with pytest.raises(ValueError, match="permutations"):
        ops.jigsaw(images, np.array([[0, 1, 2, 3, 4, 5, 6, 7, 7]]))
    with pytest.raises(ValueError, match="permutations"):
        ops.jigsaw(images, np.arange(8)[None])
    with pytest.raises(TypeError, match="permutations"):
        ops.jigsaw(images, np.arange(9, dtype=np.float32)[None])


# ---------------------------------------------------------------- relative patches

OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def test_relative_pairs_match_crops_and_layout(rng):
    images = random_images(rng, 40, 400, 410)
    out = ops.relative_patches(images, seed=2)
    assert out.centre.shape == (40, 96, 96, 3) and out.neighbour.shape == (40, 96, 96, 3)
    for i in range(40):
        (cy, cx), (ny, nx) = out.positions[i]
        np.testing.assert_array_equal(out.centre[i], crop(images[i], cy, cx, 96))
        np.testing.assert_array_equal(out.neighbour[i], crop(images[i], ny, nx, 96))
        dy, dx = OFFSETS[out.labels[i]]
        assert abs(ny - cy - dy * 144) <= 14 and abs(nx - cx - dx * 144) <= 14
    assert set(out.labels.tolist()) == set(range(8))


def test_relative_explicit_labels(rng):
    images = random_images(rng, 8, 398, 398)
    out = ops.relative_patches(images, labels=np.arange(8), seed=0)
    np.testing.assert_array_equal(out.labels, np.arange(8))
    for i in range(8):
        (cy, cx), (ny, nx) = out.positions[i]
        dy, dx = OFFSETS[i]
        assert abs(ny - cy - dy * 144) <= 14 and abs(nx - cx - dx * 144) <= 14


def test_colour_dropping(rng):
    images = random_images(rng, 6, 120, 120)
    out = ops.relative_patches(images, patch=30, gap=10, jitter=2, drop_colors=True, seed=4)
    for i in range(6):
        for patch, (y, x) in ((out.centre[i], out.positions[i, 0]), (out.neighbour[i], out.positions[i, 1])):
            source = crop(images[i], y, x, 30)
            kept = [ch for ch in range(3) if np.array_equal(patch[..., ch], source[..., ch])]
            assert len(kept) >= 1
            keep = kept[0]
            mean, std = source[..., keep].mean(), source[..., keep].std()
            for ch in set(range(3)) - {keep}:
                assert abs(patch[..., ch].astype(float).mean() - mean) < 1.0
                assert patch[..., ch].astype(float).std() <= std / 100 + 0.6


def test_relative_too_small(rng):
    with pytest.raises(ValueError, match="398x398"):
        ops.relative_patches(random_images(rng, 1, 397, 500))
    with pytest.raises(ValueError, match="drop_colors"):
        ops.relative_patches(random_images(rng, 1, 400, 400, 1), drop_colors=True)


# ---------------------------------------------------------------- rotations


@pytest.mark.parametrize("shape", [(3, 17, 17, 3), (2, 8, 8, 1)])
def test_rotations_all_match_np_rot90(rng, shape):
    images = random_images(rng, *shape)
    out = ops.rotations(images, mode="all")
    assert out.images.shape == (4 * shape[0],) + shape[1:]
    for i in range(shape[0]):
        for k in range(4):
            np.testing.assert_array_equal(out.images[4 * i + k], np.rot90(images[i], k, axes=(0, 1)))
            assert out.labels[4 * i + k] == k


def test_rotations_random_and_given(rng):
    images = random_images(rng, 400, 5, 5)
    out = ops.rotations(images, seed=9)
    for i in range(400):
        np.testing.assert_array_equal(out.images[i], np.rot90(images[i], out.labels[i], axes=(0, 1)))
    counts = np.bincount(out.labels, minlength=4)
    assert counts.min() > 70
    rect = random_images(rng, 2, 4, 6)
    given = ops.rotations(rect, k=[1, 3])
    assert given.images.shape == (2, 6, 4, 3)
    np.testing.assert_array_equal(given.images[1], np.rot90(rect[1], 3, axes=(0, 1)))
    with pytest.raises(ValueError, match="mixed shapes"):
        ops.rotations(rect, k=[0, 1])
    with pytest.raises(ValueError, match="k"):
        ops.rotations(rect, k=[0, 4])
    with pytest.raises(ValueError, match="mode"):
        ops.rotations(rect, mode="some")  # type: ignore[arg-type]


def test_rotations_match_torch_rot90(rng):
    torch = pytest.importorskip("torch")
    images = random_images(rng, 2, 6, 6)
    out = ops.rotations(images, mode="all")
    for k in range(4):
        ref = torch.rot90(torch.from_numpy(images[0]), k, dims=(0, 1)).numpy()
        np.testing.assert_array_equal(out.images[k], ref)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "images, error, pattern",
    [
        (np.zeros((2, 8, 8, 3), np.float32), TypeError, "images: expected dtype uint8"),
        (np.zeros((2, 8, 8, 3), np.int64), TypeError, "images: expected dtype uint8"),
        (np.zeros((8, 8, 3), np.uint8), ValueError, r"images: expected a batch of shape \(N, H, W, C\)"),
        (np.zeros((0, 8, 8, 3), np.uint8), ValueError, "images: the batch is empty"),
        (np.zeros((2, 8, 8, 2), np.uint8), ValueError, "images: expected C in"),
        (np.zeros((2, 0, 8, 3), np.uint8), ValueError, "images: images must be at least 1x1"),
        ([[1, 2]], TypeError, "images: expected a numpy.ndarray"),
    ],
)
def test_bad_images(images, error, pattern):
    with pytest.raises(error, match=pattern):
        ops.rotations(images)
    with pytest.raises(error, match=pattern):
        ops.patch_grid(images, grid=1, cell=1, patch=1)


def test_bad_arguments(rng):
    images = random_images(rng, 2, 32, 32)
    with pytest.raises(ValueError, match="patch"):
        ops.patch_grid(images, grid=3, cell=85, patch=64)
    with pytest.raises(ValueError, match="patch"):
        ops.patch_grid(images, grid=2, cell=8, patch=0)
    with pytest.raises(ValueError, match="grid"):
        ops.patch_grid(images, grid=(0, 2), cell=8, patch=8)
    with pytest.raises(ValueError, match="gap"):
        ops.relative_patches(images, patch=4, gap=-1, jitter=0)
    with pytest.raises(ValueError, match="indices"):
        ops.rotations(images, indices=[0, -1])
    with pytest.raises(ValueError, match="indices"):
        ops.rotations(images, indices=[0, 1, 2])
    with pytest.raises(ValueError, match="seed"):
        ops.rotations(images, seed=-3)
    with pytest.raises(ValueError, match="epoch"):
        ops.rotations(images, epoch=-1)
    with pytest.raises(ValueError, match="channel_jitter"):
        ops.jigsaw(images, ops.jigsaw_permutations(4, 4), grid=2, cell=16, patch=16, channel_jitter=-1)


def test_non_contiguous_input_is_copied(rng):
    images = random_images(rng, 3, 40, 40)
    strided = images[:, ::2, ::2]
    assert not strided.flags.c_contiguous
    a = ops.patch_grid(strided, grid=2, cell=10, patch=8, seed=1)
    b = ops.patch_grid(np.ascontiguousarray(strided), grid=2, cell=10, patch=8, seed=1)
    np.testing.assert_array_equal(a.tiles, b.tiles)


def test_torch_tensors_are_accepted(rng):
    torch = pytest.importorskip("torch")
    images = random_images(rng, 2, 8, 8)
    out = ops.rotations(torch.from_numpy(images), k=torch.tensor([1, 2]))
    np.testing.assert_array_equal(out.images[0], np.rot90(images[0], 1, axes=(0, 1)))


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 3]),
    gy=st.integers(1, 4),
    gx=st.integers(1, 4),
    cell=st.integers(1, 20),
    patch=st.integers(1, 20),
    jitter=st.booleans(),
    seed=st.integers(0, 2**63),
)
def test_patch_grid_property(n, h, w, c, gy, gx, cell, patch, jitter, seed):
    images = np.random.default_rng(seed % 1000).integers(0, 256, (n, h, w, c), dtype=np.uint8)
    fits = (gy - 1) * cell + max(cell, patch) <= h and (gx - 1) * cell + max(cell, patch) <= w
    if not fits:
        with pytest.raises(ValueError, match="patch"):
            ops.patch_grid(images, (gy, gx), cell, patch, jitter=jitter, seed=seed)
        return
    out = ops.patch_grid(images, (gy, gx), cell, patch, jitter=jitter, seed=seed)
    assert out.tiles.shape == (n, gy * gx, patch, patch, c)
    for i in range(n):
        for t in range(gy * gx):
            y, x = out.positions[i, t]
            np.testing.assert_array_equal(out.tiles[i, t], images[i, y : y + patch, x : x + patch])


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 60),
    w=st.integers(1, 60),
    patch=st.integers(1, 12),
    gap=st.integers(0, 8),
    jitter=st.integers(0, 4),
    drop=st.booleans(),
    c=st.sampled_from([1, 3]),
)
def test_relative_property(h, w, patch, gap, jitter, drop, c):
    images = np.full((2, h, w, c), 7, np.uint8)
    try:
        out = ops.relative_patches(images, patch, gap, jitter, drop_colors=drop, seed=0)
    except ValueError as error:
        assert str(error).split(":")[0] in {"images", "drop_colors"}
        return
    assert out.centre.shape == (2, patch, patch, c)
    assert (out.positions >= 0).all()
    assert (out.positions[..., 0] + patch <= h).all() and (out.positions[..., 1] + patch <= w).all()
