"""Trainer: exact resume after SIGKILL, atomic checkpoints, schedules, LARS, bad configuration."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup.training import LARS, TrainConfig, Trainer, load_checkpoint, save_checkpoint, warmup_cosine

TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, numpy as np, torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from selfsup.methods.rotnet import RotNet
    from selfsup.models import small_resnet
    from selfsup.training import TrainConfig, Trainer

    out, kill_at = sys.argv[1], int(sys.argv[2])

    class Killed(RotNet):
        name = "rotnet"
        def on_step_end(self, step, total):
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    method = Killed(small_resnet(width=4))
    config = TrainConfig(steps=8, batch_size=16, lr=0.05, checkpoint_every=2, log_every=1, progress=False, warmup_steps=2)
    trainer = Trainer(method, images, config, out)
    resumed = trainer.resume()
    print("resumed at", trainer.step if resumed else None, flush=True)
    trainer.fit()
    torch.save(method.state_dict(), os.path.join(out, "final.pt"))
    """
)


def run(out: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(out), str(kill_at)], capture_output=True, text=True, timeout=300)


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path):
    straight = run(tmp_path / "straight", kill_at=-1)
    assert straight.returncode == 0, straight.stderr
    killed = run(tmp_path / "killed", kill_at=5)
    assert killed.returncode == -9, killed.stderr
    assert load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["step"] == 4
    assert not (tmp_path / "killed" / "final.pt").exists()
    resumed = run(tmp_path / "killed", kill_at=-1)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at 4" in resumed.stdout
    a = torch.load(tmp_path / "straight" / "final.pt")
    b = torch.load(tmp_path / "killed" / "final.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert not list((tmp_path / "killed").glob("*.tmp"))


def test_checkpoint_write_is_atomic(tmp_path: Path):
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checkpoint({"model": {}, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_warmup_cosine_formula():
    f = warmup_cosine(100, 10, final_factor=0.0)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    for step in (10, 35, 60, 99):
        assert f(step) == pytest.approx(0.5 * (1 + math.cos(math.pi * (step - 10) / 90)))
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(10, 11)


def test_lars_step_matches_the_formula():
    torch.manual_seed(0)
    w = torch.randn(5, 3, requires_grad=True)
    w0 = w.detach().clone()
    g = torch.randn(5, 3)
    w.grad = g.clone()
    opt = LARS([{"params": [w], "weight_decay": 0.1, "adapt": True}], lr=0.5, momentum=0.9, eta=0.02)
    opt.step()
    d = g + 0.1 * w0
    trust = 0.02 * w0.norm() / d.norm()
    torch.testing.assert_close(w.detach(), w0 - 0.5 * trust * d)


def test_bad_configuration_is_rejected(tmp_path: Path):
    from selfsup.methods.rotnet import RotNet
    from selfsup.models import small_resnet

    images = np.zeros((4, 8, 8, 3), np.uint8)
    for field, value in [("steps", 0), ("lr", -1.0), ("schedule", "linear"), ("amp", "fp8"), ("batch_size", 0)]:
        config = TrainConfig(**{field: value})
        with pytest.raises(ValueError, match=field):
            Trainer(RotNet(small_resnet(width=4)), images, config, tmp_path)
    with pytest.raises(ValueError, match="images"):
        Trainer(RotNet(small_resnet(width=4)), images.astype(np.float32), TrainConfig(), tmp_path)


def test_epochs_visit_every_image_once(tmp_path: Path):
    from selfsup.methods.rotnet import RotNet
    from selfsup.models import small_resnet

    trainer = Trainer(RotNet(small_resnet(width=4)), np.zeros((10, 8, 8, 3), np.uint8), TrainConfig(batch_size=3), tmp_path)
    first = np.concatenate([trainer.batch_indices(m)[1] for m in range(3)])
    assert len(set(first.tolist())) == 9 and trainer.batch_indices(3)[0] == 1
    np.testing.assert_array_equal(trainer.batch_indices(4)[1], trainer.batch_indices(4)[1])


def test_fp16_steps_are_unscaled_and_the_scaler_is_checkpointed(tmp_path: Path):
    from selfsup.methods.rotnet import RotNet
    from selfsup.models import small_resnet

    images = np.random.default_rng(0).integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    weights = {}
    for amp in ("none", "fp16"):
        torch.manual_seed(0)
        method = RotNet(small_resnet(width=4))
        config = TrainConfig(steps=1, batch_size=8, lr=0.5, amp=amp, progress=False, checkpoint_every=1)
        trainer = Trainer(method, images, config, tmp_path / amp)
        trainer.fit()
        weights[amp] = method.head.weight.detach().clone()
    # a scaled-but-not-unscaled gradient would move the weights 65536 times further
    torch.testing.assert_close(weights["fp16"], weights["none"], rtol=0.05, atol=2e-3)
    state = load_checkpoint(tmp_path / "fp16" / "checkpoint.pt")
    assert state["scaler"]["scale"] == 65536.0 and state["scaler"]["_growth_tracker"] == 1
    torch.manual_seed(0)
    resumed = Trainer(RotNet(small_resnet(width=4)), images, TrainConfig(steps=2, batch_size=8, amp="fp16", progress=False), tmp_path / "fp16")
    assert resumed.resume(allow_changes=True) and resumed.scaler.state_dict()["_growth_tracker"] == 1
