"""Temporal methods against random init on the moving digits, with the image methods' protocol.

Each method trains from its registered recipe on the training clips for the shared budget (TCN
on the same clips seen through two cameras, its multi-view form); the
frozen backbone is then probed twice on held-out clips (digits the training clips never show):
frame features (the first frame of each clip; a clip backbone sees it as a still clip) on the
digit shown, and clip features (the first three frames' features, concatenated; a clip
backbone's features of the first 8 frames) on the direction of motion. The same probes run on
the same architecture at random init (one row per architecture). Wall time and peak memory are
recorded. The report is rewritten after each method and a rerun skips the methods it already
holds, so a killed run resumes; ``--reprobe`` probes them again from their checkpoints.
``--validation V`` probes on V further clips of the training digits instead of the held-out
clips: options are chosen there, never on the held-out clips.

    python -m selfsup.experiments.temporal --out runs/temporal
    python -m selfsup.experiments.temporal --out runs/temporal-val --validation 200 --methods tcn --option tcn:loss=npairs
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.data.moving_digits import Clips, ClipSplits, load_moving_digits, moving_digits, two_camera
from selfsup.run.config import parse_value

METHODS: tuple[str, ...] = ("shuffle_learn", "odd_one_out", "tcn", "tracking", "rho_byol", "rho_simclr", "rho_moco")
MULTI_VIEW = ("tcn",)
"""Methods trained on the training clips seen through two cameras (:func:`~selfsup.data.moving_digits.two_camera`)."""


@dataclass(frozen=True)
class TemporalConfig:
    out: Path = Path("runs/temporal")
    methods: tuple[str, ...] = METHODS
    steps: int = 300
    batch_size: int = 32
    width: int = 16
    seed: int = 0
    train_clips: int = 600
    test_clips: int = 200
    device: str = "cpu"
    validation: int = 0
    """When positive: probe on this many further clips of the training digits (a validation split)."""
    options: tuple[tuple[str, str, str], ...] = ()
    """``(method, key, value)`` on top of the recipe: a run setting of :data:`RUN_KEYS`, else a method option."""
    reprobe: bool = False
    """Probe the methods the report already holds again, from their checkpoints, without training
    them again (after a change of the probe protocol); training time and memory are kept."""


RUN_KEYS = ("lr", "weight_decay", "optimizer", "warmup_steps")
"""Keys of ``--option METHOD:KEY=VALUE`` that set the run rather than the method."""


def load_splits(config: TemporalConfig) -> ClipSplits:
    """The training clips and the probe's held-out clips, or a validation split of the training
    digits' clips (:attr:`TemporalConfig.validation`)."""
    if not config.validation:
        return load_moving_digits(config.train_clips, config.test_clips, seed=config.seed)
    clips = moving_digits(config.train_clips + config.validation, split="train", seed=config.seed)
    head, tail = slice(0, config.train_clips), slice(config.train_clips, None)
    return ClipSplits(Clips(clips.clips[head], clips.labels[head], clips.directions[head]),
                      Clips(clips.clips[tail], clips.labels[tail], clips.directions[tail]))


CLIP_FRAMES = 8
"""Frames a clip backbone sees at probe time: the clip length its methods train on."""


def clip_backbone_features(backbone: nn.Module, clips: npt.NDArray[np.uint8]) -> torch.Tensor:
    """``(N, D)``: a clip backbone's features of uint8 clips ``(N, T, H, W, 3)``, 64 at a time."""
    from selfsup.models.inputs import device_of, images_to_tensor

    device = device_of(backbone)
    out = []
    with torch.no_grad():
        for start in range(0, len(clips), 64):
            part = clips[start : start + 64]
            n, t = part.shape[:2]
            x = images_to_tensor(part.reshape(n * t, *part.shape[2:]), device).view(n, t, 3, *part.shape[2:4]).transpose(1, 2)
            out.append(backbone(x).cpu())
    return torch.cat(out)


def frame_features(backbone: nn.Module, frames: npt.NDArray[np.uint8]) -> torch.Tensor:
    """``(N, D)``: features of single frames ``(N, H, W, 3)``; a clip backbone sees each frame as a
    still clip of :data:`CLIP_FRAMES` copies (the inflated-image input of Carreira & Zisserman
    2017), not as a one-frame clip whose temporal convolutions see only their zero padding."""
    from selfsup.eval.protocol import extract_features
    from selfsup.models.video import SmallR2Plus1d

    if isinstance(backbone, SmallR2Plus1d):
        return clip_backbone_features(backbone, np.repeat(frames[:, None], CLIP_FRAMES, axis=1))
    return extract_features(backbone, frames)


def clip_features(backbone: nn.Module, clips: npt.NDArray[np.uint8], frames: int = 3) -> torch.Tensor:
    """``(N, frames · D)``: the features of each clip's first ``frames`` frames, concatenated; for
    a clip backbone (:class:`~selfsup.models.video.SmallR2Plus1d`) ``(N, D)``, its features of
    the first :data:`CLIP_FRAMES` frames as one clip."""
    from selfsup.models.video import SmallR2Plus1d

    if isinstance(backbone, SmallR2Plus1d):
        return clip_backbone_features(backbone, clips[:, :CLIP_FRAMES])
    return torch.cat([frame_features(backbone, clips[:, t]) for t in range(frames)], dim=1)


def probe_backbone(backbone: nn.Module, splits: ClipSplits) -> dict[str, Any]:
    """Held-out probes of ``backbone``: frame features on the digit, clip features on the direction."""
    from selfsup.eval.protocol import probe_table

    train, test = splits
    backbone = backbone.eval()
    return {
        "digit": probe_table(frame_features(backbone, train.clips[:, 0]), train.labels, frame_features(backbone, test.clips[:, 0]), test.labels),
        "direction": probe_table(clip_features(backbone, train.clips), train.directions, clip_features(backbone, test.clips), test.directions),
    }


def run(config: TemporalConfig) -> dict[str, Any]:
    from selfsup.data.clips import ClipArraySource
    from selfsup.run.build import build_trainer, resolve_run
    from selfsup.run.restore import load_backbone
    from selfsup.training.memory import PeakMemory

    splits = load_splits(config)
    path = config.out / "report.json"
    report: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"results": {}}
    report["config"] = {k: str(v) for k, v in config.__dict__.items() if k != "reprobe"}
    baselines_probed = set() if config.reprobe else {row for row in report["results"] if row.startswith("random init")}
    for name in config.methods:
        if name in report["results"]:
            if config.reprobe:
                checkpoint = config.out / name / "checkpoint.pt"
                backbone = load_backbone(checkpoint)
                report["results"][name].update(probe_backbone(backbone, splits))
                probe_baseline(report, backbone, checkpoint, splits, baselines_probed)
                write_report(config.out, report)
            continue
        chosen = {key: parse_value(value) for method, key, value in config.options if method == name}
        options = {key: value for key, value in chosen.items() if key not in RUN_KEYS}
        settings = {"method": name, "data": "moving_digits", "steps": config.steps, "batch_size": config.batch_size, "seed": config.seed,
                    "out": str(config.out / name), "backbone_options": {"width": config.width}, "device": config.device, "options": options,
                    **{key: value for key, value in chosen.items() if key in RUN_KEYS}}
        clips = two_camera(splits.train.clips, seed=config.seed) if name in MULTI_VIEW else splits.train.clips
        trainer = build_trainer(resolve_run(settings), data=ClipArraySource(clips), progress=False)
        start = time.perf_counter()
        with PeakMemory(trainer.config.device) as peak:
            log = trainer.fit()
        seconds = time.perf_counter() - start
        report["results"][name] = {
            **probe_backbone(trainer.method.backbone, splits), "seconds": seconds, "peak_mib": peak.bytes / 2**20, "final": log[-1],
            "options": chosen,
        }
        probe_baseline(report, trainer.method.backbone, trainer.checkpoint_path, splits, baselines_probed)
        write_report(config.out, report)
    write_report(config.out, report)
    return report


def probe_baseline(report: dict[str, Any], trained: nn.Module, checkpoint: Path, splits: ClipSplits, probed: set[str]) -> None:
    """Probes the random init of ``trained``'s architecture (as ``checkpoint`` built it) into its
    row, ``"random init (Architecture)"``, unless ``probed`` already holds that row (which it then
    does); the untrained network is only built when it is probed."""
    from selfsup.training.checkpoint import load_checkpoint
    from selfsup.run.restore import random_init_backbone

    row = f"random init ({type(trained).__name__})"
    if row not in probed:
        report["results"][row] = probe_backbone(random_init_backbone(load_checkpoint(checkpoint), checkpoint), splits)
        probed.add(row)


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``report.json`` and ``report.md`` in ``out``, each replaced atomically."""
    from selfsup.training.checkpoint import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out / "report.md", markdown(report))


def markdown(report: dict[str, Any]) -> str:
    """One row per backbone: held-out probe accuracy on the digit and on the direction (10 labels
    per class and all), kNN, wall time and peak memory."""
    lines = ["| backbone | digit, 10/class | digit, all | direction, 10/class | direction, all | s | peak MiB |", "|---|---|---|---|---|---|---|"]
    for name, row in report["results"].items():
        cells = [f"{row[task]['linear'][shot]['mean']:.3f}" for task in ("digit", "direction") for shot in ("10", "all")]
        timing = f"{row['seconds']:.0f}" if "seconds" in row else ""
        memory = f"{row['peak_mib']:.0f}" if "peak_mib" in row else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {timing} | {memory} |")
    return "\n".join(lines) + "\n"


def parse_option(text: str) -> tuple[str, str, str]:
    """``"tcn:loss=npairs"`` → ``("tcn", "loss", "npairs")``."""
    method, sep, rest = text.partition(":")
    key, eq, value = rest.partition("=")
    if not (sep and eq and method and key):
        raise ValueError(f"--option: expected METHOD:KEY=VALUE, got {text!r}")
    return method, key, value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TemporalConfig.out)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--steps", type=int, default=TemporalConfig.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation", type=int, default=0, help="probe on this many further clips of the training digits")
    parser.add_argument("--reprobe", action="store_true", help="probe the finished methods again from their checkpoints, no training")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD:KEY=VALUE", help="a method option on top of its recipe")
    args = parser.parse_args(argv)
    options = tuple(parse_option(text) for text in args.option)
    report = run(TemporalConfig(out=args.out, methods=tuple(args.methods), steps=args.steps, seed=args.seed, validation=args.validation, options=options,
                                 reprobe=args.reprobe))
    print(markdown(report))


if __name__ == "__main__":
    main()
