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

PREAMBLE = textwrap.dedent(
    """
    import sys, numpy as np, torch
    from torch import nn
    torch.set_num_threads(1)

    class NoBatchStats(nn.Module):
        # conv features without BatchNorm: per-sample losses, so sharding is exact
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
            self.out_dim = 16
        def forward(self, x):
            return self.net(x).mean(dim=(2, 3))
    """
)
"""What every training script starts with: one torch thread and a backbone without batch statistics."""

SCRIPT = PREAMBLE + textwrap.dedent(
    """
    from selfsup.methods.rotnet import RotNet
    from selfsup.methods.simclr import SimCLR
    from selfsup.methods.moco import MoCo
    from selfsup.methods.vicreg import VICReg
    from selfsup.methods.instdisc import InstDisc
    from selfsup.methods.cpc import CPC
    from selfsup.methods.swav import SwAV
    from selfsup.methods.supcon import SupCon
    from selfsup.methods.cmc import CMC
    from selfsup.training import TrainConfig, Trainer

    torch.manual_seed(0)
    if sys.argv[2] == "rotnet":
        method = RotNet(NoBatchStats())
    elif sys.argv[2] == "moco":
        # 48 keys over 3 steps wrap a 40-row queue: both runs must end with the same queue
        method = MoCo(NoBatchStats(), queue_size=40, head_layers=1, projection_dim=8)
    elif sys.argv[2] == "vicreg":
        method = VICReg(NoBatchStats(), projector_layers=1, projection_dim=8)
    elif sys.argv[2] == "instdisc":
        # NCE: the same noise rows on every rank, Z averaged over ranks, the 48-row bank updated with
        # every rank's embeddings; both runs must end with the same bank
        method = InstDisc(NoBatchStats(), loss="nce", negatives=32, embedding_dim=8)
    elif sys.argv[2] == "cpc":
        # v2: patch-wise augmentation on per-sample streams, predictions down and up; the patches
        # below of all ranks are the negatives through the loss's all-gather
        method = CPC(NoBatchStats(), version=2, grid=3, patch=4, stride=4, offsets=2, context_layers=1)
    elif sys.argv[2] == "swav":
        # Sinkhorn's per-prototype sums are all-reduced; 16 embeddings per global crop fill the
        # queue at step 1 and it joins Sinkhorn at steps 2 and 3; the prototypes thaw after step 1
        method = SwAV(NoBatchStats(), prototypes=10, head_layers=1, projection_dim=8, queue_size=16,
                      freeze_prototypes_steps=1, local_crops=2)
    elif sys.argv[2] == "supcon":
        # views and class labels of both ranks are gathered into the loss
        method = SupCon(NoBatchStats(), head_layers=1, projection_dim=8)
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
    labels = np.arange(48) % 5 if sys.argv[2] == "supcon" else None
    trainer = Trainer(method, images, config, sys.argv[1], labels=labels)
    trainer.fit()
    if trainer.rank == 0:
        torch.save(method.state_dict(), sys.argv[1] + "/final.pt")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("method", ["rotnet", "simclr", "moco", "vicreg", "instdisc", "cpc", "swav", "supcon", "cmc"])
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


JOINT_SCRIPT = PREAMBLE + textwrap.dedent(
    """
    from selfsup import plugins
    from selfsup.models.vit import ViT
    from selfsup.training import TrainConfig, Trainer

    # the heads keep their BatchNorm: sync_bn makes its statistics those of the global batch
    OPTIONS = {
        "byol": ("byol", {"projection_dim": 8}),
        "barlow_twins": ("barlow_twins", {"projection_dim": 8}),
        "nnclr": ("nnclr", {"projection_dim": 8, "support_size": 40}),
        "dino": ("dino", {"out_dim": 16, "bottleneck_dim": 8, "local_crops": 2}),
        "moco3": ("moco", {"version": 3, "projection_dim": 8}),
        # Shuffling BatchNorm on, no BatchNorm anywhere: the keys are the unshuffled encoding
        "moco1": ("moco", {"version": 1, "queue_size": 40, "projection_dim": 8}),
        # nothing gathered: per-sample losses, the global batch's mean through DDP's averaging
        "simsiam": ("simsiam", {"projection_dim": 8}),
        # the jigsaw tiles of each image and the bank written with every rank's rows; the same
        # 32 negatives drawn on every rank
        "pirl": ("pirl", {"embedding_dim": 8, "negatives": 32, "cell": 4, "patch": 3, "permutations": 10}),
        # one warm-up step, then k-means of the bank (identical on every rank) before every step
        "local_aggregation": ("local_aggregation", {"background": 16, "clusters": 4, "cluster_every": 1, "warmup_steps": 1,
                                                    "embedding_dim": 8}),
        # masks seeded per sample, whichever rank holds it; LayerNorm only
        "mae": ("mae", {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}),
    }
    BACKBONES = {"mae": lambda: ViT(12, 4, 16, 1, 2, 2.0, 3, "cls")}
    images = np.random.default_rng(1).integers(0, 256, (48, 12, 12, 3), dtype=np.uint8)
    for name in sys.argv[2].split(","):
        torch.manual_seed(0)
        registered, options = OPTIONS[name]
        method = plugins.get("methods", registered)(BACKBONES.get(name, NoBatchStats)(), **options)
        config = TrainConfig(steps=3, batch_size=16, lr=0.1, checkpoint_every=3, log_every=1, progress=False, sync_bn=True)
        trainer = Trainer(method, images, config, sys.argv[1] + "/" + name)
        trainer.fit()
        if trainer.rank == 0:
            torch.save(method.state_dict(), sys.argv[1] + "/" + name + "/final.pt")
    """
)


def launch_two_ranks(script: Path, *args: str) -> None:
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *args], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err


def assert_two_ranks_train_like_one(tmp_path: Path, script_text: str, names: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Runs ``script_text`` (argv: an output folder, comma-separated ``names``; each name's final
    weights saved as ``NAME/final.pt`` by rank 0) in one process and in two gloo ranks, and
    compares every name's weights (to ``rtol``/``atol``)."""
    script = tmp_path / "train.py"
    script.write_text(script_text)
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), names], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    launch_two_ranks(script, str(tmp_path / "two"), names)
    for name in names.split(","):
        one = torch.load(tmp_path / "one" / name / "final.pt")
        two = torch.load(tmp_path / "two" / name / "final.pt")
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=rtol, atol=atol, msg=f"{name} {key}")


def test_two_gloo_processes_with_synchronised_batchnorm_match_one_process(tmp_path: Path):
    """BYOL, Barlow Twins, NNCLR (the support set), DINO (the centre), MoCo v3 and SimSiam with
    BatchNorm in their heads synchronised, MoCo v1 with Shuffling BatchNorm, PIRL and Local
    Aggregation (bank, clusters), MAE: one 2-process run for all of them."""
    names = ["byol", "barlow_twins", "nnclr", "dino", "moco3", "moco1", "simsiam", "pirl", "local_aggregation", "mae"]
    script = tmp_path / "train.py"
    script.write_text(JOINT_SCRIPT)
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), ",".join(names)], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    launch_two_ranks(script, str(tmp_path / "two"), ",".join(names))
    for name in names:
        one = torch.load(tmp_path / "one" / name / "final.pt")
        two = torch.load(tmp_path / "two" / name / "final.pt")
        assert one.keys() == two.keys()
        for key in one:
            # float32 sums in another order, through BatchNorm of large activations after lr 0.1 steps;
            # running statistics accumulate it (NNCLR's running mean drifts by 2·10⁻⁴ relative; a
            # missing gather or all-reduce is off by 10⁻¹)
            rtol = 1e-3 if "running_" in key else 1e-4
            torch.testing.assert_close(two[key], one[key], rtol=rtol, atol=1e-5, msg=f"{name}: {key}")
    assert "support" in torch.load(tmp_path / "two" / "nnclr" / "final.pt") and "center" in torch.load(tmp_path / "two" / "dino" / "final.pt")
    assert int(torch.load(tmp_path / "two" / "moco1" / "final.pt")["key_batches"]) == 3
    clustered = torch.load(tmp_path / "two" / "local_aggregation" / "final.pt")
    assert int(clustered["clustered_at"]) == 2 and int(clustered["cluster_labels"].min()) >= 0


SHUFFLE_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch
    import torch.distributed as dist
    from torch import nn
    torch.set_num_threads(1)
    from selfsup.models.batch_shuffle import shuffle_permutation, shuffled_encode
    from selfsup.methods.moco import MoCo
    from selfsup.models import small_resnet
    from selfsup.models.batchnorm import GlobalBatchNorm
    from selfsup.training import TrainConfig, Trainer
    from selfsup.training.distributed import init_from_env

    assert init_from_env()
    rank, out = dist.get_rank(), sys.argv[1]
    # torch's SyncBatchNorm refuses CPU tensors, hence GlobalBatchNorm
    try:
        nn.SyncBatchNorm(3).train()(torch.randn(4, 3))
        raise AssertionError("SyncBatchNorm ran on CPU")
    except ValueError as error:
        assert "GPU" in str(error)

    # GlobalBatchNorm: this rank's share of a global batch, rows rank::2
    g = torch.Generator().manual_seed(0)
    x, r = torch.randn(8, 3, 4, 4, generator=g) * 2 + 1, torch.randn(8, 3, 4, 4, generator=g)
    layer = GlobalBatchNorm(3, momentum=0.3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    mine = x[rank::2].clone().requires_grad_(True)
    y = layer(mine)
    (y * r[rank::2]).sum().backward()
    torch.save({"out": y.detach(), "grad": mine.grad, "weight_grad": layer.weight.grad, "bias_grad": layer.bias.grad,
                "running_mean": layer.running_mean, "running_var": layer.running_var}, f"{out}/bn.{rank}.pt")

    # the shuffle: one permutation on every rank; a per-sample encoder gives the unshuffled encoding
    permutations = [torch.empty(12, dtype=torch.long) for _ in range(2)]
    dist.all_gather(permutations, shuffle_permutation(12, seed=5))
    assert torch.equal(permutations[0], permutations[1]) and sorted(permutations[0].tolist()) == list(range(12))
    rows = torch.randn(12, 4, generator=g)[rank::2]
    torch.manual_seed(0)
    encoder = nn.Linear(4, 3)
    seen = []
    keys = shuffled_encode(lambda z: seen.append(z) or encoder(z), rows, seed=5)
    torch.testing.assert_close(keys, encoder(rows).detach())
    assert not torch.equal(seen[0], rows)

    # MoCo v1 with BatchNorm in the backbone: the ranks encode shuffled shares and end in agreement
    torch.manual_seed(0)
    method = MoCo(small_resnet(width=4), version=1, queue_size=24, projection_dim=8)
    images = np.random.default_rng(1).integers(0, 256, (32, 12, 12, 3), dtype=np.uint8)
    trainer = Trainer(method, images, TrainConfig(steps=2, batch_size=16, lr=0.1, checkpoint_every=2, progress=False), f"{out}/moco")
    trainer.fit()
    torch.save(method.state_dict(), f"{out}/moco.{rank}.pt")
    # with BatchNorm the shuffled keys differ from those of the rank's own share
    views = method.make_batch(images[rank:16:2], seed=0, epoch=0, indices=np.arange(rank, 16, 2))["views"]
    shuffled = method.keys(views)
    method.shuffle_bn = False
    assert not torch.allclose(shuffled, method.keys(views), atol=1e-3)
    """
)


def test_shuffling_and_global_batchnorm_across_two_processes(tmp_path: Path):
    script = tmp_path / "check.py"
    script.write_text(SHUFFLE_SCRIPT)
    launch_two_ranks(script, str(tmp_path))
    # GlobalBatchNorm over the two shares is BatchNorm over the global batch (statistics, gradients)
    g = torch.Generator().manual_seed(0)
    x, r = torch.randn(8, 3, 4, 4, generator=g) * 2 + 1, torch.randn(8, 3, 4, 4, generator=g)
    reference = torch.nn.BatchNorm2d(3, momentum=0.3)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        reference.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x.requires_grad_(True)
    y = reference(x)
    (y * r).sum().backward()
    ranks = [torch.load(tmp_path / f"bn.{rank}.pt") for rank in range(2)]
    for rank, got in enumerate(ranks):
        torch.testing.assert_close(got["out"], y.detach()[rank::2], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got["grad"], x.grad[rank::2], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got["running_mean"], reference.running_mean)
        torch.testing.assert_close(got["running_var"], reference.running_var)
    torch.testing.assert_close(ranks[0]["weight_grad"] + ranks[1]["weight_grad"], reference.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ranks[0]["bias_grad"] + ranks[1]["bias_grad"], reference.bias.grad, rtol=1e-4, atol=1e-5)
    # MoCo v1 with Shuffling BatchNorm: both ranks hold the same weights and queue (BatchNorm's
    # running statistics are each rank's own, as under DDP without sync_bn)
    a, b = torch.load(tmp_path / "moco.0.pt"), torch.load(tmp_path / "moco.1.pt")
    for key in a:
        if "running_" not in key:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    assert int(a["key_batches"]) == 2 and int(a["queue_pointer"]) == 8
