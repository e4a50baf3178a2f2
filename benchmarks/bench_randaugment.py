"""RandAugment(2, 9): selfsup's batched native step vs torchvision v2 per image, measured in one run.

Inputs are crops of the scikit-image sample photos (uint8). Ours runs the whole batch in one
native call (uint8 HWC in, uint8 CHW out); torchvision's ``v2.RandAugment(num_ops=2,
magnitude=9)`` is applied per image on uint8 CHW tensors, the way a DataLoader worker would.
Both draw the same distribution of ops, magnitudes and signs (the tests check each op against
torchvision's own). Also shown: ours with FixMatch's strong setting (random magnitude per op,
Cutout 0.5), for which torchvision has no equivalent. Prints images/s on one thread (torch and
selfsup both limited to one), ours on all cores, and the ratio ours/torchvision on one thread.

    python benchmarks/bench_randaugment.py [--batch 256] [--sizes 32 224] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_time, print_table  # noqa: E402

import selfsup.ops as ops  # noqa: E402
import selfsup.transforms as T  # noqa: E402
from selfsup.data import photo_crops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch
    from torchvision.transforms import v2

    cores = os.cpu_count() or 1
    before = ops.get_num_threads()
    rows = []
    for size in args.sizes:
        images = photo_crops(size, args.batch, seed=0)
        tensors = [torch.from_numpy(x).permute(2, 0, 1).contiguous() for x in images]
        n = len(images)
        ours = T.Compose([T.RandAugment(num_ops=2, magnitude=9)])
        strong = T.Compose([T.RandAugment(num_ops=2, magnitude=None, cutout=0.5)])
        tv = v2.RandAugment(num_ops=2, magnitude=9)

        def rate(fn: Callable[[], object]) -> float:
            return n / best_time(fn, repeat=args.repeat)

        torch.set_num_threads(1)
        ops.set_num_threads(1)
        r_tv = rate(lambda: [tv(x) for x in tensors])
        r_ours = rate(lambda: ours(images, seed=0))
        r_strong = rate(lambda: strong(images, seed=0))
        ops.set_num_threads(cores)
        r_ours_all = rate(lambda: ours(images, seed=0))
        r_strong_all = rate(lambda: strong(images, seed=0))
        ops.set_num_threads(before)
        rows += [
            [f"{size}x{size}", "selfsup RandAugment(2, 9)", f"{r_ours:.0f}", f"{r_ours_all:.0f}", f"{r_ours / r_tv:.1f}x"],
            [f"{size}x{size}", "selfsup FixMatch strong (2, random) + Cutout", f"{r_strong:.0f}", f"{r_strong_all:.0f}", f"{r_strong / r_tv:.1f}x"],
            [f"{size}x{size}", "torchvision v2 RandAugment(2, 9), per image", f"{r_tv:.0f}", "-", ""],
        ]
    print(f"RandAugment on uint8 images, {args.batch} per batch, images/s; {cores} cores")
    print_table(["size", "pipeline", "1 thread", f"{cores} threads", "ours/torchvision (1 thr)"], rows)


if __name__ == "__main__":
    main()
