"""RotNet (Gidaris, Singh & Komodakis 2018, "Unsupervised Representation Learning by Predicting
Image Rotations", arXiv:1803.07728).

Every image of the batch is fed in its four rotations by 90°·k (k = 0..3); a linear head on the
backbone's features classifies k:

    L = −(1/4N) Σ_i Σ_k log softmax(W f(rot(x_i, k)))_k
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
from selfsup.pretext.rotation import Rotation


class RotNet(Method):
    """Shapes: ``make_batch`` turns N uint8 images into ``images (4N, C, H, W)`` and ``targets (4N,)``.

    Example:
        >>> from selfsup.models import small_resnet
        >>> import numpy as np
        >>> method = RotNet(small_resnet(width=8))
        >>> batch = method.make_batch(np.zeros((2, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
        >>> batch["images"].shape
        torch.Size([8, 3, 32, 32])
    """

    name: ClassVar[str] = "rotnet"
    views: ClassVar[tuple[str, ...]] = ("images", "targets")

    def __init__(self, backbone: nn.Module, all_rotations: bool = True) -> None:
        super().__init__(backbone)
        self.task = Rotation(all_rotations=all_rotations)
        self.head = nn.Linear(self.feature_dim, Rotation.num_classes)

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        out = self.task(images, seed=seed, epoch=epoch, indices=indices)
        return {"images": images_to_tensor(out.inputs, device), "targets": torch.from_numpy(out.targets).to(device)}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.head(self.backbone(batch["images"]))
        loss = F.cross_entropy(logits, batch["targets"])
        accuracy = (logits.argmax(dim=1) == batch["targets"]).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach()}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        batch = RotNet.make_batch(self, images[:4], seed=seed, epoch=0, indices=np.arange(min(4, len(images))), device=device_of(self))
        predicted = self.head(self.backbone(batch["images"])).argmax(1)
        rows = []
        for i in range(len(predicted) // 4):
            row = Row(f"rotnet image {i}")
            for k in range(4):
                j = 4 * i + k
                row.add(to_image(batch["images"][j]), f"true {k}, pred {int(predicted[j])}" + (" ok" if int(predicted[j]) == k else " X"))
            rows.append(row)
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(RotNet, aliases=("rotation",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("rotnet", optimizer="sgd", lr=0.05, summary="SGD at 0.05 (Gidaris et al. use SGD 0.1 at batch 128); docs/recipes.md"))
