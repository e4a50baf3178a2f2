"""Relative patch position (Doersch, Gupta & Efros 2015, "Unsupervised Visual Representation
Learning by Context Prediction", arXiv:1505.05192).

Siamese towers (one backbone, shared weights) embed the centre and the neighbour patch; an MLP on
the concatenated features predicts which of the 8 positions the neighbour came from:

    L = CE(MLP([f(centre), f(neighbour)]), position)
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
from selfsup.pretext.relative import RelativePosition


class RelativePositionMethod(Method):
    """``make_batch``: N images → ``pairs (2N, C, P, P)`` (centre, neighbour interleaved per
    image) and ``targets (N,)``. Defaults are the paper's (96-px patches, 48-px gap, ±7 px jitter,
    colour dropping); for 32-px images use e.g. ``patch=8, gap=2, jitter=1`` (its recipe)."""

    name: ClassVar[str] = "relative_position"
    views: ClassVar[tuple[str, ...]] = ("pairs", "targets")

    def __init__(
        self, backbone: nn.Module, patch: int = 96, gap: int = 48, jitter: int = 7, drop_colors: bool = True, hidden: int = 512
    ) -> None:
        super().__init__(backbone)
        self.task = RelativePosition(patch=patch, gap=gap, jitter=jitter, drop_colors=drop_colors)
        self.classifier = nn.Sequential(nn.Linear(2 * self.feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, 8))

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        out = self.task(images, seed=seed, epoch=epoch, indices=indices)
        pairs = out.inputs.reshape(-1, *out.inputs.shape[2:])
        return {"pairs": images_to_tensor(pairs, device), "targets": torch.from_numpy(out.targets).to(device)}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = batch["targets"].shape[0]
        logits = self.classifier(self.backbone(batch["pairs"]).reshape(n, -1))
        loss = F.cross_entropy(logits, batch["targets"])
        return {"loss": loss, "accuracy": (logits.argmax(1) == batch["targets"]).float().mean().detach()}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        n = min(6, len(images))
        batch = self.make_batch(images[:n], seed=seed, epoch=0, indices=np.arange(n), device=device_of(self))
        predicted = self.classifier(self.backbone(batch["pairs"]).reshape(n, -1)).argmax(1)
        row = Row("relative position")
        for i in range(n):
            true, pred = int(batch["targets"][i]), int(predicted[i])
            row.add(to_image(batch["pairs"][2 * i]), f"centre {i}")
            row.add(to_image(batch["pairs"][2 * i + 1]), f"true {true} pred {pred}" + (" ok" if true == pred else " X"))
        return [row]


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(RelativePositionMethod, name="relative_position", aliases=("context_prediction",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe(
        "relative_position", {"patch": 8, "gap": 2, "jitter": 1, "drop_colors": True, "hidden": 512}, optimizer="sgd", lr=0.05,
        summary="RotNet's SGD at 0.05; 8-px patches with a 2-px gap and 1-px jitter; the paper's colour dropping "
        "(it held on digits, photo patches and shapes: docs/recipes.md)",
    ))
