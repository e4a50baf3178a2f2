"""``selfsup demo``: pretrain on the embedded digits, then probe against random init.

Protocol (EVALUATION.md): the fixed held-out split of :func:`selfsup.data.load_digits` is never seen
by pretraining or probe fitting; the linear probe (z-scored features, multinomial logistic
regression to convergence) is fitted on 1, 5, 10 and all labels per class, 3 seeds each, for the
pretrained backbone and for the *same* architecture and initialisation untrained.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from selfsup import plugins
from selfsup.data import load_digits
from selfsup.eval.protocol import extract_features, probe_table
from selfsup.train import TrainConfig, Trainer
from selfsup.viz.plot import accuracy_plot

DEMO_RECIPES: dict[str, TrainConfig] = {
    "simclr": TrainConfig(steps=150, batch_size=128, lr=0.3, weight_decay=5e-4, warmup_steps=10, log_every=10, checkpoint_every=50),
    "rotnet": TrainConfig(steps=300, batch_size=64, lr=0.05, weight_decay=5e-4, warmup_steps=10, log_every=10, checkpoint_every=100),
}
BACKBONE = ("small_resnet", {"width": 16})


def make_backbone(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    name, options = BACKBONE
    backbone: torch.nn.Module = plugins.get("backbones", name)(**options)
    return backbone


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    shots = list(next(iter(rows.values()))["linear"].keys())
    header = f"{'backbone':<22}" + "".join(f"{s + ' / class':>16}" for s in shots) + f"{'kNN all':>10}"
    lines = [header, "-" * len(header)]
    for name, table in rows.items():
        cells = "".join(f"{table['linear'][s]['mean']:>10.3f} ±{table['linear'][s]['std']:.3f}" for s in shots)
        lines.append(f"{name:<22}{cells}{table['knn_all']:>10.3f}")
    return "\n".join(lines)


def run_demo(out_dir: Path, methods: tuple[str, ...] = ("simclr", "rotnet"), progress: bool = True) -> dict[str, Any]:
    torch.manual_seed(0)
    data = load_digits()
    report: dict[str, Any] = {
        "dataset": {"name": "sklearn digits 32x32", "train": len(data.train.labels), "test": len(data.test.labels)},
        "backbone": {"name": BACKBONE[0], **BACKBONE[1]},
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
        "results": {},
    }

    def evaluate(backbone: torch.nn.Module) -> dict[str, Any]:
        train = extract_features(backbone, data.train.images)
        test = extract_features(backbone, data.test.images)
        return probe_table(train, data.train.labels, test, data.test.labels)

    report["results"]["random init"] = evaluate(make_backbone(0))
    for name in methods:
        method = plugins.get("methods", name)(make_backbone(0))
        config = replace(DEMO_RECIPES[name], progress=progress)
        start = time.perf_counter()
        log = Trainer(method, data.train.images, config, out_dir / name).fit()
        seconds = time.perf_counter() - start
        table = evaluate(method.backbone)
        table["pretraining"] = {"seconds": seconds, "steps": config.steps, "final": log[-1], "config": asdict(config)}
        report["results"][name] = table
    (out_dir).mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    series = {name: {s: v["mean"] for s, v in table["linear"].items()} for name, table in report["results"].items()}
    accuracy_plot(series, out_dir / "probe.png", title="digits: held-out linear probe (mean of 3 seeds)")
    return report
