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
(:class:`selfsup.train.memory.PeakMemory`: on CPU the resident-memory high-water mark above the
resident memory before ``fit``, so it includes the data path and every buffer, not only tensors; on
CUDA the peak of torch's allocations). What a process builds once (the first optimizer's imports,
thread pools) would count toward the first method trained: the largest part, about 150 MiB of
imports, is loaded before any method starts.

A row is a recipe: its name is the registered method's unless :attr:`Recipe.method` names another,
so one method can appear in several configurations (``moco`` and ``mocov1``).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from selfsup import plugins
from selfsup.data import Splits, load_digits, load_photo_patches, validation_splits
from selfsup.eval.protocol import extract_features, probe_table, shot_name
from selfsup.train import TrainConfig, Trainer
from selfsup.train.memory import PeakMemory
from selfsup.train.optim import build_optimizer


@dataclass(frozen=True)
class Recipe:
    """How one method trains on 32-px digits: its options (the paper's, scaled to 32 px where
    stated in the method), optimizer, peak learning rate, and the registered backbone it needs
    (with its options; ``small_resnet`` takes the comparison's width and input channels)."""

    options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adamw"
    lr: float = 1e-3
    backbone: str = "small_resnet"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    """The registered method this row trains, when the row's name is not that method's."""
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Options that replace entries of ``options`` on one dataset (a key of :data:`DATASETS`),
    for a method whose best setting differs between the sets, chosen on that set's validation split."""

    def on(self, dataset: str) -> Recipe:
        """This recipe with ``dataset``'s entries of :attr:`dataset_options` applied."""
        return replace(self, options={**self.options, **self.dataset_options.get(dataset, {})}, dataset_options={})


RECIPES: dict[str, Recipe] = {
    "rotnet": Recipe(optimizer="sgd", lr=0.05),
    "jigsaw": Recipe({"cell": 10, "patch": 8, "permutations": 100, "hidden": 512}),
    "relative_position": Recipe({"patch": 8, "gap": 2, "jitter": 1, "drop_colors": False, "hidden": 512}, optimizer="sgd", lr=0.05),
    "autoencoder": Recipe(),
    "denoising_autoencoder": Recipe(),
    "vae": Recipe(),
    "bigan": Recipe(lr=2e-4),
    "colorization": Recipe(),
    "inpainting": Recipe(),
    "corruption": Recipe(dataset_options={"digits": {"mask_weight": 100.0}}),
}
"""The pretext methods compared by default, in table order. Chosen on the validation split over
pretraining seeds 0–2 (docs/pretext_tasks.md): relative position trains with RotNet's SGD at 0.05;
jigsaw cuts 8-px tiles from 10-px cells (near the paper's 64/85); spotting artifacts weights its
*where* term 100× on the digits (``mask_weight``): with the paper-like equal weights its *what*
head pulls the features below random init there at every seed (clean digits all read "none"),
while on the photo patches equal weights did best."""

JOINT_RECIPES: dict[str, Recipe] = {
    "simclr": Recipe(optimizer="sgd", lr=0.3),
    "moco": Recipe({"queue_size": 1024}, optimizer="sgd", lr=0.3),
    "mocov1": Recipe({"version": 1, "queue_size": 1024}, optimizer="sgd", lr=0.3, method="moco"),
    "nnclr": Recipe({"support_size": 1024}),
    "byol": Recipe({"base_momentum": 0.9, "hidden_dim": 4096, "view_recipe": "mocov2"}, optimizer="lars", lr=3.0),
    "simsiam": Recipe(),
    "barlow_twins": Recipe(),
    "vicreg": Recipe(),
    "dino": Recipe(),
    "instdisc": Recipe(lr=5e-4),
    "local_aggregation": Recipe({"warmup_steps": 50}, lr=5e-4),
    "cpc": Recipe({"grid": 7, "patch": 8, "stride": 4, "offsets": 3, "context_layers": 2}),
    "dim": Recipe({"score_dim": 256}),
    "swav": Recipe(
        {"prototypes": 300, "queue_size": 512, "queue_start_step": 20, "freeze_prototypes_steps": 20, "epsilon": 0.01}, optimizer="lars", lr=0.6
    ),
    "supcon": Recipe(optimizer="sgd", lr=0.3),
    "cmc": Recipe({"views": ("L", "gradient"), "negatives": 1024}, optimizer="sgd", lr=0.03),
    "cmc_lab": Recipe({"negatives": 1024}, optimizer="sgd", lr=0.03, method="cmc"),
    "pirl": Recipe({"cell": 10, "patch": 9, "negatives": 1024}),
}
"""Joint-embedding methods (``--methods`` names them): SGD at the demo's rate for the contrastive
ones, AdamW as their papers' LARS/AdamW stand-in for the others; queues smaller than the dataset.
SimSiam and NNCLR use AdamW at 10⁻³ too: with their papers' SGD (0.1) and LARS stand-in (SGD 0.3)
they stayed below random init at 100 steps of 64 digits (−0.025, −0.077), with AdamW they beat it.
BYOL uses its paper's LARS and 4 096 hidden units, at a peak rate of 3.0 and target momentum
τ_base = 0.9, with MoCo v2's symmetric views instead of its own asymmetric pair (crops of at least
20 % of the area, not 8 %, and no solarized view, which turns a digit's strokes dark): the best of
a sweep on the validation split over three pretraining seeds (+0.062; with its own views +0.039;
SGD, AdamW, LARS 0.3 and 1.0, τ_base 0 to 0.99 and narrower heads −0.11 to +0.01;
docs/joint_methods.md). SwAV uses LARS at 0.6
(solo-learn's CIFAR rate) and ε = 0.01: with the paper's ε = 0.05 the codes of a batch of 64
nearly identical initial embeddings are close to uniform and the embeddings collapse (the loss
sits at log K). InstDisc and Local Aggregation (after 50 warm-up steps of instance
discrimination) use AdamW at 5·10⁻⁴: on the validation split over three pretraining seeds,
InstDisc +0.065 against +0.042 with its paper's SGD 0.03, and Local Aggregation +0.059 against
+0.019 at 10⁻³ (4·10⁻⁴ to 7·10⁻⁴ all within 0.013 of it; the temperature, warm-up length, number
of clusterings and background size moved it less than the seed spread). Both keep a memory bank
of the whole training split. ``mocov1`` is MoCo with ``version=1``. CPC (a 7×7 grid
of 8-px patches at stride 4) and Deep InfoMax use AdamW at 10⁻³, five and ten times their papers'
Adam rates, for this short budget. SwAV freezes its prototypes and starts its queue after one epoch (20 steps of 64
digits); SupCon trains on the digits' labels (an upper reference, not a self-supervised method). The
memory-bank methods CMC and PIRL draw 1 024 negatives: CMC with its code's SGD rate 0.03, contrasting L
with its gradient magnitude (the grey digits carry no ab; the row ``cmc_lab`` is the paper's L/ab pair, for colour
sets); PIRL with AdamW (SGD at 0.03 or 0.3 probed
worse), 10-px cells and 9-px tiles (the jigsaw row's 8-px tiles did no better for PIRL on the
validation split over seeds 0–2: +0.034 ± 0.055 against +0.038 ± 0.016)."""

MASKED_IMAGE_RECIPES: dict[str, Recipe] = {
    "mae": Recipe(lr=5e-4, backbone="vit_tiny"),
}
"""Masked image modelling (``--methods`` names them), on the ViT its encoder needs: AdamW (MAE's
optimizer) at a peak rate of 5·10⁻⁴ (the paper's 1.5·10⁻⁴·batch/256 is tuned for 800 epochs; at 100
steps of 64, 1.5·10⁻³ probed level with random init and 3·10⁻³, mean-pooled patch tokens, mask
ratio 0.5 and unnormalised pixel targets worse; 10⁻⁴ to 5·10⁻⁴ all gave about +0.02)."""

DATASETS: dict[str, tuple[str, Callable[[], Splits]]] = {
    "digits": ("sklearn digits 32x32", load_digits),
    "photo_patches": ("scikit-image photo patches 32x32, 7 photos", load_photo_patches),
}
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
    weight_decay: float = 1e-4
    warmup_steps: int = 5
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
    """The recipe of ``name`` in :data:`RECIPES`, :data:`JOINT_RECIPES` or
    :data:`MASKED_IMAGE_RECIPES`; the default :class:`Recipe` otherwise."""
    for recipes in (RECIPES, JOINT_RECIPES, MASKED_IMAGE_RECIPES):
        if name in recipes:
            return recipes[name]
    return Recipe()


def method_of(row: str) -> str:
    """The registered method name a row trains."""
    return recipe_for(row).method or row


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
    classes = {name: registry.get("methods", method_of(name)) for name in names}
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

    recipes = {name: recipe_for(name).on(config.dataset) for name in names}
    channels = {name: int(getattr(classes[name], "in_channels", 3)) for name in names}
    baselines = {name: baseline_name(recipes[name].backbone, channels[name], recipes[name].backbone_options) for name in names}
    report["results"][RANDOM_INIT] = evaluate(make_backbone(config))
    for name in names:
        recipe = recipes[name]
        if baselines[name] not in report["results"]:
            report["results"][baselines[name]] = evaluate(make_backbone(config, channels[name], recipe.backbone, recipe.backbone_options))
    load_lazy_imports()
    for name in names:
        recipe, cls, in_channels = recipes[name], classes[name], channels[name]
        method = cls(make_backbone(config, in_channels, recipe.backbone, recipe.backbone_options), **recipe.options)
        train_config = TrainConfig(
            steps=config.steps, batch_size=config.batch_size, lr=recipe.lr, weight_decay=config.weight_decay,
            optimizer=recipe.optimizer, warmup_steps=config.warmup_steps, seed=config.seed, log_every=max(1, config.steps // 10),
            checkpoint_every=config.steps, progress=progress,
        )
        metadata = {
            "backbone": {"name": recipe.backbone, "options": backbone_options(config, recipe.backbone, recipe.backbone_options, in_channels)},
            "method_options": recipe.options, "data": config.dataset,
        }
        start = time.perf_counter()
        with PeakMemory(train_config.device) as peak:
            log = Trainer(method, data.train.images, train_config, out / "runs" / name, metadata=metadata, labels=data.train.labels).fit()
        seconds = time.perf_counter() - start
        table = evaluate(method.backbone)
        table["pretraining"] = {
            "seconds": seconds, "steps": config.steps, "in_channels": in_channels, "batch_size": config.batch_size, "images_per_s": log[-1]["images_per_s"],
            "first": log[0], "final": log[-1], "optimizer": recipe.optimizer, "lr": recipe.lr, "options": recipe.options,
            "method": method_of(name), "peak_memory_mb": peak.bytes / 2**20, "peak_memory_source": peak.source,
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
