"""The Triton kernels compiled ahead of time for an H100 (sm_90) by Triton's own NVIDIA backend and
ptxas, without a GPU: the interpreter checks what the kernels compute, this checks that they lower
to machine code (the compiler is stricter than the interpreter, e.g. about globals) within the
register file and shared memory, with the tiles ``host.block_sizes`` picks."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from selfsup_kernels.triton import host
from selfsup_kernels.triton import kernels as K

H100 = GPUTarget("cuda", 90, 32)
SMEM_LIMIT = 227 * 1024
TYPES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def compile_kernel(fn: triton.JITFunction, pointers: dict[str, str], constants: dict[str, object], options: dict[str, int]) -> tuple[int, int, int]:
    """``(registers, spilled stack bytes, shared memory bytes)`` of the sm_90 cubin."""
    signature = {n: f"*{pointers[n]}" if n in pointers else "constexpr" if n in constants else "i32" for n in fn.arg_names}
    kernel = triton.compile(ASTSource(fn, signature, constexprs=constants), target=H100, options=options)
    cubin = Path(os.environ.get("TMPDIR", "/tmp")) / f"selfsup_{fn.__name__}_{os.getpid()}.cubin"
    cubin.write_bytes(kernel.asm["cubin"])
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    usage = subprocess.run([str(cuobjdump), "--dump-resource-usage", str(cubin)], capture_output=True, text=True, check=True).stdout
    cubin.unlink()
    regs, stack = (int(re.search(rf"{key}:(\d+)", usage).group(1)) for key in ("REG", "STACK"))  # type: ignore[union-attr]
    return regs, stack, int(kernel.metadata.shared)


@pytest.mark.parametrize("dtype, dim", [(torch.bfloat16, 128), (torch.float32, 24)])
def test_kernels_compile_for_h100_without_spills(dtype: torch.dtype, dim: int, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    ty = TYPES[dtype]
    fwd, bwd = host.block_sizes(dim, dtype), host.block_sizes(dim, dtype, backward=True)
    precision = host._precision(dtype)
    shared = bwd["NUM_D"] == 1 and bwd["BLOCK_DV"] == bwd["BLOCK_D"]
    tiles = lambda cfg: {k: cfg[k] for k in ("BLOCK_M", "BLOCK_N", "BLOCK_D", "NUM_D")}  # noqa: E731
    options = host._launch_options  # the options every launch passes
    common = {"ALPHA": "fp32", "LSE": "fp32", "OWN": "i64", "Q": ty, "C": ty}
    cases = [
        (K.lse_fwd_kernel, {**common, "EXTRA": "fp32"}, dict(HAS_EXTRA=True, HAS_OWN=True, FIXED_MAX=False, PRECISION=precision, **tiles(fwd)), options(fwd)),
        (K.lse_bwd_dq_kernel, {**common, "G": "fp32", "DQ": ty, "WA": "fp32"}, dict(HAS_OWN=True, SHARED=shared, BLOCK_DV=bwd["BLOCK_DV"], PRECISION=precision, **tiles(bwd)), options(bwd)),
        (K.lse_bwd_dc_kernel, {**common, "G": "fp32", "GSCALE": "fp32", "DC": ty}, dict(HAS_OWN=True, SHARED=shared, BLOCK_DV=bwd["BLOCK_DV"], PRECISION=precision, **tiles(bwd)), options(bwd)),
    ]
    for fn, pointers, constants, opts in cases:
        regs, stack, smem = compile_kernel(fn, pointers, constants, opts)
        assert regs <= 255 and stack == 0, (fn.__name__, regs, stack)
        assert 0 < smem <= SMEM_LIMIT, (fn.__name__, smem)
