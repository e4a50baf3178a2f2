"""The one computation behind every loss here: a row-wise softmax cross-entropy over similarity
logits, evaluated in row chunks so the ``M × K`` logits never exist at once.

For anchors ``q_i`` (``Q``: ``(M, D)``), columns ``k_j`` (``K``: ``(K, D)``) and ``s = 1/τ``:

    S_ij = s · q_i·k_j,      j ∉ masked(i)
    ℓ_i  = log( Σ_j exp S_ij  [+ exp e_i] )  −  mean_{p ∈ P(i)} S_ip   [or − e_i]

where ``masked(i)`` is at most one column (the anchor itself, for NT-Xent and SupCon), ``P(i)`` is
one positive column (``pos_index``) or all columns with the anchor's label (``labels``), and the
optional extra logit ``e_i`` (MoCo's ``q_i·k_i⁺/τ`` when the positive is not among the columns) is
then the positive. Forward keeps one log-sum-exp per row; backward recomputes each chunk of S
(FlashAttention-style) with ``∂ℓ_i/∂S_ij = softmax_ij − w_ij`` (``w`` the positive weights).
Memory: ``O(chunk · K)`` on top of the inputs.
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
        has_extra: bool,
    ) -> None:
        self.pos_index, self.row_labels, self.col_labels = pos_index, row_labels, col_labels
        self.mask_index, self.has_extra = mask_index, has_extra

    def positive_weights(self, rows: slice, columns: int, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(W, counts)``: ``W`` the chunk's positive weights ``(c, K)`` summing to 1 per row
        (``None`` when the extra logit is the positive), counts ``(c,)``."""
        if self.has_extra:
            n = rows.stop - rows.start
            return None, torch.ones(n, device=device)
        if self.pos_index is not None:
            idx = self.pos_index[rows]
            w = torch.zeros(idx.shape[0], columns, device=device)
            w.scatter_(1, idx.unsqueeze(1), 1.0)
            return w, torch.ones(idx.shape[0], device=device)
        assert self.row_labels is not None and self.col_labels is not None
        w = (self.row_labels[rows].unsqueeze(1) == self.col_labels.unsqueeze(0)).float()
        if self.mask_index is not None:
            w.scatter_(1, self.mask_index[rows].unsqueeze(1), 0.0)
        counts = w.sum(1)
        return w / counts.clamp_min(1.0).unsqueeze(1), counts

    def mask(self, logits: torch.Tensor, rows: slice) -> None:
        if self.mask_index is not None:
            logits.scatter_(1, self.mask_index[rows].unsqueeze(1), float("-inf"))


def _chunk_logits(q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, rows: slice, spec: _Spec) -> torch.Tensor:
    logits = (q[rows] @ k.T).mul_(scale)
    spec.mask(logits, rows)
    return logits


class ChunkedContrastive(torch.autograd.Function):
    """Per-row losses ``ℓ`` ``(M,)``; inputs: ``q (M, D)``, ``k (K, D)`` float32, ``scale`` 0-dim,
    ``extra`` ``(M,)`` or None; the positive/mask specification; the chunk size."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        scale: torch.Tensor,
        extra: torch.Tensor | None,
        pos_index: torch.Tensor | None,
        row_labels: torch.Tensor | None,
        col_labels: torch.Tensor | None,
        mask_index: torch.Tensor | None,
        chunk: int,
    ) -> torch.Tensor:
        spec = _Spec(pos_index, row_labels, col_labels, mask_index, extra is not None)
        m = q.shape[0]
        lse = torch.empty(m, device=q.device)
        losses = torch.empty(m, device=q.device)
        with torch.no_grad():
            for start in range(0, m, chunk):
                rows = slice(start, min(m, start + chunk))
                logits = _chunk_logits(q, k, scale, rows, spec)
                if extra is not None:
                    row_lse = torch.logaddexp(torch.logsumexp(logits, dim=1), extra[rows])
                    positive = extra[rows]
                else:
                    row_lse = torch.logsumexp(logits, dim=1)
                    w, _ = spec.positive_weights(rows, k.shape[0], q.device)
                    assert w is not None
                    positive = (torch.where(w > 0, logits, torch.zeros_like(logits)) * w).sum(1)
                lse[rows] = row_lse
                losses[rows] = row_lse - positive
        ctx.save_for_backward(q, k, scale, lse, extra, pos_index, row_labels, col_labels, mask_index)
        ctx.chunk = chunk
        return losses

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        q, k, scale, lse, extra, pos_index, row_labels, col_labels, mask_index = ctx.saved_tensors
        spec = _Spec(pos_index, row_labels, col_labels, mask_index, extra is not None)
        need_q, need_k, need_scale, need_extra = ctx.needs_input_grad[:4]
        dq = torch.zeros_like(q) if need_q else None
        dk = torch.zeros_like(k) if need_k else None
        dscale = torch.zeros((), device=q.device)
        dextra = torch.zeros_like(extra) if (extra is not None and need_extra) else None
        m = q.shape[0]
        for start in range(0, m, ctx.chunk):
            rows = slice(start, min(m, start + ctx.chunk))
            logits = _chunk_logits(q, k, scale, rows, spec)
            g = grad[rows].unsqueeze(1)
            finite = torch.nan_to_num(logits, neginf=0.0) if need_scale else None
            # dℓ/dS = softmax − positive weights, scaled by the incoming row gradient
            d_logits = torch.exp_(logits.sub_(lse[rows].unsqueeze(1)))
            if extra is not None:
                if dextra is not None:
                    dextra[rows] = grad[rows] * (torch.exp(extra[rows] - lse[rows]) - 1.0)
            else:
                w, _ = spec.positive_weights(rows, k.shape[0], q.device)
                assert w is not None
                d_logits.sub_(w)
            d_logits.mul_(g)
            if finite is not None:
                # S = s·(q·k), so ∂ℓ/∂s = Σ_j (∂ℓ/∂S_ij)·S_ij / s
                dscale += (d_logits * finite).sum() / scale
            d_logits.mul_(scale)
            if dq is not None:
                dq[rows] = d_logits @ k
            if dk is not None:
                dk.addmm_(d_logits.T, q[rows])
        return dq, dk, (dscale if need_scale else None), dextra, None, None, None, None, None


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
    chunk: int | None = None,
) -> torch.Tensor:
    """Per-row losses ``(M,)`` in float32 (see the module docstring)."""
    rows = chunk_rows(k.shape[0], chunk)
    out: torch.Tensor = ChunkedContrastive.apply(
        q.float(), k.float(), scale.float(), None if extra is None else extra.float(), pos_index, row_labels, col_labels, mask_index, rows
    )
    return out
