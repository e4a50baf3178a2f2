"""Spotting artifacts (Jenni & Favaro 2018, "Self-Supervised Feature Learning by Learning to Spot
Artifacts", arXiv:1806.05024), in image space.

The paper trains a discriminator to tell real images from images whose autoencoder features were
partly dropped and repaired, and — "to make the discriminator focus on the artifacts" — to predict
which feature entries were dropped. Here the artifacts are the native local corruptions of
:func:`selfsup.ops.corrupt` (patch swap, noise, blur, block artifacts, colour shift, or none), and
the backbone's features feed two heads:

- *what*: which of the ``kinds`` was applied ("none" plays the paper's real class), cross-entropy;
- *where*: for each cell of a ``grid × grid`` partition of the image, the fraction of its pixels
  that the corruption changed (the op's mask, area-averaged), binary cross-entropy per cell — the
  paper's drop-mask prediction at the resolution of a feature grid.

    L = CE(h_what(f(x̃)), k) + mask_weight · (1/G²) Σ_cells BCE(h_where(f(x̃)), m̄)

``mask_weight`` balances the heads: on the grey digits *what* shapes features worse than random
ones and a *where*-dominated loss (100×) is what gains; on colour photographs equal weights do
(docs/pretext_tasks.md).

What is not reproduced: the adversarially trained repair network that makes the paper's artifacts
hard to spot; the corruptions here are fixed (no generator in the loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.base import Method
from selfsup.models.inputs import device_of, images_to_tensor


class SpotArtifacts(Method):
    """``make_batch``: N uint8 images → ``images (N, C, H, W)`` (corrupted, standardised),
    ``targets (N,)`` (position of the applied corruption in ``kinds``) and ``cells (N, G, G)``
    (changed fraction of each cell).

    Raises:
        ValueError: fewer than 2 ``kinds``, repeated kinds or kinds outside 0–5; ``size`` outside
            (0, 0.5]; ``grid`` < 1 or not dividing ``image_size``; ``mask_weight`` < 0; images of
            another size (at make_batch).

    Example:
        >>> import numpy as np
        >>> from selfsup.models import small_resnet
        >>> method = SpotArtifacts(small_resnet(width=8))
        >>> batch = method.make_batch(np.zeros((2, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
        >>> tuple(batch["images"].shape), tuple(batch["cells"].shape)
        ((2, 3, 32, 32), (2, 4, 4))
    """

    name: ClassVar[str] = "corruption"
    views: ClassVar[tuple[str, ...]] = ("images", "targets", "cells")

    def __init__(
        self, backbone: nn.Module, kinds: Sequence[int] = (0, 1, 2, 3, 4, 5), size: float = 0.25, grid: int = 4,
        mask_weight: float = 1.0, image_size: int = 32,
    ) -> None:
        super().__init__(backbone)
        kinds = [int(k) for k in ([kinds] if isinstance(kinds, int) else kinds)]
        if len(kinds) < 2 or len(set(kinds)) != len(kinds) or not all(0 <= k < len(ops.CORRUPTIONS) for k in kinds):
            raise ValueError(f"kinds: expected at least 2 distinct corruption labels in 0-{len(ops.CORRUPTIONS) - 1}, got {kinds}")
        if not 0 < size <= 0.5:
            raise ValueError(f"size: expected a value in (0, 0.5], got {size}")
        if grid < 1 or image_size % grid:
            raise ValueError(f"grid: expected a divisor of image_size {image_size}, got {grid}")
        if mask_weight < 0:
            raise ValueError(f"mask_weight: expected a non-negative value, got {mask_weight}")
        self.kinds, self.size, self.grid, self.mask_weight, self.image_size = tuple(kinds), size, grid, mask_weight, image_size
        self.what = nn.Linear(self.feature_dim, len(kinds))
        self.where = nn.Linear(self.feature_dim, grid * grid)

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected (N, {self.image_size}, {self.image_size}, C) images, got shape {tuple(images.shape)}")
        out = ops.corrupt(images, self.kinds, self.size, seed=seed, epoch=epoch, indices=indices)
        position = np.full(len(ops.CORRUPTIONS), -1, np.int64)
        position[list(self.kinds)] = np.arange(len(self.kinds))
        n, g = len(images), self.grid
        cells = out.masks.reshape(n, g, self.image_size // g, g, self.image_size // g).mean(axis=(2, 4), dtype=np.float32)
        return {
            "images": images_to_tensor(out.images, device),
            "targets": torch.from_numpy(position[out.labels]).to(device),
            "cells": torch.from_numpy(np.ascontiguousarray(cells)).to(device),
        }

    def heads(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of *what* ``(N, len(kinds))`` and *where* ``(N, G, G)``."""
        features = self.backbone(images)
        return self.what(features), self.where(features).view(-1, self.grid, self.grid)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        what, where = self.heads(batch["images"])
        loss_what = F.cross_entropy(what, batch["targets"])
        loss_where = F.binary_cross_entropy_with_logits(where, batch["cells"])
        accuracy = (what.argmax(1) == batch["targets"]).float().mean()
        return {
            "loss": loss_what + self.mask_weight * loss_where, "loss_what": loss_what.detach(), "loss_where": loss_where.detach(),
            "accuracy": accuracy.detach(),
        }

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row, draw_boxes
        from selfsup.viz.tensors import to_image

        n = min(8, len(images))
        batch = self.make_batch(images[:n], seed=seed, epoch=0, indices=np.arange(n), device=device_of(self))
        what, where = self.heads(batch["images"])
        predicted, cells = what.argmax(1).cpu().numpy(), torch.sigmoid(where).cpu().numpy()
        zoom = 4
        step = zoom * self.image_size // self.grid
        rows = [Row("corrupted (green: true)"), Row("predicted cells (red)")]
        for i in range(n):
            true, pred = self.kinds[int(batch["targets"][i])], self.kinds[int(predicted[i])]
            image = np.repeat(np.repeat(to_image(batch["images"][i]), zoom, axis=0), zoom, axis=1)
            truth = [(r * step, c * step, step, step, "lime") for r, c in zip(*np.nonzero(batch["cells"][i].cpu().numpy() > 0))]
            guess = [(r * step, c * step, step, step, "red") for r, c in zip(*np.nonzero(cells[i] > 0.5))]
            rows[0].add(draw_boxes(image, truth), f"true: {ops.CORRUPTIONS[true]}")
            rows[1].add(draw_boxes(image, guess), f"pred: {ops.CORRUPTIONS[pred]}" + (" ok" if pred == true else " X"))
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(SpotArtifacts, aliases=("spot_artifacts", "artifacts"))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe(
        "corruption", datasets={"digits": {"options": {"mask_weight": 100.0}}},
        summary="equal what/where weights; on the digits the where term weighs 100x (clean digits all read none)",
    ))
