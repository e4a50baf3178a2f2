"""Same (seed, epoch, index) -> same bytes: across thread counts, batch layouts and forked workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import selfsup.ops as ops
from conftest import random_images

PERMS = ops.jigsaw_permutations(20, 9, seed=0)

OPS: dict[str, Callable[..., tuple[np.ndarray, ...]]] = {
    "patch_grid": lambda x, **kw: ops.patch_grid(x, grid=3, cell=20, patch=16, **kw),
    "jigsaw": lambda x, **kw: ops.jigsaw(x, PERMS, grid=3, cell=20, patch=16, channel_jitter=1, **kw),
    "relative": lambda x, **kw: ops.relative_patches(x, patch=16, gap=4, jitter=2, drop_colors=True, **kw),
    "rotations": lambda x, **kw: ops.rotations(x, **kw),
    "corrupt": lambda x, **kw: ops.corrupt(x, **kw),
    "apply_mask_noise": lambda x, **kw: (
        ops.apply_mask(x, ops.inpaint_masks(len(x), x.shape[1:3], "region", seed=3, indices=kw.get("indices")), "noise", **kw),
    ),
}


@pytest.fixture
def threads() -> Iterator[None]:
    before = ops.get_num_threads()
    yield
    ops.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(OPS))
def test_thread_count_does_not_change_bytes(rng, name, threads):
    images = random_images(rng, 300, 64, 64)
    results = []
    for n in (1, 2, 3):
        ops.set_num_threads(n)
        assert ops.get_num_threads() == n
        results.append(OPS[name](images, seed=42, epoch=3))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(OPS))
def test_sample_depends_only_on_its_index(rng, name):
    images = random_images(rng, 6, 64, 64)
    indices = np.array([10, 11, 12, 13, 14, 15])
    batch = OPS[name](images, seed=1, epoch=2, indices=indices)
    single = OPS[name](images[3:4], seed=1, epoch=2, indices=indices[3:4])
    for a, b in zip(batch, single):
        np.testing.assert_array_equal(a[3:4] if a.shape[0] == 6 else a, b)
    other_epoch = OPS[name](images, seed=1, epoch=3, indices=indices)
    other_seed = OPS[name](images, seed=2, epoch=2, indices=indices)
    assert any(not np.array_equal(a, b) for a, b in zip(batch, other_epoch))
    assert any(not np.array_equal(a, b) for a, b in zip(batch, other_seed))


def test_set_num_threads_rejects_nonpositive():
    with pytest.raises(ValueError, match="threads"):
        ops.set_num_threads(0)


def test_env_var_sizes_the_pool():
    code = "import selfsup.ops as o; print(o.get_num_threads())"
    env = {"SELFSUP_NUM_THREADS": "3", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "3", out.stderr
    env["SELFSUP_NUM_THREADS"] = "many"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "SELFSUP_NUM_THREADS" in out.stderr


DATALOADER_SCRIPT = textwrap.dedent(
    """
    import numpy as np, torch
    import selfsup.ops as ops

    images = np.random.default_rng(0).integers(0, 256, (32, 64, 64, 3), dtype=np.uint8)
    perms = ops.jigsaw_permutations(20, 9, seed=0)

    class Puzzles(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)
        def __getitem__(self, i):
            out = ops.jigsaw(images[i:i+1], perms, grid=3, cell=20, patch=16, seed=7, epoch=1, indices=[i])
            return out.tiles[0], out.labels[0]

    # warm the native pool in the parent so its threads exist when the workers fork
    main = ops.jigsaw(images, perms, grid=3, cell=20, patch=16, seed=7, epoch=1)
    loader = torch.utils.data.DataLoader(Puzzles(), batch_size=8, num_workers=2, multiprocessing_context="fork")
    tiles = np.concatenate([t.numpy() for t, _ in loader])
    labels = np.concatenate([l.numpy() for _, l in loader])
    assert np.array_equal(tiles, main.tiles) and np.array_equal(labels, main.labels)
    print("same bytes")
    """
)


def test_forked_dataloader_workers_give_the_same_bytes():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", DATALOADER_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "same bytes" in out.stdout
