"""SimCLR (Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", arXiv:2002.05709; SimCLR v2: Chen et al. 2020, arXiv:2006.10029).

Each image x_i is augmented twice (the native :func:`selfsup.transforms.simclr` augmentation); the
backbone f and a projection MLP g map the views to z = g(f(x̃)), and NT-Xent (eq. 1) pulls the two
views of an image together against the other 2N − 2 views of the batch:

    ℓ_i = −log  exp(sim(z_i, z_p(i))/τ) / Σ_{j≠i} exp(sim(z_i, z_j)/τ),   L = (1/2N) Σ_i ℓ_i

With V > 2 views per image every other view of the same image is a positive (the multi-positive
form of Khosla et al. 2020, eq. 2, with instance ids as labels; for V = 2 it is NT-Xent exactly).
The loss is :func:`selfsup_kernels.nt_xent` / :func:`selfsup_kernels.sup_con`, which never form
the 2N×2N logits. Under ``torch.distributed`` the views of all ranks are all-gathered (with
gradient) as negatives, so a DDP run contrasts against the global batch like one process would.

Defaults follow the paper's CIFAR-10 setting scaled to small CPU runs: τ = 0.5, 2-layer projection
head with BatchNorm (``head_layers=3`` is SimCLR v2's deeper head), 128-d output, colour strength
0.5 → ColorJitter(0.4, 0.4, 0.4, 0.1), no Gaussian blur below 64 pixels (Appendix B.9).
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
from selfsup.methods.joint import JointEmbedding, check_positive
from selfsup.models.heads import ProjectionHead
from selfsup.transforms import MultiView, Normalize, simclr
from selfsup.models.inputs import device_of


class SimCLR(JointEmbedding):
    """Shapes: ``make_batch`` turns N uint8 images ``(N, H, W, 3)`` into ``views (V, N, 3, S, S)``;
    ``training_step`` returns the NT-Xent loss and the top-1 accuracy of finding the positive.

    Args:
        backbone: an ``nn.Module`` with an integer ``out_dim``.
        temperature: τ of NT-Xent.
        projection_dim, hidden_dim, head_layers: the projection MLP (``hidden_dim`` defaults to the
            backbone's feature size, as in the paper: 2048 for ResNet-50).
        views: augmented views per image (≥ 2).
        image_size: output side S of the views; defaults to the input's height.
        color_strength: s of the paper's colour distortion (0.5 → ColorJitter(0.4, 0.4, 0.4, 0.1),
            1.0 → ColorJitter(0.8, 0.8, 0.8, 0.2)).
        blur: Gaussian blur p = 0.5; ``None`` uses it only when S ≥ 64.
        augmentation: another view pipeline of :data:`~selfsup.methods.joint.AUGMENTATIONS` (two
            views) instead of the paper's (``"simclr"``, which ``views`` and ``color_strength`` set).

    Example:
        >>> from selfsup.models import small_resnet
        >>> import numpy as np
        >>> method = SimCLR(small_resnet(width=8))
        >>> batch = method.make_batch(np.zeros((4, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(4))
        >>> tuple(batch["views"].shape)
        (2, 4, 3, 32, 32)
    """

    name: ClassVar[str] = "simclr"

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.5,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        head_layers: int = 2,
        views: int = 2,
        image_size: int | None = None,
        color_strength: float = 0.5,
        blur: bool | None = None,
        augmentation: str | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur, augmentation=augmentation)
        check_positive(temperature=temperature)
        if views < 2:
            raise ValueError(f"views: expected at least 2 views per image, got {views}")
        if self.augmentation != "simclr" and views != 2:
            raise ValueError(f"views: augmentation {self.augmentation!r} gives 2 views, got {views}")
        if not color_strength >= 0:
            raise ValueError(f"color_strength: expected >= 0, got {color_strength}")
        self.temperature = float(temperature)
        self.n_views = int(views)
        self.color_strength = float(color_strength)
        self.head = ProjectionHead(self.feature_dim, hidden_dim or self.feature_dim, projection_dim, layers=head_layers)

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        if self.augmentation != "simclr":
            return super().build_views(size, normalize)
        return simclr(size, strength=self.color_strength / 0.5, normalize=normalize, blur=self.uses_blur(size), views=self.n_views)

    def project(self, views: torch.Tensor) -> torch.Tensor:
        """``(V, N, 3, S, S)`` → projections ``(V, N, projection_dim)``."""
        return self.encode(lambda x: self.head(self.backbone(x)), views)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from selfsup_kernels.distributed import is_distributed

        z = self.project(batch["views"])
        gather = is_distributed()
        return {"loss": self.contrastive_loss(z, batch, gather), "positive_top1": positive_top1(z.detach())}

    def contrastive_loss(self, z: torch.Tensor, batch: dict[str, torch.Tensor], gather: bool) -> torch.Tensor:
        """NT-Xent of the projections ``z (V, N, D)``; for V > 2 the multi-positive form with the
        instance ids as labels. ``gather``: contrast against every rank's views."""
        from selfsup_kernels import nt_xent, sup_con

        if z.shape[0] == 2:
            return nt_xent(z[0], z[1], self.temperature, gather=gather)
        instances = torch.arange(z.shape[1], device=z.device)
        if gather:
            instances = instances + torch.distributed.get_rank() * z.shape[1]
        return sup_con(z.transpose(0, 1), instances, self.temperature, gather=gather)

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        """For four images: their two views and, among all shown images, the nearest neighbours
        of the first view in projection space (the positive should come first)."""
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        count = min(len(images), 16)
        batch = self.make_batch(images[:count], seed=seed, epoch=0, indices=np.arange(count), device=device_of(self))
        z = F.normalize(self.project(batch["views"])[:2], dim=2)
        similarity = z[0] @ z[1].T
        rows = []
        for i in range(min(4, count)):
            row = Row(f"simclr image {i}")
            row.add(to_image(batch["views"][0, i]), "anchor view")
            for rank, j in enumerate(similarity[i].topk(min(3, count)).indices.tolist()):
                row.add(to_image(batch["views"][1, j]), f"#{rank + 1} cos {float(similarity[i, j]):.2f}" + (" positive" if j == i else ""))
            rows.append(row)
        return rows


@torch.no_grad()
def positive_top1(z: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Fraction of the 2N views of ``z (V, N, D)`` (first two views) whose most similar other view
    (cosine) is their partner view; rows are scored ``chunk`` at a time."""
    flat = F.normalize(z[:2].flatten(0, 1), dim=1)
    n = z.shape[1]
    hits = 0
    for start in range(0, 2 * n, chunk):
        rows = torch.arange(start, min(start + chunk, 2 * n), device=z.device)
        similarity = flat[rows] @ flat.T
        similarity[torch.arange(len(rows)), rows] = float("-inf")
        hits += int((similarity.argmax(dim=1) == (rows + n) % (2 * n)).sum())
    return torch.tensor(hits / (2 * n))


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(SimCLR)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(
        Recipe(
            "simclr", {"temperature": 0.2}, optimizer="adamw", lr=2e-3,
            summary="AdamW 2e-3, tau 0.2 (LightlySSL's): above SGD 0.3 / tau 0.5 on the digits, photo patches and shapes",
        )
    )
