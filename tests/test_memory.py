"""PeakMemory: what a block adds to the process at its peak, measured without sampling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from selfsup.experiments.compare import load_lazy_imports, markdown_table, method_of, recipe_for
from selfsup.methods.base import Method
from selfsup.models.inputs import images_to_tensor
from selfsup.training import TrainConfig, Trainer
from selfsup.training.memory import PeakMemory

MIB = 2**20

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the exact CPU peak reads /proc (elsewhere: a lower bound)")


class Hungry(Method):
    """A method whose every step also allocates (and frees) a ``extra_mib`` float32 tensor."""

    name: ClassVar[str] = "hungry"
    views: ClassVar[tuple[str, ...]] = ("images",)

    def __init__(self, extra_mib: int) -> None:
        backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        backbone.out_dim = 4  # type: ignore[assignment]
        super().__init__(backbone)
        self.extra = extra_mib * MIB // 4

    def make_batch(self, images, *, seed, epoch, indices, device="cpu"):  # type: ignore[no-untyped-def]
        return {"images": images_to_tensor(images, device)}

    def training_step(self, batch):  # type: ignore[no-untyped-def]
        scratch = torch.ones(self.extra)
        return {"loss": self.backbone(batch["images"]).pow(2).mean() + 0.0 * scratch.sum()}


@linux
def test_a_block_reports_what_it_allocated_at_its_peak_not_before():
    with PeakMemory() as big:
        tensor = torch.ones(48 * MIB // 4)
        del tensor
    assert big.source == "rss high-water mark"
    assert 0.9 * 48 * MIB <= big.bytes <= 64 * MIB, big.bytes / MIB
    with PeakMemory() as nothing:
        torch.zeros(4)
    assert nothing.bytes < 4 * MIB, nothing.bytes / MIB


@linux
def test_a_method_allocating_a_big_tensor_reports_a_larger_pretraining_peak(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    load_lazy_imports()  # as compare does: the first optimizer's imports belong to no method
    peaks = []
    # the first run also pays the process's remaining first-use costs; the last one is the baseline
    for run, extra in enumerate((0, 64, 0)):
        config = TrainConfig(steps=2, batch_size=8, lr=0.01, log_every=1, progress=False, checkpoint_every=2)
        with PeakMemory(config.device) as peak:
            Trainer(Hungry(extra), images, config, tmp_path / str(run)).fit()
        peaks.append(peak.bytes / MIB)
    assert peaks[1] - peaks[2] >= 0.9 * 64, peaks
    assert peaks[2] < 8, peaks


def test_the_table_shows_the_peak_and_rows_name_their_method():
    assert method_of("mocov1") == "moco" and recipe_for("mocov1").options["version"] == 1
    assert method_of("simclr") == "simclr"
    probe = {"linear": {"10": {"mean": 0.8, "std": 0.01}}, "knn_all": 0.9}
    report = {
        "config": {"shots": [10]},
        "results": {
            "random init": probe,
            "mocov1": {**probe, "pretraining": {"seconds": 12.0, "images_per_s": 50.0, "peak_memory_mb": 123.4}},
        },
    }
    lines = markdown_table(report).splitlines()
    assert lines[0].endswith("| pretraining s | source images/s | peak MiB |")
    assert lines[-1] == "| mocov1 | 0.800 ± 0.010 | 0.900 | +0.000 | 12 | 50 | 123 |"
    assert lines[2].endswith("|  |  |  |")


def test_the_gain_over_random_init_is_paired_by_label_seed():
    runs = {"random init": [0.70, 0.80, 0.75], "rotnet": [0.72, 0.83, 0.76]}
    results = {name: {"linear": {"10": {"mean": float(np.mean(r)), "std": float(np.std(r)), "runs": r}}, "knn_all": 0.9} for name, r in runs.items()}
    results["rotnet"]["pretraining"] = {"seconds": 1.0, "images_per_s": 1.0}
    row = markdown_table({"config": {"shots": [10]}, "results": results}).splitlines()[-1]
    differences = np.array(runs["rotnet"]) - np.array(runs["random init"])  # 0.02, 0.03, 0.01
    assert f"| +{differences.mean():.3f} ± {differences.std():.3f} |" in row
    assert "| +0.020 ± 0.008 |" in row  # the rows' own spreads (≈ 0.04) would hide this gain
