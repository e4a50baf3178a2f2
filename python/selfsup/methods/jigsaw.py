"""Jigsaw puzzles with a context-free network (Noroozi & Favaro 2016, "Unsupervised Learning of
Visual Representations by Solving Jigsaw Puzzles", arXiv:1603.09246).

Each of the T tiles goes through the *same* backbone (shared weights, no cross-tile context until
the end); the T features are concatenated and an MLP classifies which permutation of the
maximal-Hamming set shuffled them:

    L = CE(MLP([f(t_{π(1)}), …, f(t_{π(T)})]), index(π))
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.base import Method
from selfsup.models.inputs import device_of, images_to_tensor
from selfsup.pretext.jigsaw import Jigsaw


class JigsawMethod(Method):
    """``make_batch``: N images → ``tiles (N·T, C, P, P)`` standardised per tile, ``targets (N,)``.
    Defaults are the paper's on 255-px crops (3×3 cells of 85 px, 64-px tiles, 100 permutations);
    for 32-px digits use e.g. ``cell=10, patch=8`` (about the paper's tile-to-cell ratio, 64/85: the
    gap between tiles keeps their borders from giving the order away).

    Raises:
        ValueError: fewer than 2 permutations, a grid that does not fit the images (at make_batch).
    """

    name: ClassVar[str] = "jigsaw"
    views: ClassVar[tuple[str, ...]] = ("tiles", "targets")

    def __init__(
        self, backbone: nn.Module, permutations: int = 100, grid: int = 3, cell: int = 85, patch: int = 64, hidden: int = 1024,
        channel_jitter: int = 0,
    ) -> None:
        super().__init__(backbone)
        if permutations < 2:
            raise ValueError(f"permutations: expected at least 2, got {permutations}")
        self.task = Jigsaw(permutations=permutations, grid=grid, cell=cell, patch=patch, channel_jitter=channel_jitter)
        tiles = grid * grid
        self.classifier = nn.Sequential(nn.Linear(tiles * self.feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, permutations))

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        out = self.task(images, seed=seed, epoch=epoch, indices=indices)
        tiles = out.inputs.reshape(-1, *out.inputs.shape[2:])
        return {"tiles": images_to_tensor(tiles, device), "targets": torch.from_numpy(out.targets).to(device)}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = batch["targets"].shape[0]
        features = self.backbone(batch["tiles"]).reshape(n, -1)
        logits = self.classifier(features)
        loss = F.cross_entropy(logits, batch["targets"])
        return {"loss": loss, "accuracy": (logits.argmax(1) == batch["targets"]).float().mean().detach()}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        import selfsup.ops as ops
        from selfsup.viz.canvas import Row, mosaic

        n = min(4, len(images))
        task = self.task
        puzzle = ops.jigsaw(images[:n], task.permutation_set, task.grid, task.cell, task.patch, seed=seed, indices=np.arange(n))
        batch = self.make_batch(images[:n], seed=seed, epoch=0, indices=np.arange(n), device=device_of(self))
        predicted = self.classifier(self.backbone(batch["tiles"]).reshape(n, -1)).argmax(1).cpu().numpy()
        rows = []
        g = task.grid
        for i in range(n):
            row = Row(f"jigsaw image {i}")
            row.add(mosaic(puzzle.tiles[i], g, g), f"shuffled, perm #{int(puzzle.labels[i])}")
            solved = puzzle.tiles[i][np.argsort(task.permutation_set[predicted[i]])]
            verdict = "ok" if predicted[i] == puzzle.labels[i] else "X"
            row.add(mosaic(solved, g, g), f"solved with #{int(predicted[i])} {verdict}")
            rows.append(row)
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(JigsawMethod, name="jigsaw", aliases=("cfn",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("jigsaw", {"cell": 10, "patch": 8, "permutations": 100, "hidden": 512}, summary="8-px tiles from 10-px cells (the paper's 64/85 at 32 px), 100 maximal-Hamming permutations; AdamW 1e-3"))
