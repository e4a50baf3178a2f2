"""Instance discrimination with a memory bank (Wu, Xiong, Yu & Lin 2018, "Unsupervised Feature
Learning via Non-Parametric Instance Discrimination", arXiv:1805.01978), on the memory-bank base
:class:`selfsup.methods.banked.BankedEmbedding` it shares with Local Aggregation, CMC and PIRL.

Every image x_i is its own class. The backbone and a linear layer map one augmented view to an
ℓ2-normalised embedding v = f_θ(x) ∈ ℝ¹²⁸; a memory bank V = {v_j} holds one row per training
image. With τ = 0.07 and n images:

* ``loss="softmax"``, the non-parametric softmax over the whole bank (eq. 2),
      P(i | v) = exp(v_iᵀv/τ) / Σ_{j=1}^{n} exp(v_jᵀv/τ),   J = −Σ_i log P(i | f_θ(x_i)),
  computed by :func:`selfsup_kernels.info_nce` with the bank row v_i as the positive and the bank as
  the negatives. That kernel's denominator counts v_i twice (once as the positive, once among the
  negatives): with A = exp(v_iᵀv/τ) and S = Σ_j exp(v_jᵀv/τ) it returns ℓ′ = log((A + S)/A), and the
  paper's ℓ = log(S/A) = ℓ′ + log(1 − exp(−ℓ′)) exactly, which is what is minimised.
* ``loss="nce"``, noise-contrastive estimation with m noise rows drawn uniformly from the bank
  (P_n = 1/n; eqs. 5–8): h(i, v) = P(i|v) / (P(i|v) + m·P_n), P(i|v) = exp(v_iᵀv/τ)/Z,
      J_NCE = −E_{P_d}[log h(i, v)] − m·E_{P_n}[log(1 − h(i, v′))],
  with Z estimated once, from the first batch, as n·mean_{i,k} exp(v_{j_k}ᵀ f_i/τ) (eq. 8; the
  official code also averages in the positive column) and kept constant afterwards (a buffer). The
  m rows are shared by the batch (the code draws m per sample), m = 4096 clipped to n.
* **Proximal regularisation** (eq. 9): + λ‖v_i^(t) − v_i^(t−1)‖² between the current embedding and
  its bank row, λ = 30 (``proximal``; the official code has no explicit term). Added to either loss.

After each step the batch's rows are updated, v_i ← normalise(m·v_i + (1 − m)·f_i), with the
official code's momentum m = 0.5 (``bank_momentum``; the paper's text replaces the row, m = 0).
Views: the paper's augmentation (:func:`selfsup.transforms.instdisc`), one view per image.
Under ``torch.distributed`` the bank update gathers every rank's indices and embeddings
(:meth:`MemoryBank.update`), the noise rows are drawn from the step so every rank draws the same,
and Z is averaged over ranks; the loss is per sample, so DDP's gradient averaging equals one
process on the global batch. Scaled down: ResNet-50 + 128-d embedding on ImageNet (n = 1.28 M) in
the paper; here any backbone with ``out_dim`` and the dataset the trainer binds.

Weighted kNN over the bank (§3.4): :meth:`InstDisc.knn_predict` embeds test images and lets
their k = 200 most similar bank rows vote with weight exp(s/τ) (:func:`selfsup.eval.knn.knn_predict`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.models.inputs import images_to_tensor
from selfsup.methods.banked import BankedEmbedding
from selfsup.models.memory_bank import MemoryBank
from selfsup.transforms import MultiView, Normalize, instdisc
from selfsup.losses.nce import estimate_normalizer, instance_softmax_loss, nce_loss

LOSSES = ("softmax", "nce")
BANK = "embedding"
"""The name of the one bank (state key ``banks.embedding.bank``)."""


class InstDisc(BankedEmbedding):
    """Args: ``backbone``; ``loss`` ``"softmax"`` (eq. 2 over the whole bank) or ``"nce"``;
    ``negatives`` m of NCE (clipped to the bank size); ``temperature`` τ; ``proximal`` λ;
    ``bank_momentum``; ``embedding_dim``; ``seed`` (bank initialisation and noise draws);
    ``image_size`` of the views (default: the input's).

    Backbone + linear embedding, ℓ2-normalised, and one :class:`MemoryBank` (``bank()``, named
    ``"embedding"``) of one row per training image, allocated by :meth:`bind_dataset`.
    :meth:`objective` is the loss, computed before the batch's rows move toward their new
    embeddings (momentum ``bank_momentum``).

    Shapes: ``make_batch`` gives ``views (1, N, 3, S, S)`` and ``indices (N,)``; ``training_step``
    returns ``loss`` (instance loss + λ·proximal), ``instance_loss`` and ``proximal``. Buffers
    saved in checkpoints: ``banks.embedding.bank (n, 128)``, ``steps`` (optimizer steps done, which
    seed the noise draws) and ``nce_normalizer`` (Z; −1 until estimated).

    Raises:
        ValueError: unknown ``loss``; ``negatives`` < 1; ``temperature``/``embedding_dim`` ≤ 0;
            ``proximal`` < 0; ``bank_momentum`` outside [0, 1).

    Example:
        >>> from selfsup.models import small_resnet
        >>> method = InstDisc(small_resnet(width=8))
        >>> method.bind_dataset(100)
        >>> batch = method.make_batch(np.zeros((4, 16, 16, 3), np.uint8), seed=0, epoch=0, indices=np.arange(4))
        >>> tuple(batch["views"].shape), float(method.training_step(batch)["loss"]) > 0
        ((1, 4, 3, 16, 16), True)
    """

    name: ClassVar[str] = "instdisc"
    views: ClassVar[tuple[str, ...]] = ("views", "indices")
    nce_normalizer: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        loss: str = "softmax",
        negatives: int = 4096,
        temperature: float = 0.07,
        proximal: float = 30.0,
        bank_momentum: float = 0.5,
        embedding_dim: int = 128,
        seed: int = 0,
        image_size: int | None = None,
    ) -> None:
        super().__init__(
            backbone, (BANK,), embedding_dim, negatives, temperature, bank_momentum, seed=seed, image_size=image_size, blur=False
        )
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        if not proximal >= 0:
            raise ValueError(f"proximal: expected >= 0, got {proximal}")
        self.loss = loss
        self.proximal = float(proximal)
        self.embedding = nn.Linear(self.feature_dim, self.embedding_dim)
        self.labels: torch.Tensor | None = None
        self.register_buffer("nce_normalizer", torch.tensor(-1.0))

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        return instdisc(size, normalize=normalize)

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Allocates the bank (``size`` rows, random unit vectors from ``seed``); binding again to
        the same size keeps the bank. ``labels`` are kept for :meth:`knn_predict`."""
        super().bind_dataset(size, labels)
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` → ℓ2-normalised embeddings ``(N, embedding_dim)``."""
        return F.normalize(self.embedding(self.backbone(images)), dim=1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        bank = self.bank()
        if "indices" not in batch:
            raise ValueError("batch: expected 'indices' (dataset indices of the images), as make_batch returns them")
        indices = batch["indices"].to(bank.bank.device)
        q = self.embed(batch["views"][0])
        out = self.objective(q, indices, bank)
        self.update_bank(BANK, indices, q)
        return out

    def objective(self, q: torch.Tensor, indices: torch.Tensor, bank: MemoryBank) -> dict[str, torch.Tensor]:
        """The loss of embeddings ``q (N, D)`` of samples ``indices``, before their rows move."""
        return self.instance_discrimination(q, indices, bank)

    def instance_discrimination(self, q: torch.Tensor, indices: torch.Tensor, bank: MemoryBank) -> dict[str, torch.Tensor]:
        """The instance loss of ``loss`` plus λ·proximal for embeddings ``q (N, D)`` of ``indices``."""
        positives = bank.rows(indices)
        if self.loss == "softmax":
            instance = instance_softmax_loss(q, positives, bank.bank.clone(), self.temperature)
        else:
            noise = bank.bank[bank.sample(min(self.negatives, len(bank)), step=int(self.steps), seed=self.seed)]
            if float(self.nce_normalizer) < 0:
                self.nce_normalizer.fill_(estimate_normalizer(q, noise, len(bank), self.temperature))
            instance = nce_loss(q, positives, noise, float(self.nce_normalizer), len(bank), self.temperature)
        proximal = ((q - positives) ** 2).sum(1).mean()
        return {"loss": instance + self.proximal * proximal, "instance_loss": instance.detach(), "proximal": proximal.detach()}

    @torch.no_grad()
    def knn_predict(
        self, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64] | torch.Tensor | None = None, *,
        k: int = 200, temperature: float = 0.07, batch_size: int = 256,
    ) -> torch.Tensor:  # fmt: skip
        """Weighted kNN (§3.4: k = 200, τ = 0.07) of uint8 ``images (M, H, W, 3)``: their
        embeddings (eval mode) against the bank rows, labelled by ``labels (n,)`` (default: the
        labels given to :meth:`bind_dataset`). Returns class predictions ``(M,)``.

        Raises:
            RuntimeError: no bank yet. ValueError: no labels, or not one per bank row.
        """
        from selfsup.eval.knn import knn_predict

        bank = self.bank()
        targets = self.labels if labels is None else torch.as_tensor(labels, dtype=torch.long)
        if targets is None or targets.shape != (len(bank),):
            raise ValueError(f"labels: expected one label per bank row ({len(bank)}), got {None if targets is None else tuple(targets.shape)}")
        was_training = self.training
        self.eval()
        try:
            device = self.embedding.weight.device
            embeddings = torch.cat([self.embed(images_to_tensor(images[i : i + batch_size], device)) for i in range(0, len(images), batch_size)])
        finally:
            self.train(was_training)
        return knn_predict(bank.bank, targets.to(bank.bank.device), embeddings, k=k, temperature=temperature)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(InstDisc)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("instdisc", lr=5e-4, summary="AdamW 5e-4 (+0.065 against +0.042 with the paper's SGD 0.03)"))
