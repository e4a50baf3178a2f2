"""Geometric pretext-task ops: patch grids, jigsaw puzzles, relative patches, rotations.

All functions take a uint8 batch ``(N, H, W, C)`` (C = 1 or 3; torch tensors are accepted and
converted; non-contiguous arrays are copied), run in the native extension with the GIL released
on selfsup's thread pool, and draw the randomness of sample ``i`` from the stream
``(seed, epoch, indices[i])``: the same inputs give the same bytes whatever the thread count.
Every random choice can also be passed explicitly (``labels=``, ``positions=``, ``k=``) to replay
or to test against a reference.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from selfsup import _native
from selfsup.ops._common import as_array, as_int64, check_epoch, pair, resolve_seed

U8Array = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
F32Array = npt.NDArray[np.float32]


class PatchGrid(NamedTuple):
    tiles: U8Array
    """``(N, gy·gx, patch, patch, C)`` uint8, row-major over the grid."""
    positions: I64Array
    """``(N, gy·gx, 2)`` top-left ``(y, x)`` of each tile in its image."""


class Jigsaw(NamedTuple):
    tiles: U8Array | F32Array
    """``(N, T, patch, patch, C)``; slot ``k`` holds source tile ``permutations[label][k]``.
    float32 when standardised."""
    labels: I64Array
    """``(N,)`` index of the permutation applied."""
    positions: I64Array
    """``(N, T, 2)`` positions of the unshuffled tiles, row-major."""


class RelativePair(NamedTuple):
    centre: U8Array
    """``(N, patch, patch, C)`` the centre patch."""
    neighbour: U8Array
    """``(N, patch, patch, C)`` one of its 8 neighbours."""
    labels: I64Array
    """``(N,)`` where the neighbour lies, 0–7 row-major around the centre (``0 1 2 / 3 · 4 / 5 6 7``)."""
    positions: I64Array
    """``(N, 2, 2)`` top-left ``(y, x)`` of the centre and the neighbour."""


class Rotated(NamedTuple):
    images: U8Array
    """``(M, H', W', C)`` rotated images (``M = 4N`` for mode "all")."""
    labels: I64Array
    """``(M,)`` quarter turns ``k``: the image was rotated by 90°·k counter-clockwise."""


def patch_grid(
    images: Any,
    grid: int | tuple[int, int] = (3, 3),
    cell: int = 85,
    patch: int = 64,
    *,
    jitter: bool = True,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
    positions: Any = None,
) -> PatchGrid:
    """Cut a grid of square tiles out of every image.

    Cell ``(r, q)`` starts at ``origin + (r·cell, q·cell)``; its tile sits at a random offset in
    ``[0, cell − patch]`` (jitter) or centred. ``cell > patch`` leaves gaps between tiles (Noroozi &
    Favaro's 255-px crop: ``grid=3, cell=85, patch=64``; arXiv:1603.09246); ``cell < patch`` gives
    overlapping grids (CPC, arXiv:1807.03748: ``grid=7, cell=32, patch=64`` on 256 px). The grid spans
    ``(g − 1)·cell + max(cell, patch)`` pixels per axis; its origin is random (jitter) or centred.

    Args:
        images: uint8 ``(N, H, W, C)``.
        grid: ``(gy, gx)`` cells, or one int for a square grid.
        cell: distance between neighbouring cells, pixels.
        patch: tile side, pixels.
        jitter: random grid origin and tile offsets; centred when False.
        seed, epoch, indices: the random stream of sample ``i`` is ``(seed, epoch, indices[i])``;
            ``indices`` defaults to ``0..N-1`` and ``seed=None`` draws a fresh seed.
        positions: int ``(N, gy·gx, 2)`` explicit tile corners; overrides the random layout.

    Returns:
        :class:`PatchGrid` with ``tiles (N, gy·gx, patch, patch, C)`` and ``positions``.

    Raises:
        TypeError: ``images`` is not a uint8 array.
        ValueError: wrong ndim, empty batch, grid larger than the images, tile outside the image.

    Example:
        >>> import numpy as np, selfsup.ops as ops
        >>> out = ops.patch_grid(np.zeros((2, 255, 255, 3), np.uint8), seed=0)
        >>> out.tiles.shape
        (2, 9, 64, 64, 3)
    """
    gy, gx = pair(grid, "grid")
    tiles, pos = _native.patch_grid(
        as_array(images), (gy, gx), cell, patch, jitter, resolve_seed(seed), check_epoch(epoch),
        as_int64(indices, "indices"), as_int64(positions, "positions"),
    )
    return PatchGrid(tiles, pos)


def jigsaw_permutations(
    count: int = 100, tiles: int = 9, *, seed: int = 0, criterion: Literal["maxmin", "maxmean"] = "maxmin"
) -> I64Array:
    """A permutation set for jigsaw puzzles chosen greedily for large Hamming distances.

    The first permutation is drawn from ``seed``; each next one is the remaining permutation of
    ``0..tiles-1`` farthest from the chosen set: largest *minimum* Hamming distance, ties broken by
    the larger total distance ("maxmin"), or the largest *mean* distance ("maxmean", the selection
    of Noroozi & Favaro's released code, arXiv:1603.09246 §3.1). For 100 permutations of 9 tiles the
    mean pairwise distance is above 8 and the minimum well above 2.

    Returns:
        int64 ``(count, tiles)``.

    Raises:
        ValueError: ``count`` < 1 or larger than ``tiles!``; ``tiles`` outside 2..10; unknown criterion.
    """
    return _native.jigsaw_permutations(count, tiles, resolve_seed(seed), criterion)


def jigsaw(
    images: Any,
    permutations: Any,
    grid: int | tuple[int, int] = (3, 3),
    cell: int = 85,
    patch: int = 64,
    *,
    jitter: bool = True,
    channel_jitter: int = 0,
    standardize: bool = False,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
    labels: Any = None,
    positions: Any = None,
) -> Jigsaw:
    """Jigsaw puzzles (Noroozi & Favaro 2016, arXiv:1603.09246).

    Tiles are cut as in :func:`patch_grid`, a permutation ``perm = permutations[label]`` is drawn
    uniformly, and slot ``k`` of the puzzle receives source tile ``perm[k]``. The gaps between
    cells and the random tile offsets remove edge-continuity shortcuts; ``channel_jitter=j`` reads
    each colour channel of a tile from a position shifted by up to ``j`` pixels (clamped to the
    image), against chromatic aberration; ``standardize`` returns float32 tiles with zero mean and
    unit (population) standard deviation per tile and channel, as in the paper's training code.

    Args:
        images: uint8 ``(N, H, W, C)``; for the paper's setting, 255-px crops.
        permutations: int ``(count, gy·gx)``, e.g. from :func:`jigsaw_permutations`.
        labels: int ``(N,)`` explicit permutation indices; positions: int ``(N, T, 2)``.

    Returns:
        :class:`Jigsaw` ``(tiles, labels, positions)``.

    Raises:
        ValueError: a row of ``permutations`` is not a permutation, shapes do not match the grid,
            labels out of range, grid larger than the images.

    Example:
        >>> import numpy as np, selfsup.ops as ops
        >>> perms = ops.jigsaw_permutations(10)
        >>> puzzle = ops.jigsaw(np.zeros((4, 255, 255, 3), np.uint8), perms, seed=0)
        >>> puzzle.tiles.shape, puzzle.labels.shape
        ((4, 9, 64, 64, 3), (4,))
    """
    gy, gx = pair(grid, "grid")
    if isinstance(channel_jitter, bool) or not isinstance(channel_jitter, (int, np.integer)):
        raise TypeError(f"channel_jitter: expected an int, got {channel_jitter!r}")
    tiles, labs, pos = _native.jigsaw(
        as_array(images), as_int64(permutations, "permutations"), (gy, gx), cell, patch, jitter,
        int(channel_jitter), resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices"),
        as_int64(labels, "labels"), as_int64(positions, "positions"),
    )
    if standardize:
        return Jigsaw(_native.standardize_tiles(tiles), labs, pos)
    return Jigsaw(tiles, labs, pos)


def standardize_tiles(tiles: Any) -> F32Array:
    """Per-tile, per-channel ``(x − mean) / std`` of uint8 tiles ``(..., P, P, C)`` to float32
    (population std; a constant channel is only centred)."""
    return _native.standardize_tiles(as_array(tiles))


def relative_patches(
    images: Any,
    patch: int = 96,
    gap: int = 48,
    jitter: int = 7,
    *,
    drop_colors: bool = False,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
    labels: Any = None,
    positions: Any = None,
) -> RelativePair:
    """Context prediction pairs (Doersch, Gupta & Efros 2015, arXiv:1505.05192).

    A 3×3 layout of ``patch``-px cells ``gap`` px apart is placed at a random position; the centre
    patch and the neighbour named by the label (``0 1 2 / 3 · 4 / 5 6 7``) are each shifted by up
    to ``jitter`` px. Images must be at least ``3·patch + 2·gap + 2·jitter`` on each side (398 for
    the paper's 96/48/7). ``drop_colors`` keeps one random channel per patch and replaces the other
    two with Gaussian noise of 1/100 of its standard deviation around its mean (the paper's colour
    dropping against chromatic aberration).

    Returns:
        :class:`RelativePair` ``(centre, neighbour, labels, positions)``.

    Raises:
        ValueError: images too small for the layout, labels outside 0–7, colour dropping on 1 channel.

    Example:
        >>> import numpy as np, selfsup.ops as ops
        >>> pair = ops.relative_patches(np.zeros((2, 400, 400, 3), np.uint8), seed=0)
        >>> pair.centre.shape, pair.labels.shape
        ((2, 96, 96, 3), (2,))
    """
    pairs, labs, pos = _native.relative_patches(
        as_array(images), patch, gap, jitter, drop_colors, resolve_seed(seed), check_epoch(epoch),
        as_int64(indices, "indices"), as_int64(labels, "labels"), as_int64(positions, "positions"),
    )
    return RelativePair(pairs[:, 0], pairs[:, 1], labs, pos)


def rotations(
    images: Any,
    mode: Literal["random", "all"] = "random",
    *,
    k: Any = None,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
) -> Rotated:
    """Rotation prediction (Gidaris, Singh & Komodakis 2018, arXiv:1803.07728).

    Image ``i`` is rotated by ``90°·k`` counter-clockwise, ``numpy.rot90``'s convention.
    ``mode="random"`` draws one ``k`` per image; ``mode="all"`` returns the four rotations of every
    image, ``(4N, ...)`` ordered ``image 0: k=0,1,2,3, image 1: ...`` (the paper trains on all four
    at once); explicit ``k`` (int ``(N,)``) rotates as given.

    Raises:
        ValueError: unknown mode, ``k`` outside 0–3, non-square images with odd turns mixed with even.

    Example:
        >>> import numpy as np, selfsup.ops as ops
        >>> out = ops.rotations(np.zeros((3, 32, 32, 3), np.uint8), mode="all")
        >>> out.images.shape, out.labels.tolist()[:4]
        ((12, 32, 32, 3), [0, 1, 2, 3])
    """
    native_mode = "given" if k is not None else mode
    if native_mode not in ("random", "all", "given"):
        raise ValueError(f"mode: expected 'random' or 'all', got {mode!r}")
    imgs, labs = _native.rotations(
        as_array(images), native_mode, resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices"), as_int64(k, "k")
    )
    return Rotated(imgs, labs)
