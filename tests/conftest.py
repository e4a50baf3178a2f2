"""Shared fixtures: small deterministic image batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def random_images(rng: np.random.Generator, n: int, h: int, w: int, c: int = 3) -> np.ndarray:
    return rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def fixed_batch_losses(
    method: Any,
    batch: dict[str, Any],
    optimizer: Any,
    steps: int,
    *,
    end_of_step: bool = True,
    total_steps: int | None = None,
    after_loss: Callable[[], None] | None = None,
) -> list[float]:
    """Trains ``method`` on one fixed ``batch`` for ``steps`` optimizer steps and returns the losses.

    ``after_loss`` runs after each forward (e.g. to hold a bank, queue or centre fixed);
    ``end_of_step`` calls the method's ``on_step_end(step, total_steps or steps)`` after each step
    (momentum targets, schedules, bank writes)."""
    losses = []
    for step in range(steps):
        loss = method.training_step(batch)["loss"]
        if after_loss is not None:
            after_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if end_of_step:
            method.on_step_end(step + 1, total_steps or steps)
        losses.append(loss.item())
    return losses
