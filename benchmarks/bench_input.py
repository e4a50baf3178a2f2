"""The input pipeline end to end: a folder of photo-sized JPEGs → SimCLR's two views, measured in one run
against torchvision's ``ImageFolder`` + v2 transforms + ``DataLoader`` with the same number of workers.

The folder holds JPEGs (quality 90) of random crops of the scikit-image sample photos, 400–600 px
on the long side, aspect ratios 0.6–1 (written once under ``--root`` and reused). Parts:

1. **The data path alone**: images/s (one image = both views) of SimCLR two views at 224 and at
   96 (RandomResizedCrop (0.08, 1), flip, ColorJitter(.4, .4, .4, .1) p=.8, grayscale p=.2, blur
   k=23 p=.5 at 224, normalised float32), with 1 and 2 processes: selfsup's ``TrainLoader``
   (the trainer's loader: one native decode call and one augmentation call per batch) with
   ``workers=k`` forked workers, and in the main process with ``k`` native threads; torchvision
   with ``num_workers=k``. Best of ``--repeat`` passes after a warm-up pass each.
2. **Hidden behind compute**: step time of SimCLR on torchvision's resnet18 at 96 px, batch 64,
   fed by the real data path (``--workers``) against the same step on one ready-made batch.
3. **Shards**: reading every sample's bytes from WebDataset shards, selfsup's indexed reader in a
   shuffled order against the ``webdataset`` package's sequential iteration.
4. **Time to first step and peak RSS** of ``Trainer`` on folders of ``--sizes`` images, each in a
   fresh process: from the folder scan to the first optimizer step, and the peak resident memory
   over a few steps.

    python benchmarks/bench_input.py [--root /tmp/selfsup-bench-photos] [--sizes 1000,20000] [--only path,shards,step,first]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import print_table  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_photo_jpegs(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEGs under ``root/{count}`` (kept for the next run)."""
    from PIL import Image

    from selfsup.data import sample_photos

    folder = root / str(count)
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    photos = [Image.fromarray(p) for p in sample_photos()]
    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = photos[i % len(photos)]
        w, h = photo.size
        side = int(rng.integers(min(w, h) // 2, min(w, h) + 1))
        left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        long_side, aspect = int(rng.integers(400, 601)), float(rng.uniform(0.6, 1.0))
        size = (long_side, int(long_side * aspect)) if i % 2 else (int(long_side * aspect), long_side)
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        photo.crop((left, top, left + side, top + side)).resize(size, Image.BILINEAR).save(sub / f"{i:06d}.jpg", quality=90)
        if i % 1000 == 999:
            print(f"\rwrote {i + 1}/{count} JPEGs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    marker.touch()
    return folder


def torchvision_loader(folder: Path, size: int, workers: int, batch: int) -> object:
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    steps = [
        v2.ToImage(),
        v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(0.2),
    ]
    if size >= 64:
        steps.append(v2.RandomApply([v2.GaussianBlur(23, (0.1, 2.0))], p=0.5))
    view = v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])

    class TwoViews:
        def __call__(self, image: object) -> tuple[object, object]:
            return view(image), view(image)

    dataset = datasets.ImageFolder(str(folder), transform=TwoViews())
    return DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


def rate(loader: object, batches: int, batch: int) -> float:
    """Steady-state images/s over ``batches`` batches after the first (worker start-up excluded);
    the iterator, and any workers, are shut down before returning."""
    it = iter(loader)  # type: ignore[call-overload]
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    del it
    return batches * batch / elapsed


def data_path(args: argparse.Namespace, folder: Path) -> None:
    import torch

    import selfsup.ops as ops
    from selfsup.data import BatchPipeline, ImageFolder, TrainLoader
    from selfsup.methods.simclr import SimCLR
    from selfsup.models.backbones import small_resnet

    torch.set_num_threads(1)
    source = ImageFolder(folder)
    rows = []
    for size in (224, 96):
        pipeline = BatchPipeline(SimCLR(small_resnet(width=4), image_size=size), seed=0, takes_originals=True)
        for k in (1, 2):
            best = {"workers": 0.0, "threads": 0.0, "peer": 0.0}
            for trial in range(args.repeat):
                start = 1 + trial * (args.batches + 1)
                stop = start + args.batches + 1
                ops.set_num_threads(1)
                ours_workers = rate(TrainLoader(source, pipeline, args.batch, seed=0, start=start, stop=stop, workers=k), args.batches, args.batch)
                ops.set_num_threads(k)
                ours_threads = rate(TrainLoader(source, pipeline, args.batch, seed=0, start=start, stop=stop), args.batches, args.batch)
                theirs = rate(torchvision_loader(folder, size, k, args.batch), args.batches, args.batch)
                best = {"workers": max(best["workers"], ours_workers), "threads": max(best["threads"], ours_threads), "peer": max(best["peer"], theirs)}
            rows.append([f"{size}", f"{k}", f"{best['workers']:.0f}", f"{best['threads']:.0f}", f"{best['peer']:.0f}",
                         f"{best['workers'] / best['peer']:.2f}x", f"{best['threads'] / best['peer']:.2f}x"])
    print(f"\nData path: folder of {args.path_images} photo JPEGs -> SimCLR two views, batches of {args.batch}, images/s "
          f"(steady state, best of {args.repeat} passes of {args.batches} batches)")
    print_table(["size", "procs", "selfsup workers=k", "selfsup k threads", "torchvision workers=k", "ratio (workers)", "ratio (threads)"], rows)


def step_overlap(args: argparse.Namespace, folder: Path) -> None:
    import torch

    from selfsup.data import ImageFolder
    from selfsup.methods.simclr import SimCLR
    from selfsup.models.backbones import resnet18
    from selfsup.training import TrainConfig, Trainer

    def model() -> SimCLR:
        torch.manual_seed(0)
        return SimCLR(resnet18(), image_size=96)

    steps = args.steps
    config = TrainConfig(steps=10**6, batch_size=args.step_batch, lr=0.01, progress=False, checkpoint_every=10**6, log_every=10**6,
                         workers=args.workers, prefetch=2)
    import copy
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model(), ImageFolder(folder), config, out)
        initial = copy.deepcopy(trainer.method.state_dict())
        batches = iter(trainer.loader())
        ready = next(batches)

        def timed(get_batch: object) -> float:
            """Median step time from the same initial weights (a fresh optimizer each time)."""
            trainer.method.load_state_dict(initial)
            optimizer = torch.optim.SGD(trainer.method.parameters(), lr=0.01, momentum=0.9)
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                batch = get_batch()  # type: ignore[operator]
                loss = trainer.method.training_step(batch.tensors)["loss"]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                times.append(time.perf_counter() - start)
            return float(np.median(times[1:]))

        fixed = min(timed(lambda: ready), timed(lambda: ready))
        streamed = min(timed(lambda: next(batches)), timed(lambda: next(batches)))
        del batches
    print(f"\nSimCLR step, torchvision resnet18 at 96 px, batch {args.step_batch}, best of two medians of {steps - 1} steps, "
          f"{torch.get_num_threads()} torch threads, data path workers={args.workers}")
    print_table(["input", "s/step", "vs ready-made"], [["real data path", f"{streamed:.3f}", f"{streamed / fixed:.2f}x"],
                                                    ["ready-made tensors", f"{fixed:.3f}", ""]])


FIRST_STEP = """
import json, resource, sys, time
start = time.perf_counter()
import torch
from selfsup.data import ImageFolder
from selfsup.methods.simclr import SimCLR
from selfsup.models.backbones import small_resnet
from selfsup.training import TrainConfig, Trainer
scan_start = time.perf_counter()
folder = ImageFolder(sys.argv[1])
scan = time.perf_counter() - scan_start
method = SimCLR(small_resnet(width=16), image_size=96)
trainer = Trainer(method, folder, TrainConfig(steps=int(sys.argv[3]), batch_size=64, progress=False, log_every=1, workers=int(sys.argv[4])), sys.argv[2])
first = []
orig = trainer.method.on_step_end
def on_step_end(step, total):
    if step == 1:
        first.append(time.perf_counter() - start)
    orig(step, total)
trainer.method.on_step_end = on_step_end
trainer.fit()
print(json.dumps({"first_step_s": first[0], "scan_s": scan, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def first_step(args: argparse.Namespace) -> None:
    import tempfile

    rows = []
    for count in args.sizes:
        folder = write_photo_jpegs(Path(args.root), count)
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, "-c", FIRST_STEP, str(folder), out, "5", str(args.workers)],
                                  capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append([f"{count}", f"{result['scan_s']:.2f}", f"{result['first_step_s']:.1f}", f"{result['peak_rss_mb']:.0f}"])
    print(f"\nTrainer on a folder (SimCLR, small_resnet, 96 px, batch 64, workers={args.workers}), fresh process each")
    print_table(["images", "folder scan (s)", "to first step (s, from interpreter start)", "peak RSS over 5 steps (MB)"], rows)


def shard_reading(args: argparse.Namespace, folder: Path) -> None:
    """Reading every sample's bytes from WebDataset shards: selfsup's indexed reader in a shuffled
    order (what training does) against the ``webdataset`` package's sequential iteration."""
    import webdataset as wds

    from selfsup.data import ImageFolder, TarShards, write_shards

    out = Path(args.root) / f"shards-{args.path_images}"
    if not any(out.glob("train-*.tar")):
        write_shards(ImageFolder(folder), out, shard_size=100)
    pattern = str(out / "train-*.tar")
    rows = []
    best = {"index": float("inf"), "ours": float("inf"), "wds": float("inf")}
    for _ in range(args.repeat):
        start = time.perf_counter()
        shards = TarShards(pattern)
        indexed = time.perf_counter()
        order = np.random.default_rng(0).permutation(len(shards))
        total = sum(len(b) for k in range(0, len(order), 64) for b in shards.encoded([int(i) for i in order[k : k + 64]]))
        done = time.perf_counter()
        samples = list(wds.WebDataset(sorted(str(p) for p in out.glob("train-*.tar")), shardshuffle=False))
        finished = time.perf_counter()
        assert len(samples) == len(shards)
        best = {"index": min(best["index"], indexed - start), "ours": min(best["ours"], done - start), "wds": min(best["wds"], finished - done)}
    megabytes = total / 1e6
    rows.append(["selfsup TarShards (index + shuffled reads)", f"{best['index']:.3f}", f"{len(shards) / best['ours']:.0f}",
                 f"{megabytes / best['ours']:.0f}", f"{best['wds'] / best['ours']:.2f}x"])
    rows.append(["webdataset.WebDataset (sequential)", "", f"{len(shards) / best['wds']:.0f}", f"{megabytes / best['wds']:.0f}", ""])
    print(f"\nReading {len(shards)} samples ({megabytes:.0f} MB) from {len(list(out.glob('train-*.tar')))} shards, best of {args.repeat}")
    print_table(["reader", "index (s)", "samples/s", "MB/s", "ours/peer"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/tmp/selfsup-bench-photos", help="where the generated JPEG folders are kept")
    parser.add_argument("--path-images", type=int, default=1000, help="images in the folder of part 1 and 2")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=8, help="batches per timed pass")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1, help="loader workers of parts 2 and 3")
    parser.add_argument("--sizes", type=lambda t: [int(v) for v in t.split(",")], default=[1000, 20000])
    parser.add_argument("--only", default="path,shards,step,first")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    folder = write_photo_jpegs(Path(args.root), args.path_images)
    if "path" in parts:
        data_path(args, folder)
    if "shards" in parts:
        shard_reading(args, folder)
    if "step" in parts:
        step_overlap(args, folder)
    if "first" in parts:
        first_step(args)


if __name__ == "__main__":
    main()
