"""Momentum (EMA) encoders: BYOL's momentum schedule, frozen copies and their update."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def momentum_at(base: float, step: int, total_steps: int) -> float:
    """BYOL's schedule (Grill et al. 2020, eq. after 3.2): τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2,
    rising from τ_base at step 0 to 1 at the last step."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to be updated by :func:`ema_update` (a target/key encoder)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """ξ ← m·ξ + (1 − m)·θ for every parameter; buffers (BatchNorm statistics) are copied."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for buffer, source in zip(target.buffers(), online.buffers()):
        buffer.copy_(source)
