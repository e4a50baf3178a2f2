"""The loss core as ``torch.library`` operators with registered autograd formulas and fake
(meta) implementations, so ``torch.compile`` traces a loss without graph breaks and
``torch.library.opcheck`` passes; and the choice of backend.

Operators (``torch.ops.selfsup_kernels.*``), on ``q (M, D)``, ``c (K, D)``, ``alpha`` (0-dim,
``1/τ``), an optional extra logit per row ``extra (M,)`` and an optional masked column per row
``own (M,)`` (int64), with ``lse_i = log(Σ_{j ≠ own_i} exp(α q_i·c_j) [+ exp(extra_i)])``:

* ``chunked_lse`` → ``lse (M,)``; backward: ``chunked_lse_backward`` (recomputes row chunks);
* ``chunked_lse_sum`` → ``(Σ_i weight_i lse_i, gq, gc, galpha, gextra)``: the gradients are formed
  in the forward sweep (``compute_grad``) and backward only scales them;
* ``triton_lse`` → ``lse (M,)``; backward: ``triton_lse_backward`` (Triton kernels).

They are defined through ``torch.library.Library`` rather than ``torch.library.custom_op``, whose
kernels import ``torch._dynamo`` on their first call (seconds and ~160 MB in a plain eager job).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

from selfsup_kernels import _core
from selfsup_kernels.triton import interpreting, is_available

_LIB = torch.library.Library("selfsup_kernels", "DEF")
_LIB.define("chunked_lse(Tensor q, Tensor c, Tensor alpha, Tensor? extra, Tensor? own, bool bounded, int chunk) -> Tensor")
_LIB.define(
    "chunked_lse_backward(Tensor grad, Tensor lse, Tensor q, Tensor c, Tensor alpha, Tensor? extra, Tensor? own, int chunk)"
    " -> (Tensor, Tensor, Tensor, Tensor)"
)
_LIB.define(
    "chunked_lse_sum(Tensor q, Tensor c, Tensor alpha, Tensor weight, Tensor? extra, Tensor? own, bool bounded, bool compute_grad,"
    " int chunk) -> (Tensor, Tensor, Tensor, Tensor, Tensor)"
)
_LIB.define("triton_lse(Tensor q, Tensor c, Tensor alpha, Tensor? extra, Tensor? own, bool fixed_max) -> Tensor")
_LIB.define(
    "triton_lse_backward(Tensor grad, Tensor lse, Tensor q, Tensor c, Tensor alpha, Tensor? extra, Tensor? own)"
    " -> (Tensor, Tensor, Tensor, Tensor)"
)
ops = torch.ops.selfsup_kernels
"""The operator namespace: ``ops.chunked_lse``, ``ops.chunked_lse_sum``, ``ops.triton_lse``, …"""


def _host() -> Any:
    from selfsup_kernels.triton import host

    return host


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0, dtype=_core.compute_dtype(like.dtype))


_F = TypeVar("_F", bound=Callable[..., Any])


def _impl(name: str) -> Callable[[_F], _F]:
    def register(fn: _F) -> _F:
        _LIB.impl(name, fn, "CompositeExplicitAutograd")
        return fn

    return register


def _fake(name: str) -> Callable[[_F], _F]:
    def register(fn: _F) -> _F:
        torch.library.register_fake(f"selfsup_kernels::{name}", fn, lib=_LIB)
        return fn

    return register


@_impl("chunked_lse")
def _chunked_lse(q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, bounded: bool, chunk: int) -> Tensor:
    return _core.lse_rows(q, c, alpha, extra, own, bounded, chunk)


@_fake("chunked_lse")
def _chunked_lse_fake(q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, bounded: bool, chunk: int) -> Tensor:
    return q.new_empty(q.shape[0], dtype=_core.compute_dtype(q.dtype))


@_impl("chunked_lse_backward")
def _chunked_lse_backward(
    grad: Tensor, lse: Tensor, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return _core.lse_rows_backward(grad, lse, q, c, alpha, extra, own, chunk)


@_fake("chunked_lse_backward")
def _chunked_lse_backward_fake(
    grad: Tensor, lse: Tensor, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    dextra = _empty(q) if extra is None else torch.empty_like(extra)
    return torch.empty_like(q), torch.empty_like(c), torch.empty_like(alpha), dextra


def _save_inputs(ctx: Any, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, lse: Tensor) -> None:
    ctx.has_extra, ctx.has_own = extra is not None, own is not None
    none = lse.new_empty(0)
    ctx.save_for_backward(q, c, alpha, none if extra is None else extra, none if own is None else own, lse)


def _saved(ctx: Any) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None, Tensor]:
    q, c, alpha, extra, own, lse = ctx.saved_tensors
    return q, c, alpha, extra if ctx.has_extra else None, own if ctx.has_own else None, lse


def _chunked_lse_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    q, c, alpha, extra, own, _bounded, chunk = inputs
    ctx.chunk = chunk
    _save_inputs(ctx, q, c, alpha, extra, own, output)


def _chunked_lse_bwd(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    q, c, alpha, extra, own, lse = _saved(ctx)
    dq, dc, dalpha, dextra = ops.chunked_lse_backward(grad, lse, q, c, alpha, extra, own, ctx.chunk)
    return dq, dc, dalpha, dextra if extra is not None else None, None, None, None


torch.library.register_autograd("selfsup_kernels::chunked_lse", _chunked_lse_bwd, setup_context=_chunked_lse_setup, lib=_LIB)


@_impl("chunked_lse_sum")
def _chunked_lse_sum(
    q: Tensor, c: Tensor, alpha: Tensor, weight: Tensor, extra: Tensor | None, own: Tensor | None, bounded: bool, compute_grad: bool, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    return _core.lse_weighted_sum(q, c, alpha, weight, extra, own, bounded, compute_grad, chunk)


@_fake("chunked_lse_sum")
def _chunked_lse_sum_fake(
    q: Tensor, c: Tensor, alpha: Tensor, weight: Tensor, extra: Tensor | None, own: Tensor | None, bounded: bool, compute_grad: bool, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dt = _core.compute_dtype(q.dtype)
    loss = q.new_empty((), dtype=dt)
    if not compute_grad:
        return loss, _empty(q), _empty(q), _empty(q), _empty(q)
    gextra = _empty(q) if extra is None else q.new_empty(q.shape[0], dtype=dt)
    return loss, q.new_empty(q.shape, dtype=dt), c.new_empty(c.shape, dtype=dt), q.new_empty((), dtype=dt), gextra


def _chunked_lse_sum_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    q, c, alpha, _weight, extra, *_ = inputs
    ctx.dtypes = (q.dtype, c.dtype, alpha.dtype, None if extra is None else extra.dtype)
    ctx.save_for_backward(*output[1:])


def _chunked_lse_sum_bwd(ctx: Any, grad: Tensor, *_ignored: Tensor) -> tuple[Tensor | None, ...]:
    gq, gc, galpha, gextra = ctx.saved_tensors
    q_dt, c_dt, a_dt, e_dt = ctx.dtypes
    if galpha.dim() != 0:
        raise RuntimeError("chunked_lse_sum: backward reached an op that ran with compute_grad=False")
    dextra = None if e_dt is None else (gextra * grad).to(e_dt)
    return (gq * grad).to(q_dt), (gc * grad).to(c_dt), (galpha * grad).to(a_dt), None, dextra, None, None, None, None


torch.library.register_autograd("selfsup_kernels::chunked_lse_sum", _chunked_lse_sum_bwd, setup_context=_chunked_lse_sum_setup, lib=_LIB)


@_impl("triton_lse")
def _triton_lse(q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, fixed_max: bool) -> Tensor:
    lse: Tensor = _host().lse_forward(q, c, alpha, extra, own, fixed_max)
    return lse


@_fake("triton_lse")
def _triton_lse_fake(q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, fixed_max: bool) -> Tensor:
    return q.new_empty(q.shape[0], dtype=torch.float32)


@_impl("triton_lse_backward")
def _triton_lse_backward(
    grad: Tensor, lse: Tensor, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    out: tuple[Tensor, Tensor, Tensor, Tensor] = _host().lse_backward(grad, lse, q, c, alpha, extra, own)
    return out


@_fake("triton_lse_backward")
def _triton_lse_backward_fake(
    grad: Tensor, lse: Tensor, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    dextra = q.new_empty(0, dtype=torch.float32) if extra is None else torch.empty_like(extra)
    dense = torch.contiguous_format
    return torch.empty_like(q, memory_format=dense), torch.empty_like(c, memory_format=dense), torch.empty_like(alpha), dextra


def _triton_lse_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    q, c, alpha, extra, own, _fixed_max = inputs
    _save_inputs(ctx, q, c, alpha, extra, own, output)


def _triton_lse_bwd(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    q, c, alpha, extra, own, lse = _saved(ctx)
    dq, dc, dalpha, dextra = ops.triton_lse_backward(grad, lse, q, c, alpha, extra, own)
    return dq, dc, dalpha, dextra if extra is not None else None, None, None


torch.library.register_autograd("selfsup_kernels::triton_lse", _triton_lse_bwd, setup_context=_triton_lse_setup, lib=_LIB)


def resolve_backend(backend: str, like: Tensor) -> str:
    """``auto`` → ``triton`` for CUDA tensors when triton imports, else ``torch``; ``triton`` is
    checked for a device and dtype it can run on."""
    if backend == "auto":
        return "triton" if like.device.type == "cuda" and like.dtype in (torch.float32, torch.bfloat16, torch.float16) and is_available() else "torch"
    if backend == "triton":
        if not is_available():
            raise ValueError("backend: 'triton' needs the triton package, which cannot be imported here")
        if like.device.type != "cuda" and not interpreting():
            raise ValueError(f"backend: 'triton' needs CUDA tensors (or TRITON_INTERPRET=1), got tensors on {like.device}")
        if like.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise TypeError(f"backend: 'triton' takes float32, bfloat16 or float16 inputs, got {like.dtype}")
    return backend


def contrast(
    q: Tensor,
    c: Tensor,
    alpha: Tensor,
    positive: Tensor,
    *,
    weights: Tensor | None,
    extra: Tensor | None = None,
    own: Tensor | None = None,
    backend: str,
    unit_norm: bool,
    alpha_value: float | None,
    chunk: int | None,
) -> Tensor:
    """``ℓ_i = lse_i − positive_i`` per row (``weights`` None) or ``Σ_i weights_i ℓ_i``.

    ``positive`` ``(M,)`` carries its own autograd graph (it is ``O(M·D)``); ``backend`` is
    ``"torch"`` or ``"triton"``; ``unit_norm`` says every row of ``q`` and ``c`` has norm 1, which
    lets the shift be fixed in advance (``alpha_value``, when known, bounds it for Triton).
    """
    if backend == "triton":
        fixed_max = unit_norm and alpha_value is not None and alpha_value <= 40.0
        lse: Tensor = ops.triton_lse(q, c, alpha, extra, own, fixed_max)
        losses = lse - positive
        return losses if weights is None else (weights * losses).sum()
    rows = _core.chunk_rows(q.shape[0], c.shape[0], chunk)
    if weights is None:
        per_row: Tensor = ops.chunked_lse(q, c, alpha, extra, own, unit_norm, rows)
        return per_row - positive
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, c, alpha, extra))
    total: Tensor = ops.chunked_lse_sum(q, c, alpha, weights.detach(), extra, own, unit_norm, needs_grad, rows)[0]
    return total - (weights * positive).sum()
