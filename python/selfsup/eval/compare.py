"""``selfsup compare``: every pretext method on one budget, probed against random init.

Each method pretrains the same backbone (``small_resnet``, the demo's width, the same initial
weights: ``torch.manual_seed(seed)`` before it is built) on the embedded digits' training split
for the same number of optimizer steps of the same batch size; then the protocol of EVALUATION.md
runs on the fixed held-out split: the linear probe with ``shots`` labels per class (mean ± std
over ``label_seeds``) and weighted kNN with all labels. The random-init backbone goes through the
same probe; for colorization, whose backbone sees the L channel only, so does a random-init
one-channel backbone probed on L. Pretraining wall time and images/s are recorded per method.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from selfsup import plugins
from selfsup.data import load_digits
from selfsup.eval.protocol import extract_features, probe_table, shot_name
from selfsup.train import TrainConfig, Trainer


@dataclass(frozen=True)
class Recipe:
    """How one method trains on 32-px digits: its options (the paper's, scaled to 32 px where
    stated in the method), optimizer and peak learning rate."""

    options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adamw"
    lr: float = 1e-3


RECIPES: dict[str, Recipe] = {
    "rotnet": Recipe(),
    "jigsaw": Recipe({"cell": 10, "patch": 9, "permutations": 100, "hidden": 512}),
    "relative_position": Recipe({"patch": 8, "gap": 2, "jitter": 1, "drop_colors": False, "hidden": 512}),
    "autoencoder": Recipe(),
    "denoising_autoencoder": Recipe(),
    "vae": Recipe(),
    "bigan": Recipe(lr=2e-4),
    "colorization": Recipe(),
    "inpainting": Recipe(),
    "corruption": Recipe(),
}
"""The pretext methods compared by default, in table order."""

JOINT_RECIPES: dict[str, Recipe] = {
    "simclr": Recipe(optimizer="sgd", lr=0.3),
    "moco": Recipe({"queue_size": 1024}, optimizer="sgd", lr=0.3),
    "nnclr": Recipe({"support_size": 1024}, optimizer="sgd", lr=0.3),
    "byol": Recipe(optimizer="sgd", lr=0.1),
    "simsiam": Recipe(optimizer="sgd", lr=0.1),
    "barlow_twins": Recipe(),
    "vicreg": Recipe(),
    "dino": Recipe(),
    "cmc": Recipe({"views": ("L", "gradient"), "negatives": 1024}, optimizer="sgd", lr=0.03),
    "pirl": Recipe({"cell": 10, "patch": 9, "negatives": 1024}),
}
"""Joint-embedding methods (``--methods`` names them): SGD at the demo's rate for the contrastive
ones, AdamW as their papers' LARS/AdamW stand-in for the others; queues smaller than the dataset.
The memory-bank methods draw 1 024 negatives: CMC with its code's SGD rate 0.03, contrasting L with
its gradient magnitude (the grey digits carry no ab); PIRL with AdamW (SGD at 0.03 or 0.3 probed
worse) and the jigsaw recipe's 10-px cells and 9-px tiles."""

RANDOM_INIT = "random init"
RANDOM_INIT_L = "random init (L input)"


@dataclass
class CompareConfig:
    steps: int = 50
    batch_size: int = 32
    width: int = 16
    """``small_resnet`` width (the demo's)."""
    seed: int = 0
    """Backbone initialisation and the trainer's data order."""
    shots: tuple[int | None, ...] = (10, None)
    label_seeds: tuple[int, ...] = (0, 1, 2)
    weight_decay: float = 1e-4
    warmup_steps: int = 5

    def validate(self) -> None:
        for name in ("steps", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)}")
        if not self.shots or not self.label_seeds:
            raise ValueError("shots, label_seeds: expected at least one value each")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps: expected 0 to {self.steps}, got {self.warmup_steps}")


def make_backbone(config: CompareConfig, in_channels: int = 3) -> torch.nn.Module:
    """``small_resnet(width, in_channels)`` with the weights of ``torch.manual_seed(config.seed)``."""
    torch.manual_seed(config.seed)
    backbone: torch.nn.Module = plugins.get("backbones", "small_resnet")(width=config.width, in_channels=in_channels)
    return backbone


def compare(
    out_dir: str | Path, methods: Sequence[str] | None = None, config: CompareConfig | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Pretrains and probes ``methods`` (default: every name of :data:`RECIPES` that is registered),
    writes ``compare.json``, ``compare.md`` and one run folder per method under ``out_dir``.

    Returns the report: ``{"config", "machine", "dataset", "results": {row: {"linear": {shot:
    {"mean", "std", "runs"}}, "knn_all", "pretraining"?}}}``.

    Raises:
        ValueError: an empty or repeated method list, a bad config. plugins.UnknownNameError: an
            unregistered method.
    """
    config = config or CompareConfig()
    config.validate()
    registry = plugins.registry()
    names = list(methods) if methods is not None else [m for m in RECIPES if m in registry.entries["methods"]]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"methods: expected distinct method names, got {names}")
    classes = {name: registry.get("methods", name) for name in names}
    out = Path(out_dir)
    data = load_digits()
    report: dict[str, Any] = {
        "config": asdict(config),
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
        "dataset": {"name": "sklearn digits 32x32", "train": len(data.train.labels), "test": len(data.test.labels)},
        "results": {},
    }

    def evaluate(backbone: torch.nn.Module) -> dict[str, Any]:
        train = extract_features(backbone, data.train.images)
        test = extract_features(backbone, data.test.images)
        return probe_table(train, data.train.labels, test, data.test.labels, shots=config.shots, seeds=config.label_seeds)

    report["results"][RANDOM_INIT] = evaluate(make_backbone(config))
    if any(getattr(cls, "in_channels", 3) == 1 for cls in classes.values()):
        report["results"][RANDOM_INIT_L] = evaluate(make_backbone(config, in_channels=1))
    for name in names:
        recipe = RECIPES.get(name) or JOINT_RECIPES.get(name, Recipe())
        cls = classes[name]
        method = cls(make_backbone(config, getattr(cls, "in_channels", 3)), **recipe.options)
        train_config = TrainConfig(
            steps=config.steps, batch_size=config.batch_size, lr=recipe.lr, weight_decay=config.weight_decay,
            optimizer=recipe.optimizer, warmup_steps=config.warmup_steps, seed=config.seed, log_every=max(1, config.steps // 10),
            checkpoint_every=config.steps, progress=progress,
        )
        in_channels = getattr(cls, "in_channels", 3)
        metadata = {
            "backbone": {"name": "small_resnet", "options": {"width": config.width, "in_channels": in_channels}},
            "method_options": recipe.options, "data": "digits",
        }
        start = time.perf_counter()
        log = Trainer(method, data.train.images, train_config, out / "runs" / name, metadata=metadata).fit()
        seconds = time.perf_counter() - start
        table = evaluate(method.backbone)
        table["pretraining"] = {
            "seconds": seconds, "steps": config.steps, "in_channels": in_channels, "batch_size": config.batch_size, "images_per_s": log[-1]["images_per_s"],
            "first": log[0], "final": log[-1], "optimizer": recipe.optimizer, "lr": recipe.lr, "options": recipe.options,
        }
        report["results"][name] = table
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2))
    (out / "compare.md").write_text(markdown_table(report) + "\n")
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The report as a markdown table: linear probe per shot (mean ± std), kNN, pretraining time,
    and the change of the first shot's probe accuracy over the matching random-init row."""
    shots = [shot_name(s) for s in report["config"]["shots"]]
    results = report["results"]
    columns = [f"linear probe, {s} labels/class" if s != "all" else "linear probe, all labels" for s in shots]
    header = ["backbone", *columns, "kNN, all labels", f"Δ vs random ({shots[0]}/class)", "pretraining s", "source images/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, table in results.items():
        cells = [f"{table['linear'][s]['mean']:.3f} ± {table['linear'][s]['std']:.3f}" for s in shots]
        sees_lightness = table.get("pretraining", {}).get("in_channels") == 1
        baseline = results.get(RANDOM_INIT_L if sees_lightness else RANDOM_INIT)
        delta = "" if "pretraining" not in table or baseline is None else (
            f"{table['linear'][shots[0]]['mean'] - baseline['linear'][shots[0]]['mean']:+.3f}"
        )
        timing = table.get("pretraining")
        seconds = f"{timing['seconds']:.0f}" if timing else ""
        rate = f"{timing['images_per_s']:.0f}" if timing else ""
        lines.append("| " + " | ".join([name, *cells, f"{table['knn_all']:.3f}", delta, seconds, rate]) + " |")
    return "\n".join(lines)
