"""``selfsup compare --seeds``: the comparison once per pretraining seed, and each row's gain
over random init across the seeds.

A pretraining run's gain over its random init (:func:`selfsup.experiments.compare.paired_delta`) moves by
a few hundredths with the seed — the initial weights, the data order, every augmentation draw —
which is more than the probe's label-seed spread at small budgets. Each seed S runs
:func:`selfsup.experiments.compare.compare` with ``seed=S`` into ``out/seed-S`` (the random-init rows are
rebuilt from the same seed, so every row stays paired with its own initial weights); the summary
gives, per row, the gain at each seed (mean over label seeds), their mean and std across
pretraining seeds, and at how many seeds the gain was positive.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.experiments.compare import CompareConfig, compare, paired_differences, row_baseline
from selfsup.eval.protocol import shot_name


def seed_gains(report: dict[str, Any]) -> dict[str, float]:
    """Every pretrained row's gain over its random init at the report's first shot (mean of the
    label-seed differences)."""
    shot = shot_name(report["config"]["shots"][0])
    results = report["results"]
    gains = {}
    for name, table in results.items():
        baseline = row_baseline(results, table)
        if baseline is not None:
            gains[name] = float(paired_differences(table, baseline, shot).mean())
    return gains


def summarise_seeds(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``{"seeds": [...], "shot": ..., "rows": {row: {"gains", "mean", "std", "positive"}}}`` over the
    rows present in every report."""
    seeds = list(reports)
    gains = {seed: seed_gains(report) for seed, report in reports.items()}
    rows = [name for name in gains[seeds[0]] if all(name in gains[seed] for seed in seeds)]
    summary: dict[str, Any] = {"seeds": seeds, "shot": shot_name(reports[seeds[0]]["config"]["shots"][0]), "rows": {}}
    for name in rows:
        values = np.array([gains[seed][name] for seed in seeds])
        summary["rows"][name] = {
            "gains": values.tolist(), "mean": float(values.mean()), "std": float(values.std()), "positive": int((values > 0).sum()),
        }
    return summary


def seeds_table(summary: dict[str, Any]) -> str:
    """The summary as a markdown table, rows by mean gain."""
    seeds = summary["seeds"]
    header = ["backbone", *[f"Δ, seed {seed}" for seed in seeds], "mean ± std over seeds", "seeds with a gain"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in sorted(summary["rows"].items(), key=lambda item: -item[1]["mean"]):
        cells = [f"{gain:+.3f}" for gain in row["gains"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['mean']:+.3f} ± {row['std']:.3f} | {row['positive']} of {len(seeds)} |")
    return "\n".join(lines)


def compare_seeds(
    out_dir: str | Path, methods: Sequence[str] | None, config: CompareConfig, seeds: Sequence[int], progress: bool = True,
) -> dict[str, Any]:
    """Runs :func:`compare` once per pretraining seed into ``out_dir/seed-S``, then writes
    ``seeds.json`` and ``seeds.md`` (:func:`seeds_table`) under ``out_dir`` and returns the summary.

    Raises:
        ValueError: no seeds or a repeated seed, and whatever :func:`compare` raises.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct pretraining seeds, got {list(seeds)}")
    out = Path(out_dir)
    reports = {seed: compare(out / f"seed-{seed}", methods, dataclasses.replace(config, seed=seed), progress) for seed in seeds}
    summary = summarise_seeds(reports)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps(summary, indent=2))
    (out / "seeds.md").write_text(seeds_table(summary) + "\n")
    return summary
