"""SimCLR two-view augmentation: selfsup vs albumentations vs torchvision v2, measured in one run.

Inputs are 256x256 crops of the scikit-image sample photos, augmented to two 224x224 views
(RandomResizedCrop (0.08, 1), flip, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2,
blur k=23 p=0.5, Normalize to float32 CHW). Prints images/s (one image = both views) on one
thread and on all cores, the ratios ours/peer, then a per-op table on one thread.

Outputs differ in layout, not in work: ours is one contiguous float32 ``(N, 3, S, S)`` tensor per
view; albumentations gives a float32 ``(3, S, S)`` tensor per image and view that is a CHW view
of HWC memory (ToTensorV2 does not copy); torchvision gives contiguous float32 ``(3, S, S)``
tensors. Ours is also measured with uint8 CHW output (no Normalize). In the per-op table ours
writes uint8 CHW batches, albumentations uint8 HWC arrays, torchvision uint8 CHW tensors.

End to end: a temporary folder of JPEGs (256x256 crops of the same photos, quality 90) read,
decoded and augmented into the two views and batched; selfsup's ImageFolder + ViewLoader in
main-process mode (one native decode call and one augment call per batch on all cores) vs
torchvision's ImageFolder (Pillow decode) + the v2 pipeline with 2 DataLoader workers. After a
warm-up epoch each (workers started), epochs alternate between the two; the best of each counts.

    python benchmarks/bench_augment.py [--batch 128] [--repeat 3] [--folder-images 256] [--only e2e]
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
import selfsup.transforms as T  # noqa: E402
from selfsup.data import photo_crops  # noqa: E402

MEAN, STD = T.IMAGENET_MEAN, T.IMAGENET_STD


def albumentations_simclr(size: int) -> Callable[[np.ndarray], object]:
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    view = A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=(0.08, 1.0)),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            A.ToGray(p=0.2),
            A.GaussianBlur(blur_limit=(23, 23), sigma_limit=(0.1, 2.0), p=0.5),
            A.Normalize(mean=MEAN, std=STD),
            ToTensorV2(),
        ]
    )
    return lambda images: [(view(image=x)["image"], view(image=x)["image"]) for x in images]


def torchvision_simclr(size: int) -> Callable[[object], object]:
    import torch
    from torchvision.transforms import v2

    view = v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(23, (0.1, 2.0))], p=0.5),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    return lambda tensors: [(view(x), view(x)) for x in tensors]


def per_op_cases(size: int) -> list[tuple[str, object, object, object]]:
    import albumentations as A
    from torchvision.transforms import v2

    return [
        ("RandomResizedCrop", T.RandomResizedCrop(size), A.RandomResizedCrop(size=(size, size), p=1.0), v2.RandomResizedCrop(size, antialias=True)),
        ("HorizontalFlip", T.RandomHorizontalFlip(1.0), A.HorizontalFlip(p=1.0), v2.RandomHorizontalFlip(1.0)),
        ("ColorJitter", T.ColorJitter(0.4, 0.4, 0.4, 0.1), A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0), v2.ColorJitter(0.4, 0.4, 0.4, 0.1)),
        ("Grayscale", T.RandomGrayscale(1.0), A.ToGray(p=1.0), v2.RandomGrayscale(1.0)),
        ("GaussianBlur k=23", T.GaussianBlur(23), A.GaussianBlur(blur_limit=(23, 23), sigma_limit=(0.1, 2.0), p=1.0), v2.GaussianBlur(23, (0.1, 2.0))),
        ("Solarize", T.RandomSolarize(128, p=1.0), A.Solarize(threshold_range=(0.5, 0.5), p=1.0), v2.RandomSolarize(128, p=1.0)),
    ]


class TwoViews:
    """torchvision's usual SimCLR wrapper: the same pipeline applied twice."""

    def __init__(self, view: Callable[[object], object]) -> None:
        self.view = view

    def __call__(self, image: object) -> tuple[object, object]:
        return self.view(image), self.view(image)


def end_to_end(args: argparse.Namespace) -> None:
    import tempfile
    import time

    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    from selfsup.data import ImageFolder, ViewLoader, write_photo_folder

    with tempfile.TemporaryDirectory() as root:
        write_photo_folder(root, count=args.folder_images, size=256, classes=4, image_format="JPEG", quality=90)
        ours = ViewLoader(ImageFolder(root), T.simclr(args.size), batch_size=args.loader_batch, seed=0)
        view = v2.Compose(
            [
                v2.ToImage(),
                v2.RandomResizedCrop(args.size, scale=(0.08, 1.0), antialias=True),
                v2.RandomHorizontalFlip(0.5),
                v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                v2.RandomGrayscale(0.2),
                v2.RandomApply([v2.GaussianBlur(23, (0.1, 2.0))], p=0.5),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        )
        peer = DataLoader(
            datasets.ImageFolder(root, transform=TwoViews(view)),
            batch_size=args.loader_batch,
            shuffle=True,
            num_workers=2,
            persistent_workers=True,
        )

        def epoch_rate(loader: object, epoch: int) -> float:
            if isinstance(loader, ViewLoader):
                loader.set_epoch(epoch)
            start = time.perf_counter()
            count = 0
            for batch in loader:  # type: ignore[attr-defined]
                count += len(batch.indices) if isinstance(batch, tuple) and hasattr(batch, "indices") else len(batch[1])
            return count / (time.perf_counter() - start)

        # a warm-up epoch each (workers start, caches fill), then alternating epochs; best of each
        epoch_rate(ours, 0)
        epoch_rate(peer, 0)
        rates: dict[str, list[float]] = {"ours": [], "peer": []}
        for epoch in range(1, 1 + args.e2e_epochs):
            rates["ours"].append(epoch_rate(ours, epoch))
            rates["peer"].append(epoch_rate(peer, epoch))
        r_ours, r_peer = max(rates["ours"]), max(rates["peer"])
    print(f"End to end: folder of {args.folder_images} JPEGs 256x256 -> two {args.size}x{args.size} SimCLR views, "
          f"batches of {args.loader_batch}, images/s (best of {args.e2e_epochs} epochs after a warm-up one)")
    print_table(
        ["pipeline", "images/s", "ours/peer"],
        [
            [f"selfsup ImageFolder + ViewLoader, main process, {ops.get_num_threads()} threads", f"{r_ours:.0f}", f"{r_ours / r_peer:.2f}x"],
            ["torchvision ImageFolder + v2, 2 DataLoader workers", f"{r_peer:.0f}", ""],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--folder-images", type=int, default=256)
    parser.add_argument("--e2e-epochs", type=int, default=2)
    parser.add_argument("--loader-batch", type=int, default=64)
    parser.add_argument("--only", choices=["all", "e2e"], default="all")
    args = parser.parse_args()
    if args.only == "e2e":
        end_to_end(args)
        return

    import cv2
    import torch

    cores = os.cpu_count() or 1
    images = photo_crops(256, args.batch, seed=0)
    tensors = [torch.from_numpy(x).permute(2, 0, 1).contiguous() for x in images]
    n = len(images)
    ours = T.simclr(args.size)
    ours_u8 = T.simclr(args.size, normalize=False)
    alb = albumentations_simclr(args.size)
    tv = torchvision_simclr(args.size)

    def rate(fn: Callable[[], object]) -> float:
        return n / best_time(fn, repeat=args.repeat)

    before = ops.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    ops.set_num_threads(1)
    r_ours_1 = rate(lambda: ours(images, seed=0))
    r_u8_1 = rate(lambda: ours_u8(images, seed=0))
    r_alb = rate(lambda: alb(images))
    r_tv = rate(lambda: tv(tensors))
    ops.set_num_threads(cores)
    r_ours_all = rate(lambda: ours(images, seed=0))
    r_u8_all = rate(lambda: ours_u8(images, seed=0))
    ops.set_num_threads(before)

    print(f"SimCLR two views, {n} images 256 -> {args.size}, images/s (one image = two views); {cores} cores")
    print_table(
        ["pipeline", "1 thread", f"{cores} threads", "ours/albumentations (1 thr)", "ours/torchvision (1 thr)"],
        [
            ["selfsup", f"{r_ours_1:.0f}", f"{r_ours_all:.0f}", f"{r_ours_1 / r_alb:.2f}x", f"{r_ours_1 / r_tv:.2f}x"],
            ["selfsup, uint8 out", f"{r_u8_1:.0f}", f"{r_u8_all:.0f}", f"{r_u8_1 / r_alb:.2f}x", f"{r_u8_1 / r_tv:.2f}x"],
            ["albumentations", f"{r_alb:.0f}", "-", "", ""],
            ["torchvision v2", f"{r_tv:.0f}", "-", "", ""],
        ],
    )
    print(f"selfsup scaling 1 -> {cores} threads: {r_ours_all / r_ours_1:.2f}x\n")

    ops.set_num_threads(1)
    crops = images[:, 16 : 16 + args.size, 16 : 16 + args.size].copy()
    crop_tensors = [torch.from_numpy(x).permute(2, 0, 1).contiguous() for x in crops]
    rows = []
    for name, mine, a_op, t_op in per_op_cases(args.size):
        src, src_t = (images, tensors) if name == "RandomResizedCrop" else (crops, crop_tensors)
        pipe = T.Compose([mine])
        r_o = rate(lambda: pipe(src, seed=0))
        r_a = rate(lambda: [a_op(image=x)["image"] for x in src])
        r_t = rate(lambda: [t_op(x) for x in src_t])
        rows.append([name, f"{r_o:.0f}", f"{r_a:.0f}", f"{r_t:.0f}", f"{r_o / r_a:.2f}x", f"{r_o / r_t:.2f}x"])
    ops.set_num_threads(before)
    print(
        f"Per op, one thread, images/s ({args.size}x{args.size} inputs; RRC from 256x256; "
        "ours writes uint8 CHW batches, albumentations uint8 HWC arrays, torchvision uint8 CHW tensors)"
    )
    print_table(["op", "selfsup", "albumentations", "torchvision v2", "ours/alb", "ours/tv"], rows)
    print()
    end_to_end(args)


if __name__ == "__main__":
    main()
