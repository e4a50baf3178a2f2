"""Supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning",
arXiv:2004.11362, eq. 2, L_out):

    ℓ_i = −(1/|P(i)|) Σ_{p ∈ P(i)} log  exp(z_i·z_p/τ) / Σ_{a ≠ i} exp(z_i·z_a/τ)

over all N·V views ``z`` ``(N, V, D)``; P(i) are the other views with the anchor's label
(``labels`` ``(N,)`` int). Anchors without any positive (a label seen once, V = 1) are left out of
the mean. With one view pair and distinct labels it is NT-Xent. Returns a scalar or ``(N·V,)``
(view-major: all first views, then all second views, …).

The positive term needs no N×N matrix: ``Σ_{p ∈ P(i)} z_i·z_p = z_i·(Σ_{y_j = y_i} z_j − z_i)``, with
per-label sums of the columns. Backends as for NT-Xent. With ``reduction="none"`` anchors without
a positive get 0.

``gather=True`` all-gathers ``z`` (with gradient) and the labels; the local anchors are contrasted
with every rank's views and the loss is their mean (DDP averaging = one process).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from selfsup_kernels import _core, _ops, _validate, distributed, reference
from selfsup_kernels._autocast import outside_autocast
from selfsup_kernels._module import ContrastiveLossModule


@outside_autocast("z")
def sup_con(
    z: torch.Tensor,
    labels: torch.Tensor,
    temperature: float | torch.Tensor = 0.1,
    *,
    normalize: bool = True,
    reduction: str = "mean",
    gather: bool = False,
    backend: str = "auto",
    chunk: int | None = None,
) -> torch.Tensor:
    """SupCon over views ``z (N, V, D)`` with class ``labels (N,)``.

    Raises:
        TypeError / ValueError: as :func:`selfsup_kernels.nt_xent`; ``labels`` not an integer
            tensor of shape ``(N,)``; no anchor with a positive.

    Example:
        >>> import torch
        >>> from selfsup_kernels import sup_con
        >>> z, y = torch.randn(6, 2, 16), torch.tensor([0, 1, 0, 2, 1, 2])
        >>> float(sup_con(z, y)) > 0
        True
    """
    _validate.check_embeddings(z, "z", ndim=3)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels: expected an integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (z.shape[0],):
        raise ValueError(f"labels: expected shape ({z.shape[0]},), one per sample, got {tuple(labels.shape)}")
    if labels.device != z.device:
        raise ValueError(f"labels: on {labels.device}, but z is on {z.device}")
    _validate.check_options(reduction, backend)
    tau, tau_value = _validate.temperature(temperature, z)
    if normalize:
        z = F.normalize(z, dim=2)
    if backend == "reference":
        if gather:
            raise ValueError("backend: 'reference' does not gather; use backend='torch'")
        per_anchor = reference.sup_con(z, labels, tau, normalize=False)
        y = labels.repeat(z.shape[1])
        has_positive = (y.unsqueeze(0) == y.unsqueeze(1)).sum(1) > 1
        return _reduce_with_positives(per_anchor, has_positive, reduction)
    backend = _ops.resolve_backend(backend, z)
    n, v, _ = z.shape
    views = torch.cat(torch.unbind(z, dim=1))
    all_z, offset = distributed.gather(z) if gather else (z, 0)
    all_labels = distributed.gather_labels(labels) if gather else labels
    total = all_z.shape[0]
    columns = torch.cat(torch.unbind(all_z, dim=1)) if gather else views
    local = torch.arange(n, device=z.device) + offset
    own = torch.cat([local + view * total for view in range(v)])
    alpha = 1.0 / tau
    positive, has_positive = _positive_term(views, columns, labels.repeat(v), all_labels.repeat(v), own)
    if not torch.compiler.is_compiling() and not bool(has_positive.any()):
        raise ValueError("labels: no anchor has a positive (every label appears once and V = 1)")
    alpha_value = None if tau_value is None else 1.0 / tau_value
    weights = None if reduction == "none" else _validate.row_weights(reduction, n * v, keep=has_positive)
    out = _ops.contrast(
        views, columns, alpha, alpha * positive, weights=weights, own=own, backend=backend, unit_norm=normalize, alpha_value=alpha_value, chunk=chunk
    )
    return torch.where(has_positive, out, torch.zeros_like(out)) if weights is None else out


def _positive_term(
    rows: torch.Tensor, columns: torch.Tensor, row_labels: torch.Tensor, col_labels: torch.Tensor, own: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean_{p ∈ P(i)} z_i·c_p, |P(i)| > 0)`` per anchor, from per-label sums of the columns
    (float32, float64 for float64 inputs; differentiable); 0 where an anchor has no positive."""
    values, inverse = torch.unique(torch.cat([row_labels, col_labels]), return_inverse=True)
    row_class, col_class = inverse[: rows.shape[0]], inverse[rows.shape[0] :]
    dt = _core.compute_dtype(columns.dtype)
    cols = columns.to(dt)
    sums = torch.zeros(values.shape[0], cols.shape[1], device=cols.device, dtype=dt).index_add(0, col_class, cols)
    count = torch.bincount(col_class, minlength=values.shape[0])[row_class] - 1
    others = sums[row_class] - cols[own]
    return (rows.to(dt) * others).sum(1) / count.clamp_min(1), count > 0


def _reduce_with_positives(losses: torch.Tensor, has_positive: torch.Tensor, reduction: str) -> torch.Tensor:
    if not bool(has_positive.any()):
        raise ValueError("labels: no anchor has a positive (every label appears once and V = 1)")
    kept = torch.where(has_positive, losses, torch.zeros_like(losses))
    if reduction == "mean":
        return kept.sum() / has_positive.sum()
    return _validate.reduce(kept, reduction)


class SupConLoss(ContrastiveLossModule):
    """Module form of :func:`sup_con`: ``SupConLoss(temperature=0.1, **options)(z, labels)``."""

    def __init__(self, temperature: float = 0.1, **options: Any) -> None:
        super().__init__(temperature, **options)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return sup_con(z, labels, self.temperature, **self.options)
