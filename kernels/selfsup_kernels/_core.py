"""Row-chunked torch core: the log-sum-exp of every row of ``S = α · Q Cᵀ``, never all of ``S``.

Every loss here is ``ℓ_i = lse_i − pos_i`` with

    lse_i = log( Σ_{j ≠ own(i)} exp(α q_i·c_j)  [+ exp e_i] )

for anchors ``Q`` ``(M, D)``, columns ``C`` ``(K, D)``, ``α = 1/τ``, an optional masked column
``own(i)`` per row (the anchor itself) and an optional extra logit ``e_i`` (MoCo's positive when it
is not among the columns). The positive term is ``O(M·D)`` and left to autograd by the losses; this
module does the ``O(M·K·D)`` part. This is the path on CPU and on any device with
``backend="torch"``. A chunk holds whole rows of ``S`` (``chunk × K`` floats): memory
``O(chunk·K + (M + K)·D)``. Everything runs in float32 (float64 for float64 inputs).

Exponentials are base 2: the rows of ``Q`` are scaled once by ``α·log2(e)``, so a chunk's scores
come out of the matmul in base-2 units and ``exp2`` finishes them in place.

Two shifts before exponentiating:

* ``bounded=True`` (unit-norm inputs): the Cauchy–Schwarz bound ``α·|q_i|·max_j |c_j|`` (``1/τ``
  for normalised inputs) is known before the matmul, so it is folded into it (``addmm``) and no
  row-max pass is needed. A row whose maximum lies far below the bound (possible only for
  τ ≲ 0.03) would lose precision to underflow; such rows are found from their sum and redone with
  their exact maximum.
* ``bounded=False``: the exact row maximum (one more pass over the chunk).

Entry points:

* :func:`lse_rows` / :func:`lse_rows_backward`: one LSE per row; the backward recomputes each
  chunk (used for ``reduction="none"``);
* :func:`lse_weighted_sum`: ``Σ_i w_i lse_i`` with its gradients formed in the same sweep
  (Liger-Kernel's fused-linear-cross-entropy trick): a chunk holds whole rows, so its softmax
  ``P`` is final when the chunk is done, and ``P C`` (its rows of ``dQ``), ``Pᵀ Q_chunk`` (its
  share of ``dC``) and ``Σ_j P_ij q_i·c_j`` (for ``α``) are formed at once. Backward only scales
  them: 3 GEMMs per chunk instead of 4, ``O((M + K)·D)`` stored.

Gradients (``g`` the incoming row weights): ``dq_i = α g_i Σ_j P_ij c_j``,
``dc_j = α Σ_i g_i P_ij q_i``, ``dα = Σ_i g_i Σ_j P_ij q_i·c_j``, ``de_i = g_i P_i,extra``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)
#: A bounded row whose shifted sum falls below 2**_UNDERFLOW_LOG2 is redone with its exact maximum.
#: Above it, every element that carries more than 2**-40 of the row's total is a normal float even
#: for K = 2**20 columns.
_UNDERFLOW_LOG2 = -60.0
#: Default size of one chunk of float32 scores (small enough to stay in cache on CPU) ...
CHUNK_BYTES = 4 * 1024 * 1024
#: ... unless that leaves fewer rows than keep a chunk's GEMMs efficient.
MIN_ROWS = 128


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other dtype is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def chunk_rows(num_rows: int, num_cols: int, requested: int | None = None) -> int:
    """Rows per chunk: ``requested``, or as many as make one chunk of scores ``CHUNK_BYTES``
    (at least ``MIN_ROWS``)."""
    if requested is not None:
        return max(1, requested)
    return int(max(1, min(num_rows, max(MIN_ROWS, CHUNK_BYTES // (4 * max(num_cols, 1))))))


class _Prepared:
    """Inputs converted once: compute-dtype copies, the base-2 scaled rows and the shift bounds."""

    def __init__(self, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, mask: Tensor | None, bounded: bool) -> None:
        self.dtype = dt = compute_dtype(q.dtype)
        self.qf = q.to(dt)
        self.cf = self.qf if c is q else c.to(dt)
        self.alpha = alpha.to(dt)
        self.qs = self.qf * (self.alpha * LOG2E)
        self.extra2 = None if extra is None else extra.to(dt) * LOG2E
        self.mask = mask
        self.bound2: Tensor | None = None
        if bounded:
            bound = torch.linalg.vector_norm(self.qs, dim=1) * torch.linalg.vector_norm(self.cf, dim=1).amax()
            self.bound2 = bound if self.extra2 is None else torch.maximum(bound, self.extra2)

    def masked(self, scores: Tensor, r0: int, r1: int, rows: Tensor | None = None) -> Tensor:
        """``scores`` with each row's own column at -inf (``rows``: a subset of ``r0:r1``)."""
        if self.mask is not None:
            own = self.mask[r0:r1] if rows is None else self.mask[r0:r1].index_select(0, rows)
            scores.scatter_(1, own.unsqueeze(1), float("-inf"))
        return scores

    def extra_part(self, r0: int, r1: int, shift: Tensor, rows: Tensor | None = None) -> Tensor | None:
        """``2**(e_i − shift_i)`` for the rows, or None without extra logits."""
        if self.extra2 is None:
            return None
        e = self.extra2[r0:r1] if rows is None else self.extra2[r0:r1].index_select(0, rows)
        return torch.exp2(e - shift)


def _exact(p: _Prepared, r0: int, r1: int, rows: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(E, m, l)`` for rows ``r0:r1`` (or the subset ``rows``) shifted by their exact maximum."""
    qs = p.qs[r0:r1] if rows is None else p.qs[r0:r1].index_select(0, rows)
    scores = p.masked(torch.mm(qs, p.cf.T), r0, r1, rows)
    m = scores.amax(dim=1)
    if p.extra2 is not None:
        m = torch.maximum(m, p.extra2[r0:r1] if rows is None else p.extra2[r0:r1].index_select(0, rows))
    # a row whose every column is masked keeps a finite shift
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    total = scores.sub_(m.unsqueeze(1)).exp2_().sum(dim=1)
    part = p.extra_part(r0, r1, m, rows)
    return scores, m, total if part is None else total + part


def _chunk_probs(p: _Prepared, r0: int, r1: int) -> tuple[Tensor, Tensor, Tensor]:
    """Unnormalised probabilities ``E_ij = 2**(s_ij − m_i)`` of rows ``r0:r1`` (one buffer, in
    place), their base-2 shift ``m`` and sum ``l`` (extra logit included): ``lse2 = m + log2 l``,
    ``P = E / l``."""
    if p.bound2 is None:
        return _exact(p, r0, r1)
    m = p.bound2[r0:r1]
    scores = p.masked(torch.addmm(m.neg().unsqueeze(1), p.qs[r0:r1], p.cf.T), r0, r1)
    total = scores.exp2_().sum(dim=1)
    part = p.extra_part(r0, r1, m)
    if part is not None:
        total = total + part
    low = total < 2.0**_UNDERFLOW_LOG2
    if bool(low.any()):
        rows = low.nonzero().squeeze(1)
        redo, m_redo, t_redo = _exact(p, r0, r1, rows)
        scores.index_copy_(0, rows, redo)
        m = m.index_copy(0, rows, m_redo)
        total = total.index_copy(0, rows, t_redo)
    return scores, m, total


def lse_rows(q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, mask: Tensor | None, bounded: bool, chunk: int) -> Tensor:
    """``lse`` ``(M,)`` in the compute dtype."""
    p = _Prepared(q, c, alpha, extra, mask, bounded)
    out = torch.empty(q.shape[0], dtype=p.dtype, device=q.device)
    for r0 in range(0, q.shape[0], chunk):
        r1 = min(r0 + chunk, q.shape[0])
        _, m, total = _chunk_probs(p, r0, r1)
        out[r0:r1] = (m + torch.log2(total)) * LN2
    return out


def lse_rows_backward(
    grad: Tensor, lse: Tensor, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, mask: Tensor | None, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``Σ_i grad_i lse_i`` wrt ``(q, c, alpha, extra)`` in the inputs' dtypes
    (``dextra`` empty without ``extra``); each chunk of ``P = 2**(s − lse2)`` is recomputed."""
    p = _Prepared(q, c, alpha, None, mask, bounded=False)
    g = grad.to(p.dtype)
    lse2 = lse.to(p.dtype) * LOG2E
    dq = torch.empty_like(p.qf)
    dc = torch.zeros_like(p.cf)
    dalpha = torch.zeros((), dtype=p.dtype, device=q.device)
    for r0 in range(0, q.shape[0], chunk):
        r1 = min(r0 + chunk, q.shape[0])
        probs = p.masked(torch.addmm(lse2[r0:r1].neg().unsqueeze(1), p.qs[r0:r1], p.cf.T), r0, r1).exp2_()
        pc = torch.mm(probs, p.cf)
        q_c, g_c = p.qf[r0:r1], g[r0:r1]
        dq[r0:r1] = pc * (p.alpha * g_c).unsqueeze(1)
        dalpha += (g_c * (q_c * pc).sum(dim=1)).sum()
        dc.addmm_(probs.T, q_c * (p.alpha * g_c).unsqueeze(1))
    dextra = torch.empty(0, dtype=p.dtype, device=q.device) if extra is None else (g * torch.exp(extra.to(p.dtype) - lse.to(p.dtype))).to(extra.dtype)
    return dq.to(q.dtype), dc.to(c.dtype), dalpha.to(alpha.dtype), dextra


def lse_weighted_sum(
    q: Tensor,
    c: Tensor,
    alpha: Tensor,
    weight: Tensor,
    extra: Tensor | None,
    mask: Tensor | None,
    bounded: bool,
    compute_grad: bool,
    chunk: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(Σ_i weight_i lse_i, gq, gc, galpha, gextra)`` in the compute dtype; the gradients are
    formed in the same sweep when ``compute_grad`` and are empty tensors otherwise (``gextra`` also
    without ``extra``)."""
    p = _Prepared(q, c, alpha, extra, mask, bounded)
    dt, device, num_rows = p.dtype, q.device, q.shape[0]
    w = weight.to(dt)
    empty = torch.empty(0, dtype=dt, device=device)
    loss = torch.zeros((), dtype=dt, device=device)
    gq = torch.empty_like(p.qf) if compute_grad else empty
    gc = torch.zeros_like(p.cf) if compute_grad else empty
    galpha = torch.zeros((), dtype=dt, device=device) if compute_grad else empty
    gextra = torch.empty(num_rows, dtype=dt, device=device) if compute_grad and extra is not None else empty
    for r0 in range(0, num_rows, chunk):
        r1 = min(r0 + chunk, num_rows)
        probs, m, total = _chunk_probs(p, r0, r1)
        w_c = w[r0:r1]
        loss += (w_c * (m + torch.log2(total))).sum() * LN2
        if not compute_grad:
            continue
        inv_total = total.reciprocal()
        q_c = p.qf[r0:r1]
        pc = torch.mm(probs, p.cf).mul_(inv_total.unsqueeze(1))
        gq[r0:r1] = pc * (p.alpha * w_c).unsqueeze(1)
        galpha += (w_c * (q_c * pc).sum(dim=1)).sum()
        gc.addmm_(probs.T, q_c * (p.alpha * w_c * inv_total).unsqueeze(1))
        part = p.extra_part(r0, r1, m)
        if part is not None:
            gextra[r0:r1] = w_c * part * inv_total
    return loss, gq, gc, galpha, gextra
