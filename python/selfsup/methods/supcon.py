"""Supervised contrastive learning (Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu &
Krishnan 2020, "Supervised Contrastive Learning", arXiv:2004.11362).

SimCLR's views, encoder and projection head (:class:`selfsup.methods.simclr.SimCLR`), but every
view of every image *of the same class* is a positive. For the 2N views of a batch (anchors i,
A(i) all views but i, P(i) = {p ∈ A(i) : ỹ_p = ỹ_i}) and ℓ2-normalised projections z (eq. 2):

    L^sup_out = Σ_i  −1/|P(i)|  Σ_{p ∈ P(i)}  log  exp(z_i·z_p/τ) / Σ_{a ∈ A(i)} exp(z_i·z_a/τ),

averaged over the anchors, τ = 0.1. The loss is :func:`selfsup_kernels.sup_con` (the 2N×2N logits
are never formed). The paper's code also multiplies the loss by τ/0.07, which only rescales the
learning rate; it is left out.

The labels are the training set's class labels, given to :meth:`bind_dataset` (the trainer's
``labels=``); each batch carries those of its images. This is a *supervised* method: its features
are an upper reference for the self-supervised ones, not a self-supervised result.

Under ``torch.distributed`` the views and labels of all ranks are all-gathered (views with gradient)
so every anchor contrasts against the global batch. Defaults: τ = 0.1, the 2-layer projection head
to 128-d of SimCLR (hidden width: the backbone's feature size), SimCLR's colour distortion
(the paper's "SimAugment"; its AutoAugment variant is not implemented).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.base import check_labels
from selfsup.methods.simclr import SimCLR


class SupCon(SimCLR):
    """Args: as :class:`~selfsup.methods.simclr.SimCLR`, with τ = 0.1 by default.

    Shapes: ``make_batch`` turns N uint8 images with dataset ``indices (N,)`` into ``views (V, N, 3,
    S, S)`` and ``labels (N,)``, the bound labels of those indices.

    Raises:
        ValueError: as SimCLR; at :meth:`make_batch` without bound labels (``labels``), or indices
            outside the bound dataset.

    Example:
        >>> from selfsup.models import small_resnet
        >>> import numpy as np
        >>> method = SupCon(small_resnet(width=8))
        >>> method.bind_dataset(6, np.array([0, 1, 0, 1, 2, 2]))
        >>> batch = method.make_batch(np.zeros((4, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.array([5, 0, 2, 1]))
        >>> batch["labels"].tolist()
        [2, 0, 0, 1]
    """

    name: ClassVar[str] = "supcon"
    uses_labels: ClassVar[bool] = True

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.1,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        head_layers: int = 2,
        views: int = 2,
        image_size: int | None = None,
        color_strength: float = 0.5,
        blur: bool | None = None,
    ) -> None:
        super().__init__(
            backbone, temperature=temperature, projection_dim=projection_dim, hidden_dim=hidden_dim, head_layers=head_layers,
            views=views, image_size=image_size, color_strength=color_strength, blur=blur,
        )
        self.class_labels: npt.NDArray[np.int64] | None = None
        """The dataset's class labels, kept on the CPU: the data side runs in loader threads and
        forked workers, which must not touch an accelerator."""

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Keeps the class ``labels (size,)``; ``None`` (loading a checkpoint to export or show it)
        leaves the method unable to make training batches."""
        if labels is not None:
            self.class_labels = check_labels(labels, size)
        else:
            self.class_labels = None

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if self.class_labels is None:
            raise ValueError("labels: supcon trains on class labels; bind them first (Trainer(..., labels=...) or bind_dataset)")
        index = np.asarray(indices, dtype=np.int64)
        if index.size and (int(index.min()) < 0 or int(index.max()) >= len(self.class_labels)):
            raise ValueError(f"indices: expected dataset indices in [0, {len(self.class_labels)}), got {int(index.min())}..{int(index.max())}")
        batch = super().make_batch(images, seed=seed, epoch=epoch, indices=indices, device=device)
        batch["labels"] = torch.from_numpy(self.class_labels[index]).to(device)
        return batch

    def contrastive_loss(self, z: torch.Tensor, batch: dict[str, torch.Tensor], gather: bool) -> torch.Tensor:
        """L^sup_out of the projections ``z (V, N, D)`` with the batch's class labels."""
        from selfsup_kernels import sup_con

        return sup_con(z.transpose(0, 1), batch["labels"], self.temperature, gather=gather)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(SupCon)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("supcon", optimizer="sgd", lr=0.3, summary="SGD at 0.3, as SimCLR"))
