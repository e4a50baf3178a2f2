"""Learning-rate schedules as multipliers of the base rate, step → factor."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(total_steps: int, warmup_steps: int = 0, final_factor: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up from 0 over ``warmup_steps``, then a half cosine down to ``final_factor``
    at ``total_steps`` (Loshchilov & Hutter 2017, arXiv:1608.03983, without restarts)."""
    if total_steps < 1:
        raise ValueError(f"total_steps: expected >= 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps: expected 0 to {total_steps}, got {warmup_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
