# Triton's DSL functions take untyped, compile-time-specialised arguments.
# mypy: disable-error-code="untyped-decorator,no-untyped-def"
"""Triton kernels: the row log-sum-exp of ``S = α · Q Cᵀ`` and its gradients, tile by tile.

Row ``i`` of ``Q`` (an anchor) is scored against every row ``j`` of ``C`` (the columns), without
its own column ``OWN[i]`` when given, and with one extra logit ``EXTRA[i]`` when given. Nothing of
size ``M × K`` is stored: the forward keeps a running maximum and sum per row and writes one
log-sum-exp per row; the backward recomputes the tiles of ``S`` twice, once per block of rows
(``dQ`` and the per-row terms of ``dα``) and once per block of columns (``dC``), as
FlashAttention-2 does, so every output element is written by exactly one program: no atomics,
the same bits on every run.

Accumulation is float32; ``tl.dot`` takes float32 (IEEE unless TF32 is asked for), bfloat16 or
float16 tiles. Exponentials are base 2 (scores times ``α·log2 e``). Any ``M``, ``K``, ``D`` and
strides work through masked loads; tiles are powers of two, at least 16 wide.

When ``D`` fits one tile (``NUM_D == 1``) a program loads its own block of rows once and reuses it
for every column tile; when the gradient's ``D`` slice is that same tile (``SHARED``), the loaded
column tile serves both the score and the gradient product.
"""

from __future__ import annotations

import triton
import triton.language as tl

# globals a kernel reads must be constexpr (the compiler rejects others; the interpreter does not)
LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)
#: Finite initial running maximum: a fully masked tile then gives exp2(-inf - m) = 0, never nan.
NEG_BIG = tl.constexpr(-1.0e30)


@triton.jit
def _tile(
    A, B, rows, cols, D, stride_ar, stride_ad, stride_br, stride_bd, row_ok, col_ok,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr, NUM_D: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """``A[rows] · B[cols]ᵀ`` as a float32 ``(BLOCK_R, BLOCK_C)`` tile, ``D`` in ``NUM_D`` slices."""
    acc = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float32)
    for dd in range(NUM_D):  # a loop, not unrolled: unrolled slices spill registers at large D
        offs_d = dd * BLOCK_D + tl.arange(0, BLOCK_D)
        d_ok = offs_d < D
        a = tl.load(A + rows[:, None] * stride_ar + offs_d[None, :] * stride_ad, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
        b = tl.load(B + cols[:, None] * stride_br + offs_d[None, :] * stride_bd, mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        acc = tl.dot(a, tl.trans(b), acc, input_precision=PRECISION)
    return acc


@triton.jit
def lse_fwd_kernel(
    Q, C, ALPHA, EXTRA, OWN, LSE,
    M, K, D, stride_qm, stride_qd, stride_cm, stride_cd,
    HAS_EXTRA: tl.constexpr, HAS_OWN: tl.constexpr, FIXED_MAX: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, NUM_D: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """One program per block of rows: an online log-sum-exp over all column tiles.

    With ``FIXED_MAX`` (unit-norm rows and ``α ≤ 40``) no score exceeds ``α``, so ``α`` is the
    shift from the start and no tile is ever rescaled (and ``2**(-2α log2 e)`` is still a normal
    float); otherwise the running maximum is updated tile by tile.
    """
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    scale = tl.load(ALPHA).to(tl.float32) * LOG2E
    if HAS_OWN:
        own = tl.load(OWN + rows, mask=row_ok, other=-1)
    if FIXED_MAX:
        m_i = tl.zeros([BLOCK_M], dtype=tl.float32) + scale
    else:
        m_i = tl.zeros([BLOCK_M], dtype=tl.float32) + NEG_BIG
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    if HAS_EXTRA:
        e = tl.load(EXTRA + rows, mask=row_ok, other=0.0).to(tl.float32) * LOG2E
        m_i = tl.maximum(m_i, e)
        l_i = tl.exp2(e - m_i)
    if NUM_D == 1:
        offs_d = tl.arange(0, BLOCK_D)
        d_ok = offs_d < D
        q = tl.load(Q + rows[:, None] * stride_qm + offs_d[None, :] * stride_qd, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    for start_n in range(0, K, BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        col_ok = cols < K
        if NUM_D == 1:
            c = tl.load(C + cols[:, None] * stride_cm + offs_d[None, :] * stride_cd, mask=col_ok[:, None] & d_ok[None, :], other=0.0)
            s = tl.dot(q, tl.trans(c), input_precision=PRECISION)
        else:
            s = _tile(Q, C, rows, cols, D, stride_qm, stride_qd, stride_cm, stride_cd, row_ok, col_ok, BLOCK_M, BLOCK_N, BLOCK_D, NUM_D, PRECISION)
        # rows past M keep finite sums (their q is 0); only their store is masked
        invalid = (cols >= K)[None, :]
        if HAS_OWN:
            invalid = invalid | (own[:, None] == cols[None, :])
        s = tl.where(invalid, float("-inf"), s * scale)
        if FIXED_MAX:
            l_i = l_i + tl.sum(tl.exp2(s - m_i[:, None]), axis=1)
        else:
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            l_i = l_i * tl.exp2(m_i - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), axis=1)
            m_i = m_new
    tl.store(LSE + rows, (m_i + tl.log2(l_i)) * LN2, mask=row_ok)


@triton.jit
def lse_bwd_dq_kernel(
    Q, C, ALPHA, LSE, G, OWN, DQ, WA,
    M, K, D, stride_qm, stride_qd, stride_cm, stride_cd, stride_dqm, stride_dqd,
    HAS_OWN: tl.constexpr, SHARED: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, NUM_D: tl.constexpr,
    BLOCK_DV: tl.constexpr, PRECISION: tl.constexpr,
):
    """Grid (row blocks, D slices): ``dQ[i, v] = α g_i Σ_j P_ij C[j, v]`` with
    ``P_ij = 2**(s_ij − lse2_i)`` recomputed; also ``WA[v, i] = g_i Σ_j P_ij (q_i·c_j over the
    slice v)``, whose total is ``dα``."""
    pid_m = tl.program_id(0)
    pid_v = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    v_ok = offs_v < D
    alpha = tl.load(ALPHA).to(tl.float32)
    scale = alpha * LOG2E
    lse2 = tl.load(LSE + rows, mask=row_ok, other=0.0) * LOG2E
    g = tl.load(G + rows, mask=row_ok, other=0.0)
    if HAS_OWN:
        own = tl.load(OWN + rows, mask=row_ok, other=-1)
    qv = tl.load(Q + rows[:, None] * stride_qm + offs_v[None, :] * stride_qd, mask=row_ok[:, None] & v_ok[None, :], other=0.0)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=tl.float32)
    for start_n in range(0, K, BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        col_ok = cols < K
        cv = tl.load(C + cols[:, None] * stride_cm + offs_v[None, :] * stride_cd, mask=col_ok[:, None] & v_ok[None, :], other=0.0)
        if SHARED:
            s = tl.dot(qv, tl.trans(cv), input_precision=PRECISION)
        else:
            s = _tile(Q, C, rows, cols, D, stride_qm, stride_qd, stride_cm, stride_cd, row_ok, col_ok, BLOCK_M, BLOCK_N, BLOCK_D, NUM_D, PRECISION)
        invalid = (cols >= K)[None, :] | (rows >= M)[:, None]
        if HAS_OWN:
            invalid = invalid | (own[:, None] == cols[None, :])
        p = tl.where(invalid, 0.0, tl.exp2(s * scale - lse2[:, None]))
        acc = tl.dot(p.to(cv.dtype), cv, acc, input_precision=PRECISION)
    tl.store(WA + pid_v * M + rows, g * tl.sum(qv.to(tl.float32) * acc, axis=1), mask=row_ok)
    dq = acc * (alpha * g)[:, None]
    tl.store(DQ + rows[:, None] * stride_dqm + offs_v[None, :] * stride_dqd, dq.to(DQ.dtype.element_ty), mask=row_ok[:, None] & v_ok[None, :])


@triton.jit
def lse_bwd_dc_kernel(
    Q, C, ALPHA, LSE, G, GSCALE, OWN, DC,
    M, K, D, stride_qm, stride_qd, stride_cm, stride_cd, stride_dcm, stride_dcd,
    HAS_OWN: tl.constexpr, SHARED: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, NUM_D: tl.constexpr,
    BLOCK_DV: tl.constexpr, PRECISION: tl.constexpr,
):
    """Grid (column blocks, D slices): ``dC[j, v] = α Σ_i g_i P_ij Q[i, v]``.

    The tile is formed transposed, ``Sᵀ = C[cols] Q[rows]ᵀ``, so ``Pᵀ`` feeds the dot directly.
    ``G`` holds ``g / GSCALE`` (``GSCALE = max |g|``) so that ``P·g`` keeps its precision when it is
    rounded to a 16-bit tile; the accumulator is scaled back at the end.
    """
    pid_n = tl.program_id(0)
    pid_v = tl.program_id(1)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < K
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    v_ok = offs_v < D
    alpha = tl.load(ALPHA).to(tl.float32)
    scale = alpha * LOG2E
    cv = tl.load(C + cols[:, None] * stride_cm + offs_v[None, :] * stride_cd, mask=col_ok[:, None] & v_ok[None, :], other=0.0)
    acc = tl.zeros([BLOCK_N, BLOCK_DV], dtype=tl.float32)
    for start_m in range(0, M, BLOCK_M):
        rows = start_m + tl.arange(0, BLOCK_M)
        row_ok = rows < M
        lse2 = tl.load(LSE + rows, mask=row_ok, other=0.0) * LOG2E
        g = tl.load(G + rows, mask=row_ok, other=0.0)
        qv = tl.load(Q + rows[:, None] * stride_qm + offs_v[None, :] * stride_qd, mask=row_ok[:, None] & v_ok[None, :], other=0.0)
        if SHARED:
            st = tl.dot(cv, tl.trans(qv), input_precision=PRECISION)
        else:
            st = _tile(C, Q, cols, rows, D, stride_cm, stride_cd, stride_qm, stride_qd, col_ok, row_ok, BLOCK_N, BLOCK_M, BLOCK_D, NUM_D, PRECISION)
        invalid = (rows >= M)[None, :] | (cols >= K)[:, None]
        if HAS_OWN:
            own = tl.load(OWN + rows, mask=row_ok, other=-1)
            invalid = invalid | (own[None, :] == cols[:, None])
        pt = tl.where(invalid, 0.0, tl.exp2(st * scale - lse2[None, :]) * g[None, :])
        acc = tl.dot(pt.to(qv.dtype), qv, acc, input_precision=PRECISION)
    dc = acc * (alpha * tl.load(GSCALE).to(tl.float32))
    tl.store(DC + cols[:, None] * stride_dcm + offs_v[None, :] * stride_dcd, dc.to(DC.dtype.element_ty), mask=col_ok[:, None] & v_ok[None, :])
