"""Checkpoints come from users: they load as data only, and a file that needs unpickling is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup.methods.rotnet import RotNet
from selfsup.models.backbones import small_resnet
from selfsup.training import TrainConfig, Trainer, load_checkpoint


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_carries_code_is_refused_and_never_runs(tmp_path: Path):
    marker = tmp_path / "ran"
    evil = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "metadata": {"backbone": {"name": "small_resnet", "options": {}}}, "x": Payload(marker)}, evil)
    with pytest.raises(ValueError, match="refused .it needs posix.system"):
        load_checkpoint(evil)
    for command in (["eval", "--checkpoint", str(evil)], ["export", "--checkpoint", str(evil), "--out", str(tmp_path / "b.pt")]):
        done = subprocess.run([sys.executable, "-m", "selfsup", *command], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "is refused" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("schedule, optimizer, amp", [("onecycle", "lars", "fp16"), ("cosine", "adamw", "bf16"), ("cosine", "sgd", "none")])
def test_every_checkpoint_the_trainer_writes_loads_as_data(tmp_path: Path, schedule: str, optimizer: str, amp: str):
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    config = TrainConfig(steps=2, batch_size=8, schedule=schedule, optimizer=optimizer, amp=amp, progress=False, checkpoint_every=1)
    Trainer(RotNet(small_resnet(width=4)), images, config, tmp_path, metadata={"backbone": {"name": "small_resnet", "options": {"width": 4}}}).fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 2 and state["config"]["schedule"] == schedule
    resumed = Trainer(RotNet(small_resnet(width=4)), images, config, tmp_path)
    assert resumed.resume() and resumed.step == 2


def test_resuming_with_other_settings_is_refused_or_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    Trainer(RotNet(small_resnet(width=4)), images, TrainConfig(steps=2, batch_size=8, progress=False), tmp_path).fit()
    changed = TrainConfig(steps=4, batch_size=8, optimizer="adamw", lr=0.01, progress=False)
    with pytest.raises(ValueError, match=r"steps 2 -> 4; lr 0.1 -> 0.01; optimizer 'sgd' -> 'adamw'"):
        Trainer(RotNet(small_resnet(width=4)), images, changed, tmp_path).resume()
    trainer = Trainer(RotNet(small_resnet(width=4)), images, changed, tmp_path)
    assert trainer.resume(allow_changes=True) and trainer.step == 2
    assert "resuming" in capsys.readouterr().err
    # the schedule continues at step 2 of the new run: warm-up/cosine factor of step 2 of 4
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 2 / 4)))
    trainer.fit()
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]


class KilledAtStep4(RotNet):
    calls = 0

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        KilledAtStep4.calls += 1
        if KilledAtStep4.calls == 4:
            raise KeyboardInterrupt
        return super().training_step(batch)


def test_a_resumed_run_logs_each_step_once_and_clears_orphans(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    config = TrainConfig(steps=4, batch_size=8, progress=False, log_every=1, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):  # steps 1-3 logged, the checkpoint is step 2's
        Trainer(KilledAtStep4(small_resnet(width=4)), images, config, tmp_path).fit()
    with open(tmp_path / "metrics.jsonl", "a") as metrics:
        metrics.write('{"step": 4, "lo')  # a row cut short by the kill
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"partial")
    resumed = Trainer(RotNet(small_resnet(width=4)), images, config, tmp_path)
    assert resumed.resume() and resumed.step == 2
    resumed.fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_says_when_resume_finds_no_checkpoint(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "selfsup", "train", "--method", "rotnet", "--steps", "1", "--batch-size", "8", "--width", "4",
         "--resume", "--out", str(tmp_path / "run"), "--quiet"], capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0 and f"--resume: no checkpoint in {tmp_path / 'run'}; starting from step 0" in done.stderr
