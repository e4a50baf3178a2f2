"""The one computation behind every loss here: a row-wise softmax cross-entropy over similarity
logits, evaluated in row chunks so the ``M × K`` logits never exist at once.

For anchors ``q_i`` (``Q``: ``(M, D)``), columns ``k_j`` (``K``: ``(K, D)``) and ``s = 1/τ``:

    S_ij = s · q_i·k_j,      j ∉ masked(i)
    ℓ_i  = log( Σ_j exp S_ij  [+ exp e_i] )  −  mean_{p ∈ P(i)} S_ip   [or − e_i]

where ``masked(i)`` is at most one column (the anchor itself, for NT-Xent and SupCon), ``P(i)`` is
one positive column (``pos_index``) or all columns with the anchor's label (``labels``), and the
optional extra logit ``e_i`` (MoCo's ``q_i·k_i⁺/τ`` when the positive is not among the columns) is
then the positive. With ``∂ℓ_i/∂S_ij = softmax_ij − w_ij`` (``w`` the positive weights):

- a *scalar* loss ``Σ_i ρ_i ℓ_i`` (mean, sum) forms its input gradients in the same sweep as the
  forward, because a chunk holds whole rows: ``dQ`` rows and the chunk's share of ``dK`` are two
  GEMMs on the softmax it already has; backward only scales them (3 GEMMs in all, no recompute);
- per-row losses (``reduction="none"``) keep nothing but the inputs and recompute each chunk in
  backward with the incoming row gradients (FlashAttention-style).

Memory: ``O(chunk · K)`` plus ``O((M + K)·D)`` for the gradients.
"""

from __future__ import annotations

from typing import Any

import torch

CHUNK_ELEMENTS = 1 << 22
"""Logits held at once (16 MiB in float32)."""


def chunk_rows(columns: int, requested: int | None) -> int:
    if requested is not None:
        return max(1, requested)
    return max(16, CHUNK_ELEMENTS // max(1, columns))


class _Spec:
    """What the positives and masked columns of each row are."""

    def __init__(
        self,
        pos_index: torch.Tensor | None,
        row_labels: torch.Tensor | None,
        col_labels: torch.Tensor | None,
        mask_index: torch.Tensor | None,
    ) -> None:
        self.pos_index, self.row_labels, self.col_labels, self.mask_index = pos_index, row_labels, col_labels, mask_index

    def label_weights(self, rows: slice) -> torch.Tensor:
        """Positive weights ``(c, K)`` of a chunk for label positives, each row summing to 1
        (0 where the anchor has no positive)."""
        assert self.row_labels is not None and self.col_labels is not None
        w = (self.row_labels[rows].unsqueeze(1) == self.col_labels.unsqueeze(0)).float()
        if self.mask_index is not None:
            w.scatter_(1, self.mask_index[rows].unsqueeze(1), 0.0)
        return w.div_(w.sum(1, keepdim=True).clamp_min(1.0))


def _sweep(
    q: torch.Tensor,
    k: torch.Tensor,
    scale: torch.Tensor,
    extra: torch.Tensor | None,
    spec: _Spec,
    chunk: int,
    row_grad: torch.Tensor | None,
    need: tuple[bool, bool, bool, bool],
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """Per-row losses, and when ``row_grad`` is given the gradients of ``Σ_i row_grad_i ℓ_i``
    with respect to ``(q, k, scale, extra)`` (those flagged in ``need``)."""
    m = q.shape[0]
    losses = torch.empty(m, device=q.device)
    grads = row_grad is not None
    dq = torch.zeros_like(q) if grads and need[0] else None
    dk = torch.zeros_like(k) if grads and need[1] else None
    dscale = torch.zeros((), device=q.device) if grads and need[2] else None
    dextra = torch.zeros_like(extra) if grads and extra is not None and need[3] else None
    scaled_q = q * scale
    for start in range(0, m, chunk):
        rows = slice(start, min(m, start + chunk))
        logits = scaled_q[rows] @ k.T
        if spec.mask_index is not None:
            logits.scatter_(1, spec.mask_index[rows].unsqueeze(1), float("-inf"))
        top = logits.max(dim=1, keepdim=True).values
        if extra is not None:
            top = torch.maximum(top, extra[rows].unsqueeze(1))
        if spec.pos_index is not None:
            positive = logits.gather(1, spec.pos_index[rows].unsqueeze(1)).squeeze(1)
        elif extra is not None:
            positive = extra[rows]
        else:
            weights = spec.label_weights(rows)
            positive = (torch.nan_to_num(logits, neginf=0.0) * weights).sum(1)
        finite = torch.nan_to_num(logits, neginf=0.0) if dscale is not None else None
        probs = torch.exp_(logits.sub_(top))
        total = probs.sum(1)
        if extra is not None:
            extra_prob = torch.exp(extra[rows] - top.squeeze(1))
            total = total + extra_prob
        lse = top.squeeze(1) + total.log()
        losses[rows] = lse - positive
        if row_grad is None:
            continue
        g = row_grad[rows]
        # ∂/∂S = g·(softmax − w): scale the exponentials by g/Z, then take the positives off
        d_logits = probs.mul_((g / total).unsqueeze(1))
        if spec.pos_index is not None:
            d_logits.scatter_add_(1, spec.pos_index[rows].unsqueeze(1), -g.unsqueeze(1))
        elif extra is None:
            d_logits.sub_(weights.mul_(g.unsqueeze(1)))
        if dextra is not None:
            dextra[rows] = g * (extra_prob / total - 1.0)
        if dscale is not None and finite is not None:
            # S = s·(q·k): ∂/∂s = Σ (∂/∂S)·S / s
            dscale += (d_logits * finite).sum() / scale
        if dq is not None:
            dq[rows] = (d_logits @ k).mul_(scale)
        if dk is not None:
            dk.addmm_(d_logits.T, scaled_q[rows])
    return losses, [dq, dk, dscale, dextra]


class _PerRow(torch.autograd.Function):
    """Per-row losses; backward recomputes each chunk with the incoming row gradients."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, extra: torch.Tensor | None, spec: _Spec, chunk: int) -> torch.Tensor:  # type: ignore[override]
        losses, _ = _sweep(q, k, scale, extra, spec, chunk, None, (False,) * 4)
        ctx.save_for_backward(q, k, scale, extra)
        ctx.spec, ctx.chunk = spec, chunk
        return losses

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        q, k, scale, extra = ctx.saved_tensors
        _, (dq, dk, dscale, dextra) = _sweep(q, k, scale, extra, ctx.spec, ctx.chunk, grad.float(), tuple(ctx.needs_input_grad[:4]))
        return dq, dk, dscale, dextra, None, None


class _WeightedSum(torch.autograd.Function):
    """``Σ_i ρ_i ℓ_i``; the input gradients are formed during the forward sweep."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, extra: torch.Tensor | None, spec: _Spec, chunk: int, rho: torch.Tensor
    ) -> torch.Tensor:
        need = tuple(ctx.needs_input_grad[:4])
        losses, grads = _sweep(q, k, scale, extra, spec, chunk, rho if any(need) else None, need)  # type: ignore[arg-type]
        ctx.grads = grads
        return (losses * rho).sum()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        scaled = [None if g is None else g * grad for g in ctx.grads]
        ctx.grads = None
        return scaled[0], scaled[1], scaled[2], scaled[3], None, None, None


def chunked_losses(
    q: torch.Tensor,
    k: torch.Tensor,
    scale: torch.Tensor,
    *,
    extra: torch.Tensor | None = None,
    pos_index: torch.Tensor | None = None,
    row_labels: torch.Tensor | None = None,
    col_labels: torch.Tensor | None = None,
    mask_index: torch.Tensor | None = None,
    row_weights: torch.Tensor | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Per-row losses ``(M,)`` in float32, or ``Σ_i row_weights_i ℓ_i`` when ``row_weights`` is
    given (the fused path; see the module docstring)."""
    rows = chunk_rows(k.shape[0], chunk)
    spec = _Spec(pos_index, row_labels, col_labels, mask_index)
    args = (q.float(), k.float(), scale.float(), None if extra is None else extra.float(), spec, rows)
    if row_weights is not None:
        total: torch.Tensor = _WeightedSum.apply(*args, row_weights.float())
        return total
    out: torch.Tensor = _PerRow.apply(*args)
    return out
