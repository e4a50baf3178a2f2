"""Shuffle & Learn batches: selfsup's native tuple sampling + one augmentation draw per tuple vs the
same done with numpy and torchvision v2 on decoded frames, measured in one run.

Input: moving-digits clips ``(N, 16, 48, 48, 3)`` uint8, already decoded. Ours: one native call
ranks windows by frame differences, draws the tuples and copies their frames, then one native
call augments all frames with one stream per tuple (random resized crop 60–100 % to 32 px, colour
jitter with p = 0.8, normalisation). Peer: the same rule in numpy per clip (frame differences,
window ranking, the five frames, the tuple) and torchvision v2 on the tuple's three frames as one
video tensor ``(3, C, H, W)``, which v2 transforms with one parameter draw — the consistent
augmentation a temporal method needs. Prints frames/s on one thread each, ours on all cores, and
the ratio ours/peer on one thread.

    python benchmarks/bench_tuples.py [--clips 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_time, print_table  # noqa: E402

import numpy as np  # noqa: E402

import selfsup.ops as ops  # noqa: E402
from selfsup.data.moving_digits import moving_digits  # noqa: E402
from selfsup.methods.shuffle_learn import ShuffleLearn  # noqa: E402
from selfsup.models import small_resnet  # noqa: E402


def numpy_tuple(clip: np.ndarray, rng: np.random.Generator, window: int = 10, top: float = 0.5, positive: float = 0.25) -> np.ndarray:
    """The Shuffle & Learn rule of :func:`selfsup.ops.shuffle_learn_tuples` in numpy for one clip."""
    motion = np.abs(np.diff(clip.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    sums = np.convolve(motion, np.ones(window - 1), mode="valid")
    ranked = np.argsort(-sums, kind="stable")
    start = ranked[rng.integers(max(1, int(np.ceil(len(ranked) * top))))]
    a, b, c, d, e = np.sort(start + rng.choice(window, 5, replace=False))
    if rng.random() < positive:
        shown = [b, c, d] if rng.random() < 0.5 else [d, c, b]
    else:
        shown = [b, a, d] if rng.random() < 0.5 else [b, e, d]
    return clip[shown]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    clips = moving_digits(args.clips, frames=16, seed=0).clips
    n = len(clips)
    method = ShuffleLearn(small_resnet(width=8), image_size=32)
    indices = np.arange(n)
    peer_transform = v2.Compose([
        v2.RandomResizedCrop(32, scale=(0.6, 1.0), antialias=True),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.05)], p=0.8),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([0.5] * 3, [0.25] * 3),
    ])

    def ours() -> object:
        return method.make_batch(clips, seed=0, epoch=0, indices=indices)

    def peer() -> object:
        rng = np.random.default_rng(0)
        out = []
        for clip in clips:
            frames = torch.from_numpy(numpy_tuple(clip, rng)).permute(0, 3, 1, 2)
            out.append(peer_transform(tv_tensors.Video(frames)))
        return torch.stack(out)

    cores = os.cpu_count() or 1
    before = ops.get_num_threads()
    torch.set_num_threads(1)
    ops.set_num_threads(1)
    frames = 3 * n
    r_peer = frames / best_time(peer, repeat=args.repeat)
    r_ours = frames / best_time(ours, repeat=args.repeat)
    ops.set_num_threads(cores)
    r_ours_all = frames / best_time(ours, repeat=args.repeat)
    ops.set_num_threads(before)
    print(f"Shuffle & Learn tuples + consistent augmentation, {n} clips of 16x48x48 per batch, frames/s; {cores} cores")
    print_table(
        ["pipeline", "1 thread", f"{cores} threads", "ours/peer (1 thr)"],
        [
            ["selfsup native tuples + augmentation", f"{r_ours:.0f}", f"{r_ours_all:.0f}", f"{r_ours / r_peer:.1f}x"],
            ["numpy tuples + torchvision v2 per tuple", f"{r_peer:.0f}", "-", ""],
        ],
    )


if __name__ == "__main__":
    main()
