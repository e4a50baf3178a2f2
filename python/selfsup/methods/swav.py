"""SwAV (Caron, Misra, Mairal, Goyal, Bojanowski & Joulin 2020, "Unsupervised Learning of Visual
Features by Contrasting Cluster Assignments", arXiv:2006.09882).

Every crop x_t of an image goes through the backbone and a projection MLP to an ℓ2-normalised
z_t ``(D,)``, scored against K prototypes C ``(D, K)`` of unit norm. The codes of a global crop s,
q_s ``(K,)``, assign the batch's crops to prototypes under an equipartition constraint: for the
scores S = ZᵀC of B crops, Q ``(K, B)`` maximises Tr(QᵀCᵀZ) + εH(Q) over the transportation
polytope (rows summing to 1/K, columns to 1/B), found by Sinkhorn-Knopp (§3.1):

    Q = Diag(u) exp(CᵀZ/ε) Diag(v),   alternately rescaling rows to 1/K and columns to 1/B,

ε = 0.05, 3 iterations, no gradient; then each column is rescaled to sum to 1. The swapped
prediction problem (eq. 1–2) predicts the code of one crop from every other crop t:

    ℓ(z_t, q_s) = −Σ_k q_s^(k) log p_t^(k),   p_t^(k) = exp(z_tᵀc_k/τ) / Σ_k′ exp(z_tᵀc_k′/τ),   τ = 0.1
    L = (1/G) Σ_{s ∈ global} (1/(V − 1)) Σ_{t ≠ s} mean_batch ℓ(z_t, q_s)         (the paper's code)

over the G = 2 global and L local crops (V = G + L; multi-crop, §3.2, from the native
:func:`selfsup.transforms.swav` augmentation: global scale (0.14, 1), local (0.05, 0.14), local side
S·96/224). Codes are computed on the global crops only. As in the paper's code the prototypes are
ℓ2-normalised (in place, no gradient) before every forward, and their gradients are zeroed during
the first ``freeze_prototypes_steps`` optimizer steps ("freeze the prototypes during the first
epoch"). With small batches a queue of the global crops' embeddings from past steps (the paper: 3840
for batches of 256, starting at epoch 15) is scored against the current prototypes and prepended to
the batch before Sinkhorn-Knopp, so the equipartition spreads over more samples; only the batch's
codes enter the loss. The swapped prediction is a cross-entropy over K prototypes with soft
targets, not a contrast between samples, so it is computed here rather than by ``selfsup_kernels``.

Under ``torch.distributed`` the per-prototype sums of Sinkhorn-Knopp are all-reduced over ranks
(the paper's ``distributed_sinkhorn``), so each rank's codes are those of the global batch. The
queue is fed with every rank's global-crop embeddings in global-batch order (like MoCo's) and is
identical on every rank; its rows enter the sums once (the paper keeps ``queue_size / world``
rows per rank instead: the same set of past embeddings). The loss is per sample.

Defaults are the paper's (``main_swav.py``): K = 3000 prototypes, 128-d z, a 2-layer projection
MLP with BatchNorm (hidden width: the backbone's feature size, 2048 for ResNet-50), 6 local crops,
the prototypes frozen for 313 iterations (one ImageNet epoch at batch 4096; scale this to one epoch
of your data), no queue. No Gaussian blur below 64 pixels (as the other augmentations here).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.joint import check_positive, MultiCrop
from selfsup.models.gather import gather_global
from selfsup.models.queues import ring_write
from selfsup.models.heads import ProjectionHead
from selfsup.transforms import MultiView, Normalize, swav
from selfsup.losses.sinkhorn import sinkhorn, swapped_prediction_loss

GLOBAL_SCALE = (0.14, 1.0)
LOCAL_SCALE = (0.05, 0.14)


class SwAV(MultiCrop):
    """Args: ``backbone``; ``prototypes`` K; ``projection_dim`` D, ``hidden_dim`` and
    ``head_layers`` of the projection MLP; ``temperature`` τ; ``epsilon`` ε and
    ``sinkhorn_iterations`` of Sinkhorn-Knopp; ``queue_size`` (0: no queue), filled from step
    ``queue_start_step`` on and used once full; ``freeze_prototypes_steps``; ``local_crops`` L and
    ``local_size`` s of the multi-crop; ``image_size`` S; ``blur``.

    Shapes: ``make_batch`` turns N uint8 images into ``views (2, N, 3, S, S)`` and ``local (L, N,
    3, s, s)``; the prototypes are ``prototypes.weight (K, D)``.

    Buffers ``queue (queue_size, 2, D)``, ``queue_pointer``, ``queue_filled`` and ``steps_done``
    (optimizer steps so far: the freeze and the queue's start) are saved in checkpoints.

    Keep K well above D (the paper: 3000 ≫ 128): with K < D an embedding orthogonal to every
    prototype scores them all 0, its code and prediction are uniform and the loss sits at log K
    with no gradient. With small batches of a young network, whose embeddings are still close
    together, lower ε (0.01 for batches of 64 digits): at 0.05 the codes start nearly uniform and
    predicting them collapses the embeddings.

    Raises:
        ValueError: ``prototypes`` < 2, τ ≤ 0, ε ≤ 0, fewer than 1 Sinkhorn iteration, negative
            queue size, start or freeze steps, bad crop options.

    Example:
        >>> from selfsup.models import small_resnet
        >>> import numpy as np
        >>> method = SwAV(small_resnet(width=8), prototypes=30, local_crops=2)
        >>> batch = method.make_batch(np.zeros((4, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(4))
        >>> tuple(batch["views"].shape), tuple(batch["local"].shape)
        ((2, 4, 3, 32, 32), (2, 4, 3, 14, 14))
        >>> method.training_step(batch)["loss"].item() > 0
        True
    """

    name: ClassVar[str] = "swav"
    queue: torch.Tensor
    queue_pointer: torch.Tensor
    queue_filled: torch.Tensor
    steps_done: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        prototypes: int = 3000,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        head_layers: int = 2,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        queue_size: int = 0,
        queue_start_step: int = 0,
        freeze_prototypes_steps: int = 313,
        local_crops: int = 6,
        local_size: int | None = None,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, local_crops, local_size, image_size=image_size, blur=blur)
        if prototypes < 2:
            raise ValueError(f"prototypes: expected at least 2, got {prototypes}")
        check_positive(temperature=temperature, epsilon=epsilon, projection_dim=projection_dim)
        if sinkhorn_iterations < 1:
            raise ValueError(f"sinkhorn_iterations: expected at least 1, got {sinkhorn_iterations}")
        for name, value in (("queue_size", queue_size), ("queue_start_step", queue_start_step), ("freeze_prototypes_steps", freeze_prototypes_steps)):
            if value < 0:
                raise ValueError(f"{name}: expected >= 0, got {value}")
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.queue_start_step = int(queue_start_step)
        self.freeze_prototypes_steps = int(freeze_prototypes_steps)
        self.head = ProjectionHead(self.feature_dim, hidden_dim or self.feature_dim, projection_dim, layers=head_layers)
        self.prototypes = nn.Linear(projection_dim, prototypes, bias=False)
        self.normalize_prototypes()
        self.register_buffer("queue", torch.zeros(queue_size, self.global_crops, projection_dim))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        groups = [(size, self.global_crops, GLOBAL_SCALE)]
        if self.local_crops:
            groups.append((self.local_side(size), self.local_crops, LOCAL_SCALE))
        sizes, counts, scales = zip(*groups)
        return swav(sizes, counts, [lo for lo, _ in scales], [hi for _, hi in scales], normalize=normalize, blur=self.uses_blur(size))

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """c_k ← c_k / ‖c_k‖ for every prototype (the paper's code, before each forward)."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def prototypes_frozen(self) -> bool:
        return int(self.steps_done) < self.freeze_prototypes_steps

    def queue_ready(self) -> bool:
        """The queue is used once every row holds a past embedding (the paper's code)."""
        return self.queue.shape[0] > 0 and int(self.queue_filled) == self.queue.shape[0]

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """ℓ2-normalised projections of every crop: ``(2 + L, N, D)``, the global crops first."""
        return F.normalize(self.encode_crops(lambda x: self.head(self.backbone(x)), batch), dim=-1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.normalize_prototypes()
        z = self.embed(batch)
        weight = self.prototypes.weight
        if self.prototypes_frozen():
            weight = weight.view_as(weight)
            weight.register_hook(torch.zeros_like)
        scores = F.linear(z, weight)
        with torch.no_grad():
            codes = torch.stack([self.codes(scores[s].detach(), s) for s in range(self.global_crops)])
        loss = swapped_prediction_loss(scores, codes, self.temperature)
        used_queue = self.queue_ready()
        if self.queue.shape[0] and int(self.steps_done) >= self.queue_start_step:
            self.enqueue(z[: self.global_crops].detach())
        return {"loss": loss, "queue_used": torch.tensor(float(used_queue))}

    @torch.no_grad()
    def codes(self, scores: torch.Tensor, crop: int) -> torch.Tensor:
        """Sinkhorn-Knopp codes ``(N, K)`` of global crop ``crop`` from its scores ``(N, K)``, with
        the queue's scores (against the current prototypes) prepended once the queue is full."""
        if not self.queue_ready():
            return sinkhorn(scores, self.epsilon, self.sinkhorn_iterations)
        past = F.linear(self.queue[:, crop], self.prototypes.weight).to(scores.dtype)
        q = sinkhorn(torch.cat([past, scores]), self.epsilon, self.sinkhorn_iterations, shared_rows=past.shape[0])
        return q[past.shape[0] :]

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor) -> None:
        """Writes the global crops' embeddings ``(2, N, D)`` of every rank over the oldest rows."""
        rows = gather_global(z.transpose(0, 1).contiguous())
        ring_write(self.queue.view(self.queue.shape[0], -1), self.queue_pointer, rows.flatten(1), self.queue_filled)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done.fill_(step)


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(SwAV)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe(
        "swav", {"prototypes": 300, "queue_size": 512, "queue_start_step": 20, "freeze_prototypes_steps": 20, "epsilon": 0.01},
        optimizer="lars", lr=0.6, summary="LARS at 0.6 (solo-learn's CIFAR rate), epsilon 0.01 (0.05 collapses on small batches)",
    ))
