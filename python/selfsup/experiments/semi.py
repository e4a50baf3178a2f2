"""Semi-supervised methods against labelled-only training, at 1, 5, 10 labels per class and all labels.

For every embedded set with a fixed held-out split (digits, photo patches), every label count,
every label seed and every method, the training split becomes labelled + unlabelled data (the
labels drawn per class with the seed, the whole training split as the pool, labels hidden:
:meth:`~selfsup.data.semi.SemiSupervisedSource.from_labelled`), the method trains from its
registered recipe for the shared budget (steps, labelled batch, μ, backbone width: the same for
every method) and its classifier (:meth:`~selfsup.methods.semi_supervised.SemiSupervised.predict`:
the EMA where the method keeps one) is scored on the held-out split, which no choice sees. The
labelled-only baseline is the ``supervised`` method with the same augmentation and EMA.

Rows are appended to ``results.jsonl`` as they finish, and a run that is started again skips
the rows it has; ``report.md`` and one PNG per dataset are written from whatever rows exist.

    python -m selfsup.experiments.semi --out runs/semi
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.data.digits import validation_splits
from selfsup.data.labelled import HELD_OUT_SETS

METHODS: tuple[str, ...] = ("supervised", "fixmatch", "uda", "mixmatch", "s4l", "sla", "simclr>supervised", "simclr>fixmatch")
"""``pre>method``: ``method`` starting from the backbone of a ``pre`` run on the training split's
images (no labels; the demo's budget), the path of self-supervised pretraining then
semi-supervised fine-tuning."""
LABELS: tuple[int | None, ...] = (1, 5, 10, None)
"""Labels per class; ``None``: every label of the training split."""


@dataclass(frozen=True)
class SemiConfig:
    out: Path = Path("runs/semi")
    datasets: tuple[str, ...] = ("digits", "photo_patches")
    methods: tuple[str, ...] = METHODS
    labels: tuple[int | None, ...] = LABELS
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 200
    batch_size: int = 16
    mu: int = 3
    """Pool images per labelled one for the methods whose recipe uses more (FixMatch and UDA: 7)."""
    width: int = 16
    device: str = "cpu"
    validation: int = 0
    """> 0: choose settings without the held-out split — that many training images are the test
    split and the rest the training split (:func:`~selfsup.data.digits.validation_splits`)."""
    pretrain_steps: int | None = None
    """Steps of the ``pre>`` rows' pretraining (``None``: the demo's budget for the method)."""
    extra_options: dict[str, dict[str, Any]] = field(default_factory=dict)


def shot_name(labels: int | None) -> str:
    return "all" if labels is None else str(labels)


def run_one(config: SemiConfig, dataset: str, method: str, labels: int | None, seed: int) -> dict[str, Any]:
    """Trains ``method`` on ``dataset`` with ``labels`` per class drawn with ``seed``; its held-out accuracy and costs."""
    from selfsup.data.pipeline import ArraySource
    from selfsup.data.semi import SemiSupervisedSource
    from selfsup.methods.semi_supervised import SemiSupervised
    from selfsup.run.build import build_trainer, method_and_recipe, resolve_run
    from selfsup.training.memory import PeakMemory

    splits = HELD_OUT_SETS[dataset][1]()
    if config.validation:
        splits = validation_splits(splits, config.validation)
    source = ArraySource(splits.train.images, splits.train.labels)
    data = SemiSupervisedSource.from_labelled(source, per_class=labels, seed=seed)
    pretrained, _, method = method.rpartition(">")
    init = str(pretrain(config, dataset, pretrained, splits.train.images)) if pretrained else ""
    method_cls, _ = method_and_recipe(method)
    options: dict[str, Any] = dict(config.extra_options.get(method, {}))
    if int(getattr(method_cls, "default_mu", 0)) > config.mu:
        options["mu"] = config.mu
    settings = {
        "method": method, "data": dataset, "steps": config.steps, "batch_size": config.batch_size, "seed": seed,
        "out": str(config.out / "runs" / f"{dataset}-{pretrained}{'-' if pretrained else ''}{method}-{shot_name(labels)}-{seed}"),
        "options": options,
        "backbone_options": {"width": config.width}, "device": config.device, "checkpoint_every": config.steps,
        "log_every": config.steps, "init": init,
    }
    trainer = build_trainer(resolve_run(settings), data=data, progress=False)
    start = time.perf_counter()
    with PeakMemory(trainer.config.device) as peak:
        trainer.fit()
    seconds = time.perf_counter() - start
    method_trained = trainer.method
    assert isinstance(method_trained, SemiSupervised)
    predicted = method_trained.predict(splits.test.images)
    return {
        "dataset": dataset, "method": f"{pretrained}>{method}" if pretrained else method, "labels": shot_name(labels), "seed": seed,
        "accuracy": float(np.mean(predicted == splits.test.labels)), "seconds": seconds, "peak_mib": peak.bytes / 2**20,
        "labelled": data.labelled_count, "options": options, "steps": config.steps, "batch_size": config.batch_size,
    }


def pretrain(config: SemiConfig, dataset: str, method: str, images: np.ndarray) -> Path:
    """The checkpoint of ``method`` pretrained on ``images`` with the demo's budget (once per
    dataset; later calls find it)."""
    from selfsup.experiments.demo import DEMO_BUDGETS
    from selfsup.run.build import build_trainer, resolve_run

    out = config.out / "pretrain" / f"{dataset}-{method}"
    checkpoint = out / "checkpoint.pt"
    if not checkpoint.exists():
        settings = {"method": method, "data": dataset, "out": str(out), "backbone_options": {"width": config.width}, "device": config.device,
                    **DEMO_BUDGETS.get(method, {})}
        if config.pretrain_steps is not None:
            settings.update(steps=config.pretrain_steps, warmup_steps=0)
        build_trainer(resolve_run(settings), data=images, progress=False).fit()
    return checkpoint


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    """``(dataset, method, labels)`` → mean and std accuracy over seeds, seeds, mean seconds and peak MiB."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["method"], row["labels"]), []).append(row)
    return {
        key: {
            "mean": float(np.mean([r["accuracy"] for r in group])), "std": float(np.std([r["accuracy"] for r in group])),
            "seeds": float(len(group)), "seconds": float(np.mean([r["seconds"] for r in group])),
            "peak_mib": float(np.max([r["peak_mib"] for r in group])),
        }
        for key, group in groups.items()
    }


def report(config: SemiConfig, rows: list[dict[str, Any]]) -> str:
    """The markdown table of every dataset (mean ± std over seeds, the number of seeds in
    brackets; ✓ where, over at least two seeds each, the mean beats labelled-only by more than the
    two stds together) and one accuracy PNG per dataset."""
    from selfsup.viz.plot import accuracy_plot

    summary = summarise(rows)
    shots = [shot_name(n) for n in config.labels]
    lines = [
        f"Budget: {config.steps} steps, labelled batch {config.batch_size}, mu <= {config.mu}, small_resnet width {config.width}, "
        f"{config.device}; held-out accuracy of the method's classifier, mean ± std over label seeds.",
        "",
    ]
    for dataset in config.datasets:
        lines += [f"### {dataset}", "", "| method | " + " | ".join(f"{s}/class" for s in shots) + " | s per run | peak MiB |",
                  "|---|" + "---|" * (len(shots) + 2)]
        series: dict[str, dict[str, float]] = {}
        errors: dict[str, dict[str, float]] = {}
        for method in config.methods:
            cells, seconds, peak = [], [], []
            for shot in shots:
                cell = summary.get((dataset, method, shot))
                base = summary.get((dataset, "supervised", shot))
                if cell is None:
                    cells.append("")
                    continue
                mark = ""
                enough = base is not None and min(cell["seeds"], base["seeds"]) >= 2
                if enough and method != "supervised" and cell["mean"] - base["mean"] > cell["std"] + base["std"]:  # type: ignore[index]
                    mark = " ✓"
                cells.append(f"{cell['mean']:.3f} ± {cell['std']:.3f} ({int(cell['seeds'])}){mark}")
                seconds.append(cell["seconds"])
                peak.append(cell["peak_mib"])
                series.setdefault(method, {})[shot] = cell["mean"]
                errors.setdefault(method, {})[shot] = cell["std"]
            timing = f"{np.mean(seconds):.0f}" if seconds else ""
            memory = f"{max(peak):.0f}" if peak else ""
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {timing} | {memory} |")
        complete = {name: points for name, points in series.items() if len(points) == len(shots)}
        if complete:
            accuracy_plot(complete, config.out / f"semi_{dataset}.png", f"semi-supervised vs labelled-only: {dataset}",
                          {name: errors[name] for name in complete})
        lines.append("")
    text = "\n".join(lines)
    (config.out / "report.md").write_text(text)
    return text


def run(config: SemiConfig) -> str:
    config.out.mkdir(parents=True, exist_ok=True)
    results = config.out / "results.jsonl"
    done = {(r["dataset"], r["method"], r["labels"], r["seed"]) for r in read_rows(results)}
    for seed in config.seeds:
        for dataset in config.datasets:
            for labels in config.labels:
                for method in config.methods:
                    if (dataset, method, shot_name(labels), seed) in done:
                        continue
                    row = run_one(config, dataset, method, labels, seed)
                    with open(results, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{dataset} {method} {shot_name(labels)}/class seed {seed}: {row['accuracy']:.3f} in {row['seconds']:.0f} s", flush=True)
                    report(config, read_rows(results))
    return report(config, read_rows(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SemiConfig.out)
    parser.add_argument("--datasets", nargs="+", default=list(SemiConfig.datasets), choices=sorted(HELD_OUT_SETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=SemiConfig.steps)
    parser.add_argument("--batch-size", type=int, default=SemiConfig.batch_size)
    parser.add_argument("--mu", type=int, default=SemiConfig.mu)
    parser.add_argument("--width", type=int, default=SemiConfig.width)
    args = parser.parse_args(argv)
    config = SemiConfig(
        out=args.out, datasets=tuple(args.datasets), methods=tuple(args.methods), seeds=tuple(args.seeds), steps=args.steps,
        batch_size=args.batch_size, mu=args.mu, width=args.width,
    )
    print(run(config))


if __name__ == "__main__":
    main()
