"""``selfsup compare``: every pretext method on one budget, probed against random init.

Each method pretrains the same backbone (``small_resnet``, the demo's width, the same initial
weights: ``torch.manual_seed(seed)`` before it is built; a method whose recipe names another backbone,
such as MAE's ViT, gets that one) on the embedded digits' training split
for the same number of optimizer steps of the same batch size; then the protocol of EVALUATION.md
runs on the fixed held-out split: the linear probe with ``shots`` labels per class (mean ± std
over ``label_seeds``) and weighted kNN with all labels. The random-init backbone goes through the
same probe; for colorization, whose backbone sees the L channel only, so does a random-init
one-channel backbone probed on L, and for every other backbone a recipe names, a random-init one of
that architecture (:func:`baseline_name`); each method's Δ is taken against the random init of its
own architecture, paired by label seed (:func:`paired_delta`). With ``validation=N`` the probe's
test split is N images held out of the training split instead of the held-out split, for choosing
recipes (EVALUATION.md: no choice may see the held-out split). Pretraining wall time, images/s
and peak memory are recorded per method; the peak is what pretraining added to the process
(:class:`selfsup.training.memory.PeakMemory`: on CPU the resident-memory high-water mark above the
resident memory before ``fit``, so it includes the data path and every buffer, not only tensors; on
CUDA the peak of torch's allocations). What a process builds once (the first optimizer's imports,
thread pools) would count toward the first method trained: the largest part, about 150 MiB of
imports, is loaded before any method starts.

A row is a registered recipe (:class:`selfsup.run.recipe.Recipe`): its name is a method's (its
default recipe) or a named variant's, so one method can appear in several configurations
(``moco`` and ``mocov1``). The budget — steps, batch size, warm-up — is the comparison's and the
same for every row; options, backbone, optimizer, learning rate and weight decay are the recipe's.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from selfsup import plugins
from selfsup.data import validation_splits
from selfsup.data.labelled import HELD_OUT_SETS
from selfsup.eval.protocol import extract_features, probe_table, shot_name
from selfsup.run.build import method_and_recipe, resolve_device
from selfsup.run.recipe import Recipe
from selfsup.training import TrainConfig, Trainer
from selfsup.training.memory import PeakMemory
from selfsup.training.optim import build_optimizer


PRETEXT_ROWS: tuple[str, ...] = (
    "rotnet", "jigsaw", "relative_position", "autoencoder", "denoising_autoencoder", "vae", "bigan", "colorization", "inpainting", "corruption",
)
"""The pretext methods compared by default, in table order. Every row trains with its registered
recipe (:mod:`selfsup.run.recipe`; the evidence behind each is in docs/recipes.md)."""

DATASETS = HELD_OUT_SETS
"""Labelled sets with a fixed held-out split: pretraining sees the training images only."""

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
    dataset: str = "digits"
    """A key of :data:`DATASETS`."""
    shots: tuple[int | None, ...] = (10, None)
    label_seeds: tuple[int, ...] = (0, 1, 2)
    warmup_steps: int = 5
    device: str = "cpu"
    """Where pretraining runs: ``cpu``, ``cuda``, ``cuda:K`` or ``auto`` (CUDA when present)."""
    validation: int = 0
    """0: probe on the held-out test split (what a report shows). N > 0: hold N seeded training
    images out as the test split and pretrain and fit probes on the rest
    (:func:`selfsup.data.validation_splits`), so that choosing recipes and options never sees
    the held-out split (EVALUATION.md). On ``photo_patches`` such images are patches of the
    same photograph regions the training patches come from: a ranking aid, not a result."""

    def validate(self) -> None:
        for name in ("steps", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)}")
        if not self.shots or not self.label_seeds:
            raise ValueError("shots, label_seeds: expected at least one value each")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps: expected 0 to {self.steps}, got {self.warmup_steps}")
        if self.validation < 0:
            raise ValueError(f"validation: expected 0 (the held-out split) or a number of training images, got {self.validation}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}")


def recipe_for(name: str) -> Recipe:
    """The registered recipe of row ``name``: a recipe of that name, or the default recipe of the
    method of that name (:func:`selfsup.run.build.method_and_recipe`)."""
    return method_and_recipe(name)[1]


def method_of(row: str) -> str:
    """The registered method name a row trains."""
    return recipe_for(row).method


def load_lazy_imports() -> None:
    """Builds one optimizer of each kind on a throw-away parameter: the first optimizer of a process
    imports ``torch._dynamo`` and its dependencies (about 150 MiB resident), which would otherwise
    count toward the peak memory of whichever method pretrains first."""
    for optimizer in ("sgd", "adamw", "lars"):
        build_optimizer(torch.nn.Linear(1, 1), optimizer, 0.1, 0.0)


def backbone_options(
    config: CompareConfig, name: str = "small_resnet", options: dict[str, Any] | None = None, in_channels: int = 3
) -> dict[str, Any]:
    """The options a backbone is built with: ``small_resnet`` gets the comparison's width and
    ``in_channels``; any other backbone its recipe's ``options`` as given."""
    if name == "small_resnet":
        return {"width": config.width, "in_channels": in_channels, **(options or {})}
    return dict(options or {})


def make_backbone(config: CompareConfig, in_channels: int = 3, name: str = "small_resnet", options: dict[str, Any] | None = None) -> torch.nn.Module:
    """The registered backbone ``name`` (default ``small_resnet(width, in_channels)``) with
    :func:`backbone_options`, built after ``torch.manual_seed(config.seed)``."""
    torch.manual_seed(config.seed)
    backbone: torch.nn.Module = plugins.get("backbones", name)(**backbone_options(config, name, options, in_channels))
    return backbone


def baseline_name(backbone: str = "small_resnet", in_channels: int = 3, options: dict[str, Any] | None = None) -> str:
    """The random-init row a method on ``backbone`` built with ``options`` is compared with:
    :data:`RANDOM_INIT`, :data:`RANDOM_INIT_L` for the one-channel ``small_resnet``, otherwise
    ``random init (NAME, key=value, ...)`` naming the recipe's backbone options."""
    if backbone == "small_resnet" and not options:
        return RANDOM_INIT_L if in_channels == 1 else RANDOM_INIT
    settings = [f"{key}={value}" for key, value in sorted((options or {}).items())] + (["L input"] if in_channels == 1 else [])
    return f"random init ({', '.join([backbone, *settings])})"


def compare(
    out_dir: str | Path,
    methods: Sequence[str] | None = None,
    config: CompareConfig | None = None,
    progress: bool = True,
    recipes: Mapping[str, Recipe] | None = None,
) -> dict[str, Any]:
    """Pretrains and probes ``methods`` (default: every name of :data:`RECIPES` that is registered),
    writes ``compare.json``, ``compare.md`` and one run folder per method under ``out_dir``.

    ``recipes`` gives rows that are not registered recipes (candidate settings while choosing a
    recipe); every other row is the registered recipe of its name.

    Returns the report: ``{"config", "machine", "dataset", "results": {row: {"linear": {shot:
    {"mean", "std", "runs"}}, "knn_all", "pretraining"?}}}``.

    Raises:
        ValueError: an empty or repeated method list, a bad config. plugins.UnknownNameError: an
            unregistered method.
    """
    config = config or CompareConfig()
    config.validate()
    device = resolve_device(config.device)
    registry = plugins.registry()
    names = list(methods) if methods is not None else [m for m in PRETEXT_ROWS if m in registry.entries["methods"]]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"methods: expected distinct method names, got {names}")
    given = dict(recipes or {})
    chosen = {name: given[name] if name in given else recipe_for(name) for name in names}
    classes = {name: registry.get("methods", chosen[name].method) for name in names}
    out = Path(out_dir)
    description, load = DATASETS[config.dataset]
    data = load()
    if config.validation:
        if config.validation >= len(data.train.labels):
            raise ValueError(f"validation: expected fewer than the {len(data.train.labels)} training images, got {config.validation}")
        data = validation_splits(data, config.validation)
    report: dict[str, Any] = {
        "config": asdict(config),
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
        "dataset": {
            "name": description, "train": len(data.train.labels), "test": len(data.test.labels),
            "test_split": "validation (held out of the training split)" if config.validation else "held-out test",
        },
        "results": {},
    }

    def evaluate(backbone: torch.nn.Module) -> dict[str, Any]:
        train = extract_features(backbone, data.train.images)
        test = extract_features(backbone, data.test.images)
        return probe_table(train, data.train.labels, test, data.test.labels, shots=config.shots, seeds=config.label_seeds)

    rows = {name: chosen[name].on(config.dataset) for name in names}
    channels = {name: int(getattr(classes[name], "in_channels", 3)) for name in names}
    baselines = {name: baseline_name(rows[name].backbone, channels[name], dict(rows[name].backbone_options)) for name in names}
    report["results"][RANDOM_INIT] = evaluate(make_backbone(config))
    for name in names:
        recipe = rows[name]
        if baselines[name] not in report["results"]:
            report["results"][baselines[name]] = evaluate(make_backbone(config, channels[name], recipe.backbone, dict(recipe.backbone_options)))
    load_lazy_imports()
    for name in names:
        recipe, cls, in_channels = rows[name], classes[name], channels[name]
        method = cls(make_backbone(config, in_channels, recipe.backbone, dict(recipe.backbone_options)), **recipe.options)
        train_config = TrainConfig(
            steps=config.steps, batch_size=config.batch_size, lr=recipe.lr, weight_decay=recipe.weight_decay,
            optimizer=recipe.optimizer, warmup_steps=config.warmup_steps, seed=config.seed, log_every=max(1, config.steps // 10),
            device=device,
            checkpoint_every=config.steps, progress=progress,
        )
        metadata = {
            "backbone": {"name": recipe.backbone, "options": backbone_options(config, recipe.backbone, dict(recipe.backbone_options), in_channels)},
            "method_options": dict(recipe.options), "data": config.dataset,
        }
        start = time.perf_counter()
        with PeakMemory(train_config.device) as peak:
            log = Trainer(method, data.train.images, train_config, out / "runs" / name, metadata=metadata, labels=data.train.labels).fit()
        seconds = time.perf_counter() - start
        table = evaluate(method.backbone)
        table["pretraining"] = {
            "seconds": seconds, "steps": config.steps, "in_channels": in_channels, "batch_size": config.batch_size, "images_per_s": log[-1]["images_per_s"],
            "first": log[0], "final": log[-1], "optimizer": recipe.optimizer, "lr": recipe.lr, "options": dict(recipe.options),
            "method": recipe.method, "peak_memory_mb": peak.bytes / 2**20, "peak_memory_source": peak.source,
            "backbone": recipe.backbone, "baseline": baselines[name],
        }
        report["results"][name] = table
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2))
    (out / "compare.md").write_text(markdown_table(report) + "\n")
    return report


def paired_differences(table: dict[str, Any], baseline: dict[str, Any], shot: str) -> npt.NDArray[np.float64]:
    """Per label seed, the probe accuracy of ``table`` minus that of ``baseline`` at ``shot`` labels
    per class (both probed on the same labelled subsets); one value, the difference of the means,
    when either lacks per-seed runs."""
    ours, theirs = table["linear"][shot], baseline["linear"][shot]
    if "runs" not in ours or "runs" not in theirs or len(ours["runs"]) != len(theirs["runs"]):
        return np.array([ours["mean"] - theirs["mean"]])
    return np.asarray(ours["runs"], dtype=np.float64) - np.asarray(theirs["runs"], dtype=np.float64)


def row_baseline(results: dict[str, Any], table: dict[str, Any]) -> dict[str, Any] | None:
    """The random-init row a pretrained row is compared with, if the report has it; None for a
    row that was not pretrained (a random-init row itself)."""
    pretraining = table.get("pretraining")
    if pretraining is None:
        return None
    found: dict[str, Any] | None = results.get(pretraining.get("baseline") or baseline_name(in_channels=pretraining.get("in_channels", 3)))
    return found


def paired_delta(table: dict[str, Any], baseline: dict[str, Any], shot: str) -> str:
    """The probe's gain over ``baseline`` at ``shot`` labels per class, paired by label seed: both
    rows were probed on the same labelled subsets, so the spread of the per-seed differences, not
    the rows' own spreads, says whether the gain exceeds the choice of labels. ``+0.021 ± 0.012``
    is their mean and std; with one label seed, or without per-seed runs, the difference alone."""
    differences = paired_differences(table, baseline, shot)
    if len(differences) == 1:
        return f"{differences[0]:+.3f}"
    return f"{differences.mean():+.3f} ± {differences.std():.3f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The report as a markdown table: linear probe per shot (mean ± std), kNN, the change of the
    first shot's probe accuracy over the matching random-init row (:func:`paired_delta`),
    pretraining time, images/s and peak memory in MiB (what pretraining added to the process; see
    the module's docstring)."""
    shots = [shot_name(s) for s in report["config"]["shots"]]
    results = report["results"]
    columns = [f"linear probe, {s} labels/class" if s != "all" else "linear probe, all labels" for s in shots]
    header = ["backbone", *columns, "kNN, all labels", f"Δ vs random ({shots[0]}/class)", "pretraining s", "source images/s", "peak MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, table in results.items():
        cells = [f"{table['linear'][s]['mean']:.3f} ± {table['linear'][s]['std']:.3f}" for s in shots]
        baseline = row_baseline(results, table)
        delta = "" if baseline is None else paired_delta(table, baseline, shots[0])
        timing = table.get("pretraining")
        seconds = f"{timing['seconds']:.0f}" if timing else ""
        rate = f"{timing['images_per_s']:.0f}" if timing else ""
        memory = f"{timing['peak_memory_mb']:.0f}" if timing and "peak_memory_mb" in timing else ""
        lines.append("| " + " | ".join([name, *cells, f"{table['knn_all']:.3f}", delta, seconds, rate, memory]) + " |")
    return "\n".join(lines)
