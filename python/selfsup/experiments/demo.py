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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from selfsup import plugins
from selfsup.data import load_digits
from selfsup.eval.protocol import extract_features, format_table, probe_table
from selfsup.run.build import build_trainer, resolve_run
from selfsup.viz.plot import probe_plot

DEMO_BUDGETS: dict[str, dict[str, Any]] = {
    "simclr": {"steps": 150, "batch_size": 128, "weight_decay": 5e-4, "warmup_steps": 10, "checkpoint_every": 50},
    "rotnet": {"steps": 300, "batch_size": 64, "weight_decay": 5e-4, "warmup_steps": 10, "checkpoint_every": 100},
}
"""The demo's budget per method; everything else (optimizer, learning rate, options) is the
method's registered recipe. Each run folder is a complete run: ``config.toml`` trains it again and
its checkpoint works with ``selfsup eval``, ``export``, ``show`` and ``finetune``."""
BACKBONE = ("small_resnet", {"width": 16})


def make_backbone(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    name, options = BACKBONE
    backbone: torch.nn.Module = plugins.get("backbones", name)(**options)
    return backbone


def run_demo(out_dir: Path, methods: tuple[str, ...] = ("simclr", "rotnet"), progress: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Pretrains each of ``methods`` on the digits at its demo budget on ``device`` and probes it,
    and the random-init backbone, on the held-out split; writes report.json and probe.png."""
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

    report["results"]["random init"] = evaluate(make_backbone(0).to(device))
    for name in methods:
        run = resolve_run({"method": name, "data": "digits", "out": str(out_dir / name), "device": device, **DEMO_BUDGETS[name]})
        trainer = build_trainer(run, progress=progress)
        start = time.perf_counter()
        log = trainer.fit()
        seconds = time.perf_counter() - start
        table = evaluate(trainer.method.backbone)
        table["pretraining"] = {"seconds": seconds, "steps": run.steps, "final": log[-1], "config": asdict(trainer.config)}
        report["results"][name] = table
    (out_dir).mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    probe_plot(report["results"], out_dir / "probe.png", title="sklearn digits: held-out linear probe, mean ± std of 3 label seeds")
    return report
