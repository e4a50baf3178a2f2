"""PIRL (Misra & van der Maaten 2019, "Self-Supervised Learning of Pretext-Invariant
Representations", arXiv:1912.01991) with the jigsaw pretext.

An image I (one view of the MoCo v2 augmentation: random resized crop, colour jitter, grayscale, flip)
and its jigsaw transform I^t (the native :func:`selfsup.ops.jigsaw`: a 3×3 grid of tiles at random
offsets, shuffled by a permutation) go through the same backbone φ (§3.2–3.3):

* f(v_I) = W_f·φ(I), a linear head to 128-d, ``(N, 128)``;
* g(v_{I^t}) = W_g·[W_t·φ(t_1), …, W_t·φ(t_9)]: every tile through the backbone and a linear head
  to 128-d, the nine (in shuffled order) concatenated to 1152-d, then a linear layer to 128-d.

A memory bank holds m_I, the running ℓ2-normalised f(v_I) of every image with momentum 0.5
(m_I ← normalize(½·m_I + ½·f(v_I)) after each step). The loss (eq. 5) mixes the pretext-invariance
term and an instance term, λ = 0.5:

    L = λ·L_NCE(m_I, g(v_{I^t})) + (1 − λ)·L_NCE(m_I, f(v_I)),
    L_NCE(m_I, x) = −log  exp(x·m_I/τ) / ( exp(x·m_I/τ) + Σ_{I' ∈ D_N} exp(x·m_{I'}/τ) )

with τ = 0.07 and D_N the m negatives drawn uniformly from the bank (the paper: 32 000; here 4096
by default, the same rows for every anchor at a step). The paper's h is the noise-contrastive
estimator h = exp(s/τ)/(exp(s/τ) + |D_N|/|D|) with a binary loss per pair; here L_NCE is its
softmax (InfoNCE) form, computed by :func:`selfsup_kernels.info_nce`. Under ``torch.distributed``
every rank writes the gathered f(v_I) of the global batch into the bank (:meth:`MemoryBank.update`)
and draws the same negatives, so the bank and the loss are those of one process.

Scaled down: the paper cuts 64-px tiles from 85-px cells of a 255-px crop (the defaults here, as
:class:`selfsup.methods.jigsaw.JigsawMethod`); 32-px digits take ``cell=10, patch=9``. Tiles are
standardised like the images (:func:`selfsup.models.inputs.images_to_tensor`), so the shared
backbone sees one input scale; I^t is cut from the source image, not from I.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.banked import BankedEmbedding
from selfsup.models.inputs import images_to_tensor
from selfsup.pretext.jigsaw import Jigsaw
from selfsup.transforms import MultiView, Normalize, mocov2

TILE_STREAM = 1
"""Added to the batch seed for the jigsaw draws, a stream apart from the image view's."""


class PIRL(BankedEmbedding):
    """``make_batch``: N RGB uint8 images → ``image (N, 3, S, S)``, ``tiles (N·T, 3, P, P)`` (the
    T = grid² shuffled tiles of each image, consecutive) and ``indices (N,)``. ``training_step``
    returns the mixed loss and its two terms (``jigsaw_nce``, ``image_nce``).
    Buffers saved in checkpoints: ``banks.image.bank (n, embedding_dim)`` and ``steps``.

    Args:
        backbone: an ``nn.Module`` with integer ``out_dim`` (RGB input).
        embedding_dim: size of f, g and the bank rows (128).
        negatives: m, bank rows drawn per step (the paper: 32 000).
        temperature: τ (0.07).
        jigsaw_weight: λ of the loss (0.5).
        bank_momentum: the bank's momentum (0.5).
        grid, cell, patch, permutations: the jigsaw transform (3×3 cells of 85 px, 64-px tiles;
            shuffled by one of ``permutations`` maximal-Hamming permutations).
        image_size: side S of I; defaults to the input's height.
        blur: Gaussian blur of I; ``None`` uses it only when S ≥ 64.

    Raises:
        ValueError: ``jigsaw_weight`` outside [0, 1]; ``permutations`` < 1; the options of
            :class:`~selfsup.methods.banked.BankedEmbedding`; a grid that does not fit the
            images (at make_batch).

    Example:
        >>> import numpy as np
        >>> from selfsup.models import small_resnet
        >>> method = PIRL(small_resnet(width=8), cell=10, patch=9)
        >>> method.bind_dataset(4)
        >>> batch = method.make_batch(np.zeros((4, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(4))
        >>> tuple(batch["image"].shape), tuple(batch["tiles"].shape)
        ((4, 3, 32, 32), (36, 3, 9, 9))
    """

    name: ClassVar[str] = "pirl"
    views: ClassVar[tuple[str, ...]] = ("image", "tiles", "indices")
    takes_originals: ClassVar[bool] = False
    """The puzzle is cut from the whole image, so images arrive at one size."""

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int = 128,
        negatives: int = 4096,
        temperature: float = 0.07,
        jigsaw_weight: float = 0.5,
        bank_momentum: float = 0.5,
        grid: int = 3,
        cell: int = 85,
        patch: int = 64,
        permutations: int = 100,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, ("image",), embedding_dim, negatives, temperature, bank_momentum, image_size=image_size, blur=blur)
        if not 0.0 <= jigsaw_weight <= 1.0:
            raise ValueError(f"jigsaw_weight: expected a value in [0, 1], got {jigsaw_weight}")
        if permutations < 1:
            raise ValueError(f"permutations: expected at least 1, got {permutations}")
        self.jigsaw_weight = float(jigsaw_weight)
        self.task = Jigsaw(permutations=permutations, grid=grid, cell=cell, patch=patch, standardize=False)
        self.tiles_per_image = grid * grid
        self.image_head = nn.Linear(self.feature_dim, embedding_dim)
        self.tile_head = nn.Linear(self.feature_dim, embedding_dim)
        self.jigsaw_head = nn.Linear(self.tiles_per_image * embedding_dim, embedding_dim)

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        """I: the first view of the MoCo v2 augmentation."""
        return MultiView(mocov2(size, normalize=normalize, blur=self.uses_blur(size)).views[:1])

    def group_views(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"image": views[0]}

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        batch = super().make_batch(images, seed=seed, epoch=epoch, indices=indices, device=device)
        puzzle = self.task(images, seed=seed + TILE_STREAM, epoch=epoch, indices=indices)
        batch["tiles"] = images_to_tensor(puzzle.inputs.reshape(-1, *puzzle.inputs.shape[2:]), device)
        return batch

    def image_embedding(self, image: torch.Tensor) -> torch.Tensor:
        """f(v_I) ``(N, embedding_dim)``, ℓ2-normalised."""
        return F.normalize(self.image_head(self.backbone(image)), dim=1)

    def jigsaw_embedding(self, tiles: torch.Tensor) -> torch.Tensor:
        """g(v_{I^t}) ``(N, embedding_dim)`` of tiles ``(N·T, 3, P, P)``, ℓ2-normalised."""
        per_tile = self.tile_head(self.backbone(tiles))
        return F.normalize(self.jigsaw_head(per_tile.reshape(-1, self.tiles_per_image * per_tile.shape[1])), dim=1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        indices = batch["indices"]
        f = self.image_embedding(batch["image"])
        g = self.jigsaw_embedding(batch["tiles"])
        jigsaw_nce = self.contrast(g, "image", indices)
        image_nce = self.contrast(f, "image", indices)
        loss = self.jigsaw_weight * jigsaw_nce + (1.0 - self.jigsaw_weight) * image_nce
        self.update_bank("image", indices, f)
        return {"loss": loss, "jigsaw_nce": jigsaw_nce.detach(), "image_nce": image_nce.detach()}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(PIRL)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("pirl", {"cell": 10, "patch": 9, "negatives": 1024}, summary="AdamW 1e-3, 9-px tiles from 10-px cells, 1 024 negatives"))
