"""Two gloo processes on CPU train like one process on the global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch
    from torch import nn
    torch.set_num_threads(1)
    from selfsup.methods.rotnet import RotNet
    from selfsup.methods.simclr import SimCLR
    from selfsup.methods.moco import MoCo
    from selfsup.methods.vicreg import VICReg
    from selfsup.methods.cmc import CMC
    from selfsup.train import TrainConfig, Trainer

    class NoBatchStats(nn.Module):
        # conv features without BatchNorm: per-sample losses, so sharding is exact
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
            self.out_dim = 16
        def forward(self, x):
            return self.net(x).mean(dim=(2, 3))

    torch.manual_seed(0)
    if sys.argv[2] == "rotnet":
        method = RotNet(NoBatchStats())
    elif sys.argv[2] == "moco":
        # 48 keys over 3 steps wrap a 40-row queue: both runs must end with the same queue
        method = MoCo(NoBatchStats(), queue_size=40, head_layers=1, projection_dim=8)
    elif sys.argv[2] == "vicreg":
        method = VICReg(NoBatchStats(), projector_layers=1, projection_dim=8)
    elif sys.argv[2] == "cmc":
        # one bank per view, written with every rank's rows in global-batch order; negatives drawn per step
        backbone = NoBatchStats()
        backbone.net[0] = nn.Conv2d(1, 8, 3, 2, 1)
        method = CMC(backbone, views=("L", "ab", "gradient"), embedding_dim=8, negatives=32)
    else:
        # a linear projection (no BatchNorm) keeps every per-anchor loss independent of the sharding;
        # the negatives come from all ranks through the loss's all-gather
        method = SimCLR(NoBatchStats(), head_layers=1, projection_dim=8, temperature=0.2)
    images = np.random.default_rng(1).integers(0, 256, (48, 12, 12, 3), dtype=np.uint8)
    config = TrainConfig(steps=3, batch_size=16, lr=0.1, checkpoint_every=3, log_every=1, progress=False)
    trainer = Trainer(method, images, config, sys.argv[1])
    trainer.fit()
    if trainer.rank == 0:
        torch.save(method.state_dict(), sys.argv[1] + "/final.pt")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("method", ["rotnet", "simclr", "moco", "vicreg", "cmc"])
def test_two_gloo_processes_match_one_process(tmp_path: Path, method: str):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), method], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "two"), method],
            env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    one = torch.load(tmp_path / "one" / "final.pt")
    two = torch.load(tmp_path / "two" / "final.pt")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6, msg=key)
    assert (tmp_path / "two" / "metrics.rank1.jsonl").exists()
