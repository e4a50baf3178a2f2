"""InfoNCE (van den Oord, Li & Vinyals 2018, "Representation Learning with Contrastive
Predictive Coding", arXiv:1807.03748, eq. 4), as used by InstDisc, MoCo (He et al. 2019,
arXiv:1911.05722, eq. 1) and CPC:

    ℓ_i = −log  exp(q_i·k_i/τ) / ( exp(q_i·k_i/τ) + Σ_{n ∈ N(i)} exp(q_i·n/τ) )

The negatives N(i) are a queue or memory bank ``negatives`` ``(K, D)`` shared by all queries
(MoCo: ``batch_negatives=False``), and/or the other in-batch keys (``batch_negatives=True``, the
default when no ``negatives`` are given: CPC, SimCLR-style). Shapes: ``q``, ``k`` ``(N, D)``;
returns a scalar or ``(N,)``. Memory O((N + K)·D + chunk·(N + K)). Backends as for NT-Xent.

``gather=True`` all-gathers the keys ``k`` (with gradient) when they serve as in-batch negatives;
queries stay local and the loss is their mean, so DDP's averaging equals one process on the global
batch. A queue is never gathered: the caller shares it (MoCo enqueues gathered keys).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from selfsup_kernels import _core, _ops, _validate, distributed, reference
from selfsup_kernels._autocast import outside_autocast
from selfsup_kernels._module import ContrastiveLossModule


@outside_autocast("q", "k", "negatives")
def info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 0.07,
    *,
    batch_negatives: bool | None = None,
    normalize: bool = True,
    reduction: str = "mean",
    gather: bool = False,
    backend: str = "auto",
    chunk: int | None = None,
) -> torch.Tensor:
    """InfoNCE of queries against their positive keys and the negatives.

    Raises:
        TypeError / ValueError: as :func:`selfsup_kernels.nt_xent`; ``negatives`` missing when
            ``batch_negatives=False``.

    Example:
        >>> import torch
        >>> from selfsup_kernels import info_nce
        >>> q, k, queue = torch.randn(4, 8), torch.randn(4, 8), torch.randn(32, 8)
        >>> info_nce(q, k, queue).shape
        torch.Size([])
    """
    _validate.check_embeddings(q, "q")
    _validate.check_embeddings(k, "k")
    _validate.check_same(q, k, "q", "k")
    if negatives is not None:
        _validate.check_embeddings(negatives, "negatives")
        _validate.check_same(q, negatives, "q", "negatives", shape=False)
    _validate.check_options(reduction, backend)
    in_batch = negatives is None if batch_negatives is None else batch_negatives
    if not in_batch and negatives is None:
        raise ValueError("negatives: required when batch_negatives=False (a queue or memory bank (K, D))")
    tau, tau_value = _validate.temperature(temperature, q)
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        negatives = None if negatives is None else F.normalize(negatives, dim=1)
    if backend == "reference":
        if gather:
            raise ValueError("backend: 'reference' does not gather; use backend='torch'")
        return _validate.reduce(reference.info_nce(q, k, negatives, tau, normalize=False, batch_negatives=in_batch), reduction)
    backend = _ops.resolve_backend(backend, q)
    alpha = 1.0 / tau
    dt = _core.compute_dtype(q.dtype)
    positive = alpha * (q.to(dt) * k.to(dt)).sum(1)
    if in_batch:
        keys = distributed.gather(k)[0] if gather else k
        columns, extra = (keys if negatives is None else torch.cat([keys, negatives])), None
    else:
        assert negatives is not None
        columns, extra = negatives, positive
    return _ops.contrast(
        q, columns, alpha, positive, weights=_validate.row_weights(reduction, q.shape[0], device=q.device), extra=extra,
        backend=backend, unit_norm=normalize, alpha_value=None if tau_value is None else 1.0 / tau_value, chunk=chunk,
    )  # fmt: skip


class InfoNCELoss(ContrastiveLossModule):
    """Module form of :func:`info_nce`: ``InfoNCELoss(temperature=0.07, **options)(q, k, negatives=None)``."""

    def __init__(self, temperature: float = 0.07, **options: Any) -> None:
        super().__init__(temperature, **options)

    def forward(self, q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor | None = None) -> torch.Tensor:
        return info_nce(q, k, negatives, self.temperature, **self.options)
