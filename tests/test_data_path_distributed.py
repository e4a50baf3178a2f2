"""The data path across processes: DDP ranks reading one folder, resume under two ranks, two
nodes on localhost, and forked loader workers that never hang."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from test_data_path import write_varied_folder
from test_distributed import PREAMBLE, free_port, launch_two_ranks

SCRIPT = PREAMBLE + textwrap.dedent(
    """
    import os
    from selfsup.data import ImageFolder
    from selfsup.methods.rotnet import RotNet
    from selfsup.training import TrainConfig, Trainer

    out, data, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Killed(RotNet):
        calls = 0
        def training_step(self, batch):
            Killed.calls += 1
            if Killed.calls == kill_at:
                raise SystemExit(3)
            return super().training_step(batch)

    torch.manual_seed(0)
    method = Killed(NoBatchStats())
    config = TrainConfig(steps=5, batch_size=8, lr=0.1, checkpoint_every=2, log_every=1, progress=False, workers=1)
    trainer = Trainer(method, ImageFolder(data), config, out, image_size=12)
    if os.path.exists(os.path.join(out, "checkpoint.pt")):
        trainer.resume()
    trainer.fit()
    if trainer.rank == 0:
        torch.save(method.state_dict(), out + "/final.pt")
    """
)


def assert_same_weights(a: Path, b: Path) -> None:
    one, two = torch.load(a), torch.load(b)
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6, msg=key)


def one_process_run(tmp_path: Path) -> tuple[Path, str]:
    """A folder of 21 images and the training script, run once in one process into ``one/``."""
    write_varied_folder(tmp_path / "data", 21)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    data = str(tmp_path / "data")
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), data, "0"], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    return script, data


def test_two_ranks_on_a_folder_match_one_process_and_resume_exactly(tmp_path: Path):
    script, data = one_process_run(tmp_path)
    launch_two_ranks(script, str(tmp_path / "two"), data, "0")
    assert_same_weights(tmp_path / "one" / "final.pt", tmp_path / "two" / "final.pt")
    # both ranks killed at step 4 (the checkpoint is at step 2, mid-epoch 1), then resumed
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    killed = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "resumed"), data, "4"], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for r in range(2)
    ]
    assert [p.wait(timeout=300) for p in killed] == [3, 3]
    assert not (tmp_path / "resumed" / "final.pt").exists()
    launch_two_ranks(script, str(tmp_path / "resumed"), data, "0")
    assert_same_weights(tmp_path / "two" / "final.pt", tmp_path / "resumed" / "final.pt")


def test_two_nodes_on_localhost_through_torchrun(tmp_path: Path):
    script, data = one_process_run(tmp_path)
    port = str(free_port())
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "1",
             "--master-addr", "127.0.0.1", "--master-port", port, str(script), str(tmp_path / "nodes"), data, "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for node in range(2)
    ]
    for p in nodes:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert_same_weights(tmp_path / "one" / "final.pt", tmp_path / "nodes" / "final.pt")


FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    import numpy as np
    import selfsup.ops as ops

    images = np.zeros((8, 16, 16, 3), np.uint8)
    busy = threading.Thread(target=lambda: [ops.rotations(images) for _ in range(200)], daemon=True)
    busy.start()  # the pool is busy with first native calls while we fork
    pid = os.fork()
    if pid == 0:
        out = ops.rotations(images)
        os._exit(0 if out.images.shape == (8, 16, 16, 3) else 1)
    deadline, code = time.time() + 20, 99
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
    busy.join()
    sys.exit(code)
    """
)


def test_forking_while_another_thread_makes_native_calls_never_hangs():
    codes = [subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, timeout=120).returncode for _ in range(12)]
    assert codes == [0] * 12
