"""Every registered method trains under autocast (bfloat16, and float16 with a gradient scaler);
the fused losses take mixed-dtype inputs under autocast by casting to the query's dtype."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from selfsup_kernels import info_nce, nt_xent, sup_con

from selfsup import plugins
from selfsup.data import load_digits
from selfsup.data.clips import ClipArraySource
from selfsup.data.moving_digits import moving_digits
from selfsup.models.backbones import small_resnet
from selfsup.models.video import small_r2plus1d
from selfsup.training import TrainConfig, Trainer

DIGITS = load_digits().train
CLIPS = moving_digits(16, frames=12, size=32, digit_size=14).clips
OPTIONS = {
    "jigsaw": {"cell": 10, "patch": 8},
    "pirl": {"cell": 10, "patch": 8, "negatives": 16},
    "cpc": {"grid": 3, "patch": 8, "stride": 8, "offsets": 2},
    "relative_position": {"patch": 8, "gap": 2, "jitter": 1},
    "moco": {"queue_size": 64},
    "nnclr": {"support_size": 64},
    "instdisc": {"negatives": 16},
    "local_aggregation": {"background": 16, "clusters": 4, "warmup_steps": 1, "cluster_every": 1},
    "cmc": {"negatives": 16},
    "shuffle_learn": {"window": 8},
    "odd_one_out": {"questions": 3, "length": 3},
    "tracking": {"patch": 12, "window": 4},
    "rho_simclr": {"clip_length": 4},
    "rho_byol": {"clip_length": 4},
    "rho_moco": {"clip_length": 4, "queue_size": 64},
}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("name", plugins.registry().names("methods"))
def test_every_method_trains_two_steps_under_autocast(tmp_path: Path, name: str, amp: str):
    cls = plugins.get("methods", name)
    torch.manual_seed(0)
    if name == "mae":
        backbone = plugins.get("backbones", "vit_tiny")()
    elif name.startswith("rho_"):
        backbone = small_r2plus1d(width=4)
    else:
        backbone = small_resnet(width=4, in_channels=getattr(cls, "in_channels", 3))
    method = cls(backbone, **OPTIONS.get(name, {}))
    config = TrainConfig(steps=2, batch_size=16 if not cls.takes_clips else 8, lr=0.01, amp=amp, log_every=1, progress=False, warmup_steps=0)
    if cls.takes_clips:
        trainer = Trainer(method, ClipArraySource(CLIPS), config, tmp_path)
    else:
        trainer = Trainer(method, DIGITS.images[:64], config, tmp_path, labels=DIGITS.labels[:64])
    log = trainer.fit()
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    assert all(torch.isfinite(p).all() for p in method.parameters())


def test_losses_under_autocast_cast_to_the_query_dtype():
    g = torch.Generator().manual_seed(0)
    q, k, queue = (torch.randn(n, 16, generator=g) for n in (8, 8, 32))
    qb = q.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = info_nce(qb, k, negatives=queue, temperature=0.2)
        pair = nt_xent(qb, k, temperature=0.2)
        labels = torch.tensor([0, 1, 0, 1, 2, 2, 3, 3])
        sup = sup_con(torch.stack([qb, k.bfloat16()], 1), labels, temperature=0.2)
    torch.testing.assert_close(mixed, info_nce(qb, k.bfloat16(), negatives=queue.bfloat16(), temperature=0.2))
    torch.testing.assert_close(pair, nt_xent(qb, k.bfloat16(), temperature=0.2))
    torch.testing.assert_close(sup, sup_con(torch.stack([qb, k.bfloat16()], 1), labels, temperature=0.2))
    # close to the float32 loss: bfloat16 inputs, float32 accumulation
    assert abs(float(mixed) - float(info_nce(q, k, negatives=queue, temperature=0.2))) < 0.05
    with pytest.raises(TypeError, match="dtype"):  # outside autocast, mixed dtypes stay an error
        info_nce(qb, k, negatives=queue)
