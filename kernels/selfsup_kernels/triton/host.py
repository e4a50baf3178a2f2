"""Host side of the Triton kernels: tile sizes, launches and the small reductions around them."""

from __future__ import annotations

from typing import Any

import torch
import triton
from torch import Tensor

from selfsup_kernels.triton import interpreting
from selfsup_kernels.triton.kernels import lse_bwd_dc_kernel, lse_bwd_dq_kernel, lse_fwd_kernel

SUPPORTED = (torch.float32, torch.bfloat16, torch.float16)

#: Tile sizes forced by tests (small tiles so several row, column and D tiles are exercised).
BLOCK_OVERRIDE: dict[str, int] | None = None


def block_sizes(dim: int, dtype: torch.dtype, backward: bool = False) -> dict[str, int]:
    """Power-of-two tiles (≥ 16, the smallest ``tl.dot`` tile) for feature size ``dim``, with the
    warps and pipeline stages to launch them.

    ``BLOCK_D`` slices ``D`` for the score product, ``BLOCK_DV`` for the gradient products. Chosen
    (not autotuned) so that every kernel compiles for sm_90 without register spills up to
    ``D = 256`` in 16-bit (checked with ptxas resource usage); 16-bit tiles hold all of ``D`` up to
    256, float32 (IEEE products, no tensor cores) uses 32 × 32 tiles and 64-wide D slices.
    """
    d_pad = max(16, triton.next_power_of_2(dim))
    if BLOCK_OVERRIDE is not None:
        cfg = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_D": min(d_pad, 16), "BLOCK_DV": min(d_pad, 16), **BLOCK_OVERRIDE}
    elif interpreting():
        cfg = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_D": min(d_pad, 64), "BLOCK_DV": min(d_pad, 64)}
    elif dtype == torch.float32:
        cfg = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_D": min(d_pad, 64), "BLOCK_DV": min(d_pad, 64), "num_warps": 4, "num_stages": 2}
    elif d_pad <= 128:
        cfg = {"BLOCK_M": 64 if backward else 128, "BLOCK_N": 64, "BLOCK_D": d_pad, "BLOCK_DV": d_pad, "num_warps": 8, "num_stages": 3}
    elif d_pad == 256:
        cfg = {"BLOCK_M": 64, "BLOCK_N": 32 if backward else 64, "BLOCK_D": 256, "BLOCK_DV": 256, "num_warps": 8, "num_stages": 2}
    else:
        cfg = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_D": 128, "BLOCK_DV": 128, "num_warps": 8, "num_stages": 2}
    cfg["NUM_D"] = triton.cdiv(dim, cfg["BLOCK_D"])
    cfg["NUM_V"] = triton.cdiv(dim, cfg["BLOCK_DV"])
    return cfg


def _precision(dtype: torch.dtype) -> str:
    """IEEE float32 products unless the user allowed TF32 for matmuls."""
    return "tf32" if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32 else "ieee"


def _launch_options(cfg: dict[str, int]) -> dict[str, Any]:
    """Compiler options of a launch. Fused multiply-adds stay on explicitly: Triton 3.10 turns its
    default off, and the numbers should not move with the Triton version."""
    if interpreting():
        return {}
    return {**{key: cfg[key] for key in ("num_warps", "num_stages") if key in cfg}, "enable_fp_fusion": True}


def check_supported(q: Tensor) -> None:
    if q.device.type != "cuda" and not interpreting():
        raise ValueError(f"backend: 'triton' needs CUDA tensors (or TRITON_INTERPRET=1), got tensors on {q.device}")
    if q.dtype not in SUPPORTED:
        raise TypeError(f"backend: 'triton' takes float32, bfloat16 or float16 inputs, got {q.dtype}")


def _scalar(alpha: Tensor, like: Tensor) -> Tensor:
    return alpha.detach().to(device=like.device, dtype=torch.float32).reshape(1)


def lse_forward(q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None, fixed_max: bool) -> Tensor:
    """``lse`` ``(M,)`` float32; see :mod:`selfsup_kernels.triton.kernels`."""
    check_supported(q)
    (num_rows, dim), num_cols = q.shape, c.shape[0]
    cfg = block_sizes(dim, q.dtype)
    lse = torch.empty(num_rows, dtype=torch.float32, device=q.device)
    extra32 = lse if extra is None else extra.detach().to(torch.float32).contiguous()
    own_idx = lse if own is None else own.contiguous()
    lse_fwd_kernel[(triton.cdiv(num_rows, cfg["BLOCK_M"]),)](
        q, c, _scalar(alpha, q), extra32, own_idx, lse,
        num_rows, num_cols, dim, q.stride(0), q.stride(1), c.stride(0), c.stride(1),
        HAS_EXTRA=extra is not None, HAS_OWN=own is not None, FIXED_MAX=fixed_max,
        BLOCK_M=cfg["BLOCK_M"], BLOCK_N=cfg["BLOCK_N"], BLOCK_D=cfg["BLOCK_D"], NUM_D=cfg["NUM_D"],
        PRECISION=_precision(q.dtype), **_launch_options(cfg),
    )  # fmt: skip
    return lse


def lse_backward(
    grad: Tensor, lse: Tensor, q: Tensor, c: Tensor, alpha: Tensor, extra: Tensor | None, own: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``Σ_i grad_i lse_i`` wrt ``(q, c, alpha, extra)`` (``dextra`` empty without
    ``extra``). ``dα`` is the sum of per-(slice, row) partials: a deterministic reduction."""
    check_supported(q)
    (num_rows, dim), num_cols = q.shape, c.shape[0]
    cfg = block_sizes(dim, q.dtype, backward=True)
    alpha32 = _scalar(alpha, q)
    g = grad.detach().to(torch.float32).contiguous()
    lse = lse.detach().to(torch.float32).contiguous()
    own_idx = lse if own is None else own.contiguous()
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dc = torch.empty(c.shape, dtype=c.dtype, device=c.device)
    partial = torch.empty((cfg["NUM_V"], num_rows), dtype=torch.float32, device=q.device)
    shared = cfg["NUM_D"] == 1 and cfg["BLOCK_DV"] == cfg["BLOCK_D"]
    common: dict[str, Any] = dict(
        HAS_OWN=own is not None, SHARED=shared, BLOCK_M=cfg["BLOCK_M"], BLOCK_N=cfg["BLOCK_N"], BLOCK_D=cfg["BLOCK_D"],
        NUM_D=cfg["NUM_D"], BLOCK_DV=cfg["BLOCK_DV"], PRECISION=_precision(q.dtype), **_launch_options(cfg),
    )  # fmt: skip
    lse_bwd_dq_kernel[(triton.cdiv(num_rows, cfg["BLOCK_M"]), cfg["NUM_V"])](
        q, c, alpha32, lse, g, own_idx, dq, partial,
        num_rows, num_cols, dim, q.stride(0), q.stride(1), c.stride(0), c.stride(1), dq.stride(0), dq.stride(1),
        **common,
    )  # fmt: skip
    gscale = g.abs().amax().reshape(1)
    gscale = torch.where(gscale > 0, gscale, torch.ones_like(gscale))
    lse_bwd_dc_kernel[(triton.cdiv(num_cols, cfg["BLOCK_N"]), cfg["NUM_V"])](
        q, c, alpha32, lse, g / gscale, gscale, own_idx, dc,
        num_rows, num_cols, dim, q.stride(0), q.stride(1), c.stride(0), c.stride(1), dc.stride(0), dc.stride(1),
        **common,
    )  # fmt: skip
    dalpha = partial.sum().to(alpha.dtype).reshape(alpha.shape)
    if extra is None:
        dextra = torch.empty(0, dtype=torch.float32, device=q.device)
    else:
        dextra = (g * torch.exp(extra.detach().to(torch.float32) - lse)).to(extra.dtype)
    return dq, dc, dalpha, dextra
