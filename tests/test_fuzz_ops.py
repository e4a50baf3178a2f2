"""A fuzz pass over every public op and transform: wrong dtypes and ranks, empty and huge shapes,
huge sizes and injected parameters, non-contiguous and read-only arrays, bad seeds and indices.
Each case runs in a child process, so an abort or a crash fails the test instead of the run; every
call must return or raise ``TypeError``/``ValueError``/``MemoryError`` naming the problem —
never ``PanicException`` (which ``except Exception`` does not catch)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CASES: dict[str, str] = {
    # dtypes, ranks, empty and odd shapes
    "float images": "ops.rotations(np.zeros((2, 8, 8, 3), np.float32))",
    "3-d images": "ops.rotations(np.zeros((8, 8, 3), np.uint8))",
    "empty batch": "ops.rgb_to_lab(np.zeros((0, 8, 8, 3), np.uint8))",
    "zero-width images": "ops.patch_grid(np.zeros((2, 8, 0, 3), np.uint8), grid=2, cell=4, patch=3)",
    "five channels": "ops.corrupt(np.zeros((2, 16, 16, 5), np.uint8))",
    "list input": "ops.rotations([[1, 2], [3, 4]])",
    "None input": "ops.jigsaw(None, ops.jigsaw_permutations(4))",
    "read-only, strided": "a = np.zeros((4, 64, 64, 3), np.uint8)[:, ::2, ::2]; a.flags.writeable = False; ops.rotations(a)",
    "broadcast": "ops.rgb_to_lab(np.broadcast_to(np.uint8(7), (2, 8, 8, 3)))",
    # huge sizes and grids
    "huge inpaint batch": "ops.inpaint_masks(2**40, 64)",
    "huge inpaint size": "ops.inpaint_masks(2, 2**31)",
    "huge grid": "ops.patch_grid(np.zeros((1, 16, 16, 3), np.uint8), grid=2**32, cell=4, patch=3)",
    "huge cell": "ops.patch_grid(np.zeros((1, 16, 16, 3), np.uint8), grid=2, cell=2**62, patch=3)",
    "huge relative patch": "ops.relative_patches(np.zeros((1, 16, 16, 3), np.uint8), patch=2**62, gap=2**62, jitter=1)",
    "negative patch": "ops.relative_patches(np.zeros((1, 16, 16, 3), np.uint8), patch=-4, gap=1, jitter=1)",
    "many permutations": "ops.jigsaw_permutations(10**12, 9)",
    "huge tile count": "ops.jigsaw_permutations(4, 2**40)",
    "huge resize": "T.Compose([T.Resize(100000)])(np.zeros((4, 8, 8, 3), np.uint8), seed=0)",
    "huge crop": "T.Compose([T.RandomResizedCrop(2**40)])(np.zeros((2, 8, 8, 3), np.uint8), seed=0)",
    "huge blur kernel": "T.Compose([T.GaussianBlur(2**31 + 1)])(np.zeros((2, 8, 8, 3), np.uint8), seed=0)",
    # injected parameters
    "injected crop 2**70": "T.Compose([T.RandomResizedCrop(4)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.array([[1, 2.0**70, 2.0**70, 4, 4]]))",
    "injected crop height 2**70": "T.Compose([T.RandomResizedCrop(4)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.array([[1, 0, 0, 2.0**70, 4]]))",
    "injected NaN crop": "T.Compose([T.RandomResizedCrop(4)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.array([[1, np.nan, 0, 4, 4]]))",
    "injected negative crop": "T.Compose([T.RandomResizedCrop(4)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.array([[1, -5, -5, 4, 4]]))",
    "injected jitter factors": "T.Compose([T.ColorJitter(0.4, 0.4, 0.4, 0.1)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.array([[1, 0, 1, 2, 3, 2.0**70, 1e300, -5, 9]]))",
    "injected erase box": "T.Compose([T.RandomErasing(1.0)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.array([[1, 2.0**70, 2.0**70, 2.0**70, 2.0**70]]))",
    "injected params of wrong width": "T.Compose([T.RandomResizedCrop(4)]).run(np.zeros((1, 8, 8, 3), np.uint8), params=np.zeros((1, 1)))",
    "rotation k out of range": "ops.rotations(np.zeros((2, 8, 8, 3), np.uint8), k=np.array([7, -1]))",
    "jigsaw labels out of range": "ops.jigsaw(np.zeros((1, 255, 255, 3), np.uint8), ops.jigsaw_permutations(4), labels=np.array([99]))",
    # seeds, epochs and indices
    "negative seed": "ops.corrupt(np.zeros((2, 16, 16, 3), np.uint8), seed=-1)",
    "huge seed": "ops.corrupt(np.zeros((2, 16, 16, 3), np.uint8), seed=2**70)",
    "negative epoch": "ops.corrupt(np.zeros((2, 16, 16, 3), np.uint8), seed=0, epoch=-3)",
    "negative indices": "ops.corrupt(np.zeros((2, 16, 16, 3), np.uint8), seed=0, indices=np.array([-1, 0]))",
    "indices of wrong length": "ops.corrupt(np.zeros((2, 16, 16, 3), np.uint8), seed=0, indices=np.arange(5))",
    "float indices": "ops.corrupt(np.zeros((2, 16, 16, 3), np.uint8), seed=0, indices=np.array([0.5, 1.5]))",
    # colour spaces
    "NaN Lab": "ops.lab_to_rgb(np.full((1, 2, 2, 3), np.nan, np.float32))",
    "ab of wrong width": "ops.encode_ab(np.zeros((4, 3), np.float32))",
    "zero sigma": "ops.encode_ab(np.zeros((4, 2), np.float32), sigma=0)",
    "huge neighbours": "ops.encode_ab(np.zeros((4, 2), np.float32), neighbours=2**40)",
    "huge grid bins": "ops.ab_bins(grid=2**40)",
    # decoding
    "garbage bytes": "ops.decode_images([b'\\x89PNG\\r\\n\\x1a\\n' + b'x' * 50])",
    "not a source": "ops.decode_images([3.5])",
}

RUNNER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import selfsup.ops as ops
    import selfsup.transforms as T

    try:
        exec(sys.argv[1])
        print(json.dumps({"outcome": "returned"}))
    except (TypeError, ValueError, MemoryError, OverflowError) as error:
        print(json.dumps({"outcome": type(error).__name__, "message": str(error)}))
    except BaseException as error:
        print(json.dumps({"outcome": "escaped", "type": type(error).__name__, "message": str(error)[:300]}))
    """
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fuzzed_calls_raise_clear_errors_and_never_crash(case: str):
    done = subprocess.run([sys.executable, "-c", RUNNER, CASES[case]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "escaped", result
    if result["outcome"] != "returned":
        assert ":" in result["message"] and len(result["message"]) > 10, result
