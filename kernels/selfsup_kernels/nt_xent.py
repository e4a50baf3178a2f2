"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen, Kornblith, Norouzi &
Hinton 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
arXiv:2002.05709, eq. 1).

For 2N views ``z = [z1; z2]`` (L2-normalised), anchor i with partner p(i) = i ± N:

    ℓ_i = −log  exp(z_i·z_p(i)/τ) / Σ_{j≠i} exp(z_i·z_j/τ),      L = (1/2N) Σ_i ℓ_i

Shapes: ``z1``, ``z2`` ``(N, D)``; returns a scalar (``mean``/``sum``) or ``(2N,)`` (``none``,
anchors ``z1`` first). Memory O(N·D + chunk·N): the 2N×2N logits are never formed. Backends:
``triton`` (fused kernels, the ``auto`` choice on CUDA), ``torch`` (row chunks), ``reference``
(naive, no ``gather``).

With ``gather=True`` inside ``torch.distributed``, every rank's anchors (its ``z1``, ``z2``) are
contrasted with the views of *all* ranks (all-gathered with gradient); the loss is the mean over
the local anchors, so under DDP's gradient averaging training equals one process on the global
batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from selfsup_kernels import _core, _ops, _validate, distributed, reference
from selfsup_kernels._autocast import outside_autocast
from selfsup_kernels._module import ContrastiveLossModule


@outside_autocast("z1", "z2")
def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float | torch.Tensor = 0.1,
    *,
    normalize: bool = True,
    reduction: str = "mean",
    gather: bool = False,
    backend: str = "auto",
    chunk: int | None = None,
) -> torch.Tensor:
    """SimCLR's NT-Xent loss of two batches of views.

    Raises:
        TypeError: non-tensors, integer tensors, mismatched dtypes.
        ValueError: mismatched shapes or devices, an empty batch, D = 0, NaN/inf, τ ≤ 0, unknown
            reduction or backend; ``backend="triton"`` without triton, or on tensors that are not
            on CUDA (unless ``TRITON_INTERPRET=1``).

    Example:
        >>> import torch
        >>> from selfsup_kernels import nt_xent
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> float(nt_xent(z1, z2, 0.5)) > 0
        True
    """
    _validate.check_embeddings(z1, "z1")
    _validate.check_embeddings(z2, "z2")
    _validate.check_same(z1, z2, "z1", "z2")
    _validate.check_options(reduction, backend)
    tau, tau_value = _validate.temperature(temperature, z1)
    if normalize:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    if backend == "reference":
        if gather:
            raise ValueError("backend: 'reference' does not gather; use backend='torch'")
        return _validate.reduce(reference.nt_xent(z1, z2, tau, normalize=False), reduction)
    backend = _ops.resolve_backend(backend, z1)
    n = z1.shape[0]
    anchors = torch.cat([z1, z2])
    if gather:
        all1, offset = distributed.gather(z1)
        all2, _ = distributed.gather(z2)
        total, columns = all1.shape[0], torch.cat([all1, all2])
    else:
        offset, total, columns = 0, n, anchors
    local = torch.arange(n, device=z1.device) + offset
    own = torch.cat([local, local + total])
    alpha = 1.0 / tau
    dt = _core.compute_dtype(anchors.dtype)
    positive = alpha * (anchors.to(dt) * torch.cat([z2, z1]).to(dt)).sum(1)
    weights = _validate.row_weights(reduction, 2 * n, device=z1.device)
    return _ops.contrast(
        anchors, columns, alpha, positive, weights=weights, own=own, backend=backend, unit_norm=normalize,
        alpha_value=None if tau_value is None else 1.0 / tau_value, chunk=chunk,
    )  # fmt: skip


class NTXentLoss(ContrastiveLossModule):
    """Module form of :func:`nt_xent`: ``NTXentLoss(temperature=0.1, **options)(z1, z2)``."""

    def __init__(self, temperature: float = 0.1, **options: Any) -> None:
        super().__init__(temperature, **options)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent(z1, z2, self.temperature, **self.options)
