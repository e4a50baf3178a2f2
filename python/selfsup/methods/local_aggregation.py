"""Local Aggregation (Zhuang, Zhai & Yamins 2019, "Local Aggregation for Unsupervised Learning of
Visual Embeddings", arXiv:1903.12355).

The embedding v_i = f_θ(x_i) (ℓ2-normalised, 128-d) and the memory bank are InstDisc's
(:class:`selfsup.methods.instdisc.InstDisc`). For every sample:

* background neighbours B_i: the k bank rows most similar to v_i (k = 4096, clipped to the bank);
* close neighbours C_i: every sample that shares a cluster with i in at least one of H k-means
  clusterings of the bank (:func:`selfsup.models.kmeans.kmeans`, seeds ``seed + h``), recomputed
  every ``cluster_every`` steps (default: once per pass over the data, as the reference code does);
* with P(A | v) = Σ_{j∈A} exp(v_jᵀv/τ) / Σ_{j=1}^{n} exp(v_jᵀv/τ), τ = 0.07, the loss
      L(C_i, B_i | θ, x_i) = −log P(C_i ∩ B_i | v_i) / P(B_i | v_i)
  (the normaliser cancels), as the reference code computes it: −log(ratio + 10⁻⁷), so a sample
  with no close neighbour among its background costs log 10⁷ and sends no gradient.

The bank rows then move toward the new embeddings with momentum 0.5. The reference code warm-starts
LA from a network trained with instance discrimination (10 epochs of IR, 5% of its ImageNet steps);
``warmup_steps`` runs that phase in the same run with InstDisc's loss (``loss``, ``negatives``,
``proximal``; no proximal term by default, as in the LA code). The loss compares subsets that differ
per sample, which no InfoNCE-shaped kernel expresses: it is plain torch over row chunks of the
(N × n) similarities (``chunk`` rows at a time; only the top-k values keep a gradient).

Defaults: the reference configurations use k = 4096, m = 0.5, τ = 0.07 and H = 3 (AlexNet) to 10
(ResNet) clusterings of 30 000 clusters for the 1.28 M ImageNet images; here H = 3 and the number
of clusters scales with the dataset at that ratio (about 43 images per cluster, at least 2). Under
``torch.distributed`` the bank is identical on every rank (gathered updates), so the seeded k-means
gives every rank the same clusters; the loss is per sample. Cluster labels ``cluster_labels (H, n)``
and the step of the last clustering are buffers saved in checkpoints.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.instdisc import InstDisc
from selfsup.methods.joint import check_positive
from selfsup.models.kmeans import kmeans
from selfsup.models.memory_bank import MemoryBank
from selfsup.losses.local_aggregation import local_aggregation_loss

IMAGES_PER_CLUSTER = 1_281_167 / 30_000
"""The reference configuration's ratio: 30 000 clusters for the ImageNet training set."""
class LocalAggregation(InstDisc):
    """Args: ``backbone``; ``background`` k (clipped to the bank); ``clusterings`` H;
    ``clusters`` per clustering (default: about one per 43 images, at least 2); ``cluster_every``
    steps between clusterings (default: one pass over the data); ``warmup_steps`` of instance
    discrimination first; ``temperature`` τ; ``bank_momentum``; ``embedding_dim``; ``loss``,
    ``negatives``, ``proximal`` of the warm-up (:class:`InstDisc`); ``seed``; ``image_size``;
    ``chunk`` query rows per block of similarities.

    Raises:
        ValueError: ``background``, ``clusterings``, ``cluster_every`` or ``chunk`` < 1,
            ``warmup_steps`` < 0; at :meth:`bind_dataset`, ``clusters`` outside [1, n]; and as
            :class:`InstDisc`.

    Example:
        >>> from selfsup.models import small_resnet
        >>> method = LocalAggregation(small_resnet(width=8), background=32, clusters=4)
        >>> method.bind_dataset(64)
        >>> batch = method.make_batch(np.zeros((8, 16, 16, 3), np.uint8), seed=0, epoch=0, indices=np.arange(8))
        >>> float(method.training_step(batch)["loss"]) >= 0, tuple(method.cluster_labels.shape)
        (True, (3, 64))
    """

    name: ClassVar[str] = "local_aggregation"
    cluster_labels: torch.Tensor
    clustered_at: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        background: int = 4096,
        clusterings: int = 3,
        clusters: int | None = None,
        cluster_every: int | None = None,
        warmup_steps: int = 0,
        temperature: float = 0.07,
        bank_momentum: float = 0.5,
        embedding_dim: int = 128,
        loss: str = "softmax",
        negatives: int = 4096,
        proximal: float = 0.0,
        seed: int = 0,
        image_size: int | None = None,
        chunk: int = 1024,
    ) -> None:
        super().__init__(
            backbone, loss=loss, negatives=negatives, temperature=temperature, proximal=proximal,
            bank_momentum=bank_momentum, embedding_dim=embedding_dim, seed=seed, image_size=image_size,
        )  # fmt: skip
        check_positive(background=background, clusterings=clusterings, chunk=chunk)
        if cluster_every is not None:
            check_positive(cluster_every=cluster_every)
        if clusters is not None:
            check_positive(clusters=clusters)
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected >= 0, got {warmup_steps}")
        self.background = int(background)
        self.clusterings = int(clusterings)
        self.clusters = clusters
        self.cluster_every = cluster_every
        self.warmup_steps = int(warmup_steps)
        self.chunk = int(chunk)
        self.register_buffer("cluster_labels", torch.zeros(self.clusterings, 0, dtype=torch.long))
        self.register_buffer("clustered_at", torch.tensor(-1, dtype=torch.long))

    def clusters_for(self, size: int) -> int:
        count = self.clusters if self.clusters is not None else max(2, round(size / IMAGES_PER_CLUSTER))
        if count > size:
            raise ValueError(f"clusters: expected at most the dataset size {size}, got {count}")
        return count

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Allocates the bank and ``cluster_labels (H, size)`` (−1: not clustered yet)."""
        self.clusters_for(size)
        super().bind_dataset(size, labels)
        if self.cluster_labels.shape != (self.clusterings, size):
            self.cluster_labels = torch.full((self.clusterings, size), -1, dtype=torch.long, device=self.cluster_labels.device)
            self.clustered_at.fill_(-1)

    @torch.no_grad()
    def recluster(self, bank: MemoryBank) -> None:
        """H seeded k-means clusterings of the bank rows into ``cluster_labels``."""
        count = self.clusters_for(len(bank))
        for h in range(self.clusterings):
            labels, _ = kmeans(bank.bank, count, seed=self.seed + h)
            self.cluster_labels[h] = labels
        self.clustered_at.fill_(int(self.steps))

    def clusters_due(self, size: int, batch: int) -> bool:
        from selfsup_kernels.distributed import world

        if int(self.clustered_at) < 0:
            return True
        every = self.cluster_every or math.ceil(size / (batch * world()[1]))
        return int(self.steps) - int(self.clustered_at) >= every

    def objective(self, q: torch.Tensor, indices: torch.Tensor, bank: MemoryBank) -> dict[str, torch.Tensor]:
        if int(self.steps) < self.warmup_steps:
            return self.instance_discrimination(q, indices, bank)
        if self.clusters_due(len(bank), q.shape[0]):
            self.recluster(bank)
        loss = local_aggregation_loss(
            q, bank.bank.clone(), self.cluster_labels, indices, min(self.background, len(bank)), self.temperature, self.chunk
        )
        return {"loss": loss}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(LocalAggregation)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("local_aggregation", {"warmup_steps": 50}, lr=5e-4, summary="AdamW 5e-4 after 50 steps of instance discrimination"))
