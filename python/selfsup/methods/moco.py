"""MoCo v2 and v3 (He et al. 2019, "Momentum Contrast", arXiv:1911.05722; Chen, Fan, Girshick &
He 2020, arXiv:2003.04297; Chen, Xie & He 2021, arXiv:2104.02057).

A query encoder f_q (backbone + MLP head) and a key encoder f_k, its momentum average
θ_k ← m·θ_k + (1 − m)·θ_q. With q = f_q(x₁), k = f_k(x₂) (no gradient), ℓ2-normalised:

* **v2**: InfoNCE against a queue of the K most recent keys (eq. 1, τ = 0.2, m = 0.999),
      ℓ = −log exp(q·k⁺/τ) / (exp(q·k⁺/τ) + Σ_{n ∈ queue} exp(q·n/τ)),
  then the batch's keys replace the oldest queue entries.
* **v3**: no queue; a predictor on the query branch, the other keys of the (global) batch as
  negatives, symmetrised: L = 2τ·[ctr(q₁, k₂) + ctr(q₂, k₁)] (the paper's code) with τ = 0.2,
  m from 0.99 following a cosine schedule to 1.

The losses are :func:`selfsup_kernels.info_nce` (chunked: the N×(K+1) logits are never formed).
Under ``torch.distributed`` the keys of all ranks are gathered before they enter the queue (v2) or
serve as negatives (v3), so every rank holds the queue one process would. Shuffling BatchNorm
across devices (v1/v2) is not implemented: its leak needs several devices with BatchNorm per
device, and the trainer's DDP runs without it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.methods.joint import JointEmbedding, check_positive, ema_update, gather_global, momentum_at, momentum_copy, ring_write
from selfsup.models.heads import ProjectionHead


class MoCo(JointEmbedding):
    """Args: ``version`` 2 or 3; ``queue_size`` K (v2; any size, also larger than the dataset or
    not a multiple of the batch: the queue is a ring); ``temperature`` τ; ``momentum`` m (v3: the
    starting value of the cosine schedule); ``projection_dim``/``hidden_dim``/``head_layers`` of the head
    (2 layers for v2, 3 for v3).

    Buffers ``queue (K, D)``, ``queue_pointer`` and ``queue_filled`` are saved in checkpoints. As in
    the paper's code the queue starts as random unit vectors and is used whole from the first step.
    """

    name: ClassVar[str] = "moco"
    recipe_name: ClassVar[str] = "mocov2"
    queue: torch.Tensor
    queue_pointer: torch.Tensor
    queue_filled: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        version: int = 2,
        queue_size: int = 4096,
        temperature: float = 0.2,
        momentum: float | None = None,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        head_layers: int | None = None,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        if version not in (2, 3):
            raise ValueError(f"version: expected 2 or 3, got {version}")
        check_positive(temperature=temperature, projection_dim=projection_dim)
        m = (0.999 if version == 2 else 0.99) if momentum is None else momentum
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1], got {m}")
        if version == 2 and queue_size < 1:
            raise ValueError(f"queue_size: expected a positive int, got {queue_size}")
        self.version = version
        self.temperature = float(temperature)
        self.base_momentum = float(m)
        hidden = hidden_dim or 2 * self.feature_dim
        self.head = ProjectionHead(self.feature_dim, hidden, projection_dim, layers=head_layers or (2 if version == 2 else 3))
        self.predictor = ProjectionHead(projection_dim, hidden, projection_dim) if version == 3 else None
        self.key_backbone = momentum_copy(self.backbone)
        self.key_head = momentum_copy(self.head)
        if version == 2:
            self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
            self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
            self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def keys(self, views: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(self.encode(lambda x: self.key_head(self.key_backbone(x)), views), dim=2)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from selfsup_kernels import info_nce

        views = batch["views"]
        q = self.encode(lambda x: self.head(self.backbone(x)), views)
        k = self.keys(views)
        if self.version == 2:
            loss = info_nce(q[0], k[1], self.queue.clone(), self.temperature, batch_negatives=False)
            self.enqueue(gather_global(k[1]))
            return {"loss": loss, "queue_filled": self.queue_filled.float()}
        assert self.predictor is not None
        p = self.encode(self.predictor, q)
        gather = torch.distributed.is_available() and torch.distributed.is_initialized()
        loss = info_nce(p[0], k[1], temperature=self.temperature, gather=gather) + info_nce(p[1], k[0], temperature=self.temperature, gather=gather)
        return {"loss": 2.0 * self.temperature * loss}

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Writes ``keys (B, D)`` over the oldest entries, wrapping around the ring; with B > K
        only the newest K keys are kept."""
        written = ring_write(self.queue, self.queue_pointer, keys)
        self.queue_filled.fill_(min(int(self.queue_filled) + written, self.queue.shape[0]))

    def on_step_end(self, step: int, total_steps: int) -> None:
        m = self.base_momentum if self.version == 2 else momentum_at(self.base_momentum, step, total_steps)
        ema_update(self.key_backbone, self.backbone, m)
        ema_update(self.key_head, self.head, m)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(MoCo, aliases=("mocov2",))
