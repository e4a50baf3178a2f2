"""MoCo v1, v2 and v3 (He, Fan, Wu, Xie & Girshick 2019, "Momentum Contrast for Unsupervised Visual
Representation Learning", arXiv:1911.05722; Chen, Fan, Girshick & He 2020, arXiv:2003.04297;
Chen, Xie & He 2021, arXiv:2104.02057).

A query encoder f_q (backbone + head) and a key encoder f_k, its momentum average
θ_k ← m·θ_k + (1 − m)·θ_q (eq. 2). With q = f_q(x₁), k = f_k(x₂) (no gradient), ℓ2-normalised:

* **v1**: InfoNCE against a queue of the K most recent keys (eq. 1),
      ℓ = −log exp(q·k⁺/τ) / (exp(q·k⁺/τ) + Σ_{n ∈ queue} exp(q·n/τ)),
  then the batch's keys replace the oldest queue entries; a linear 128-d head, τ = 0.07,
  m = 0.999, K = 65 536 (default here 4 096), the ``mocov1`` augmentation (no blur).
* **v2**: v1 with a 2-layer MLP head, τ = 0.2 and the ``mocov2`` augmentation (blur).
* **v3**: no queue; a predictor on the query branch, the other keys of the (global) batch as
  negatives, symmetrised: L = 2τ·[ctr(q₁, k₂) + ctr(q₂, k₁)] (the paper's code) with τ = 0.2,
  m from 0.99 following a cosine schedule to 1.

Shapes: ``views (2, N, 3, S, S)``; both encoders see both views in one pass (q, k ``(2, N, D)``).
The losses are :func:`selfsup_kernels.info_nce` (chunked: the N×(K+1) logits are never formed).
Under ``torch.distributed`` the keys of all ranks are gathered before they enter the queue (v1, v2)
or serve as negatives (v3), so every rank holds the queue one process would.

**Shuffling BatchNorm** (§3.3, v1/v2): with ``shuffle_bn`` (default for v1/v2) and more than one
rank, the key encoder runs on a shuffle of the global batch (:mod:`selfsup.models.batch_shuffle`),
so a query and its key never share BatchNorm statistics; with one process it does nothing. Its
single-device equivalent from the official CIFAR-10 demo is ``bn_splits=S``: every BatchNorm of
both encoders becomes a :class:`~selfsup.models.batchnorm.SplitBatchNorm` over S groups of the
batch and the keys are shuffled within the batch before the split. Synchronised BatchNorm (v3's
choice) is the trainer's ``sync_bn``.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.models.batch_shuffle import shuffled_encode
from selfsup.methods.joint import check_positive, JointEmbedding
from selfsup.models.momentum import ema_update, momentum_at, momentum_copy
from selfsup.models.gather import gather_global
from selfsup.models.queues import ring_write
from selfsup.models.batchnorm import split_batchnorm
from selfsup.models.heads import ProjectionHead
from selfsup.transforms import MultiView, Normalize, mocov1


class MoCo(JointEmbedding):
    """Args: ``version`` 1, 2 or 3; ``queue_size`` K (v1/v2; any size, also larger than the
    dataset or not a multiple of the batch: the queue is a ring); ``temperature`` τ (default 0.07
    for v1, else 0.2); ``momentum`` m (v3: the starting value of the cosine schedule);
    ``projection_dim``/``hidden_dim``/``head_layers`` of the head (1 layer, linear, for v1; 2 for
    v2; 3 for v3); ``shuffle_bn`` (v1/v2, default on): Shuffling BatchNorm across ranks;
    ``bn_splits`` S (v1/v2): SplitBatchNorm in both encoders and keys shuffled within the batch
    (the backbone's BatchNorm layers are swapped in place; its state dict keeps its keys, and in
    evaluation mode the layers are plain BatchNorm); ``augmentation`` another view pipeline of
    :data:`~selfsup.methods.joint.AUGMENTATIONS` (default: the version's own, MoCo v1's or v2's).

    Buffers ``queue (K, D)``, ``queue_pointer``, ``queue_filled`` and ``key_batches`` (v1/v2; the
    key batches encoded so far, which seeds the next shuffle) are saved in checkpoints. As in
    the paper's code the queue starts as random unit vectors and is used whole from the first step.
    """

    name: ClassVar[str] = "moco"
    default_augmentation: ClassVar[str] = "mocov2"
    queue: torch.Tensor
    queue_pointer: torch.Tensor
    queue_filled: torch.Tensor
    key_batches: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        version: int = 2,
        queue_size: int = 4096,
        temperature: float | None = None,
        momentum: float | None = None,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        head_layers: int | None = None,
        shuffle_bn: bool | None = None,
        bn_splits: int = 1,
        image_size: int | None = None,
        blur: bool | None = None,
        augmentation: str | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur, augmentation=augmentation)
        if version not in (1, 2, 3):
            raise ValueError(f"version: expected 1, 2 or 3, got {version}")
        tau = (0.07 if version == 1 else 0.2) if temperature is None else temperature
        check_positive(temperature=tau, projection_dim=projection_dim, bn_splits=bn_splits)
        m = (0.99 if version == 3 else 0.999) if momentum is None else momentum
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1], got {m}")
        if version < 3 and queue_size < 1:
            raise ValueError(f"queue_size: expected a positive int, got {queue_size}")
        if version == 3 and shuffle_bn:
            raise ValueError("shuffle_bn: only versions 1 and 2 shuffle their keys (v3 synchronises BatchNorm: the trainer's sync_bn)")
        if version == 3 and bn_splits > 1:
            raise ValueError(f"bn_splits: only versions 1 and 2 split BatchNorm, got {bn_splits} for v3")
        if version == 1 and blur:
            raise ValueError("blur: MoCo v1's augmentation has no blur")
        self.version = version
        self.version_views = augmentation is None
        self.temperature = float(tau)
        self.base_momentum = float(m)
        self.shuffle_bn = version < 3 if shuffle_bn is None else bool(shuffle_bn)
        self.bn_splits = int(bn_splits)
        hidden = hidden_dim or 2 * self.feature_dim
        self.head = ProjectionHead(self.feature_dim, hidden, projection_dim, layers=head_layers or version)  # linear (v1), 2-layer (v2), 3-layer MLP (v3)
        self.predictor = ProjectionHead(projection_dim, hidden, projection_dim) if version == 3 else None
        if self.bn_splits > 1:
            split_batchnorm(self.backbone, self.bn_splits)
            split_batchnorm(self.head, self.bn_splits)
        self.key_backbone = momentum_copy(self.backbone)
        self.key_head = momentum_copy(self.head)
        if version < 3:
            self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
            self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
            self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
            self.register_buffer("key_batches", torch.zeros((), dtype=torch.long))

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Warns when the queue (v1/v2) holds as many keys as the dataset has samples or more: every
        sample then meets keys of its own earlier views among the negatives."""
        super().bind_dataset(size, labels)
        if self.version < 3 and self.queue.shape[0] >= size:
            warnings.warn(
                f"queue_size: {self.queue.shape[0]} keys for {size} training samples; each sample meets its own "
                f"earlier keys as negatives. Choose queue_size well below {size}.",
                stacklevel=2,
            )

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        if self.version == 1 and self.version_views:
            return mocov1(size, normalize=normalize)
        return super().build_views(size, normalize)

    def shuffles_keys(self) -> bool:
        """Whether the key encoder runs on a shuffled batch: split BatchNorm, or Shuffling
        BatchNorm with more than one rank."""
        from selfsup_kernels.distributed import world

        return self.bn_splits > 1 or (self.shuffle_bn and world()[1] > 1)

    def keys(self, views: torch.Tensor) -> torch.Tensor:
        """ℓ2-normalised keys ``(V, N, D)`` of ``views (V, N, 3, S, S)``; the samples (with all their
        views) are shuffled across the global batch first when :meth:`shuffles_keys`."""
        with torch.no_grad():

            def key_encoder(x: torch.Tensor) -> torch.Tensor:
                return self.encode(lambda y: self.key_head(self.key_backbone(y)), x)

            if self.version == 3:
                return F.normalize(key_encoder(views), dim=2)
            seed = int(self.key_batches)
            self.key_batches.add_(1)
            if not self.shuffles_keys():
                return F.normalize(key_encoder(views), dim=2)
            keys = shuffled_encode(lambda x: key_encoder(x.transpose(0, 1)).transpose(0, 1), views.transpose(0, 1), seed)
            return F.normalize(keys.transpose(0, 1), dim=2)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from selfsup_kernels import info_nce
        from selfsup_kernels.distributed import is_distributed

        views = batch["views"]
        q = self.encode(lambda x: self.head(self.backbone(x)), views)
        k = self.keys(views)
        if self.version < 3:
            loss = info_nce(q[0], k[1], self.queue.clone(), self.temperature, batch_negatives=False)
            self.enqueue(gather_global(k[1]))
            return {"loss": loss, "queue_filled": self.queue_filled.float()}
        assert self.predictor is not None
        p = self.encode(self.predictor, q)
        gather = is_distributed()
        loss = info_nce(p[0], k[1], temperature=self.temperature, gather=gather) + info_nce(p[1], k[0], temperature=self.temperature, gather=gather)
        return {"loss": 2.0 * self.temperature * loss}

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Writes ``keys (B, D)`` over the oldest entries, wrapping around the ring; with B > K
        only the newest K keys are kept."""
        ring_write(self.queue, self.queue_pointer, keys, self.queue_filled)

    def on_step_end(self, step: int, total_steps: int) -> None:
        m = self.base_momentum if self.version < 3 else momentum_at(self.base_momentum, step, total_steps)
        ema_update(self.key_backbone, self.backbone, m)
        ema_update(self.key_head, self.head, m)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(MoCo, aliases=("mocov2",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("moco", {"queue_size": 1024}, lr=2e-3, summary="MoCo v2: AdamW at 2e-3, a queue of 1 024 keys"))
    register(Recipe("moco", {"version": 1, "queue_size": 1024}, optimizer="sgd", lr=0.3, summary="MoCo v1 (version=1): SGD at 0.3, a queue of 1 024 keys"), name="mocov1")
    register(Recipe("moco", {"version": 3}, summary="MoCo v3 (version=3): AdamW 1e-3, the stand-in of the joint methods, not swept"), name="mocov3")
