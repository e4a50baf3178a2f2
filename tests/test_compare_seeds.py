"""Pretraining seeds: each row's gain over random init across seeds, and the CLI that runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selfsup.experiments.compare import CompareConfig
from selfsup.experiments.seeds import compare_seeds, seed_gains, seeds_table, summarise_seeds


def report(random_runs: list[float], row_runs: dict[str, list[float]]) -> dict:
    def table(runs: list[float]) -> dict:
        return {"linear": {"10": {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}}, "knn_all": 0.9}

    results = {"random init": table(random_runs)}
    for name, runs in row_runs.items():
        results[name] = {**table(runs), "pretraining": {"baseline": "random init", "seconds": 1.0, "images_per_s": 1.0}}
    return {"config": {"shots": [10, None]}, "results": results}


def test_the_summary_gives_each_rows_gain_per_seed_and_across_seeds() -> None:
    reports = {
        0: report([0.70, 0.80], {"rotnet": [0.72, 0.84], "jigsaw": [0.68, 0.79]}),
        1: report([0.60, 0.70], {"rotnet": [0.60, 0.74], "jigsaw": [0.65, 0.70]}),
        2: report([0.75, 0.75], {"rotnet": [0.80, 0.80], "jigsaw": [0.74, 0.75]}),
    }
    assert seed_gains(reports[0]) == pytest.approx({"rotnet": 0.03, "jigsaw": -0.015})
    summary = summarise_seeds(reports)
    rotnet = np.array([0.03, 0.02, 0.05])  # mean of the label-seed differences, per pretraining seed
    jigsaw = np.array([-0.015, 0.025, -0.005])
    assert summary["seeds"] == [0, 1, 2] and summary["shot"] == "10"
    assert summary["rows"]["rotnet"]["gains"] == pytest.approx(rotnet.tolist())
    assert summary["rows"]["rotnet"]["mean"] == pytest.approx(rotnet.mean()) and summary["rows"]["rotnet"]["std"] == pytest.approx(rotnet.std())
    assert summary["rows"]["rotnet"]["positive"] == 3 and summary["rows"]["jigsaw"]["positive"] == 1
    lines = seeds_table(summary).splitlines()
    assert lines[0] == "| backbone | Δ, seed 0 | Δ, seed 1 | Δ, seed 2 | mean ± std over seeds | seeds with a gain |"
    assert lines[2] == f"| rotnet | +0.030 | +0.020 | +0.050 | +0.033 ± {rotnet.std():.3f} | 3 of 3 |"
    assert lines[3].startswith("| jigsaw | -0.015 | +0.025 | -0.005 | +0.002 ± ")


def test_compare_seeds_runs_one_comparison_per_seed(tmp_path: Path) -> None:
    config = CompareConfig(steps=1, batch_size=8, width=4, shots=(10,), label_seeds=(0, 1), warmup_steps=0)
    summary = compare_seeds(tmp_path, ["rotnet"], config, seeds=[0, 3], progress=False)
    reports = {seed: json.loads((tmp_path / f"seed-{seed}" / "compare.json").read_text()) for seed in (0, 3)}
    assert [reports[seed]["config"]["seed"] for seed in (0, 3)] == [0, 3]
    # each seed rebuilds its own random init, which its rows are paired with
    assert reports[0]["results"]["random init"]["linear"]["10"]["runs"] != reports[3]["results"]["random init"]["linear"]["10"]["runs"]
    assert summary["rows"]["rotnet"]["gains"] == pytest.approx([seed_gains(reports[seed])["rotnet"] for seed in (0, 3)])
    assert json.loads((tmp_path / "seeds.json").read_text()) == summary
    assert (tmp_path / "seeds.md").read_text().startswith("| backbone | Δ, seed 0 | Δ, seed 3 |")
    with pytest.raises(ValueError, match="^seeds: expected distinct"):
        compare_seeds(tmp_path, ["rotnet"], config, seeds=[1, 1])


@pytest.mark.parametrize(("flag", "message"), [("--seeds=0,x", "--seeds"), ("--seeds=1,1", "--seeds"), ("--validation=100000", "validation:")])
def test_bad_seed_lists_and_validation_sizes_end_with_a_one_line_error(flag: str, message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "selfsup", "compare", "--methods", "rotnet", "--steps", "10", "--out", str(tmp_path), flag],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
