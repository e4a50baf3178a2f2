"""The Triton kernels un-interpreted on a GPU: every loss, reduction and dtype against the naive
reference, forward and backward (embeddings and τ), at odd shapes and at a size that spans many
tiles. Prints one line per case and exits non-zero when any case is off.

Tolerances: fp32 1e-4 relative (IEEE fp32 products), bf16/fp16 inputs 2e-2 (inputs rounded to
8/11 mantissa bits; the kernels accumulate in fp32, the reference runs in fp32 on the rounded
inputs). DDP is left out (one GPU).

    PYTHONPATH=kernels python benchmarks/gpu_check.py
    TRITON_INTERPRET=1 PYTHONPATH=kernels python benchmarks/gpu_check.py   # the script itself, on CPU, smallest shape
"""

from __future__ import annotations

import os
import sys

import torch

from selfsup_kernels import info_nce, nt_xent, reference, sup_con

TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 2e-2}
SHAPES = [(41, 67, 24), (1271, 401, 128), (4096, 8192, 256)]


def losses(backend: str, x: dict[str, torch.Tensor], reduction: str) -> dict[str, tuple[torch.Tensor, list[torch.Tensor]]]:
    fns = {
        "nt_xent": (lambda a, t: nt_xent(a["z1"], a["z2"], t, reduction=reduction, backend=backend), ["z1", "z2"]),
        "info_nce+queue": (lambda a, t: info_nce(a["z1"], a["z2"], a["queue"], t, reduction=reduction, backend=backend), ["z1", "z2", "queue"]),
        "info_nce batch": (lambda a, t: info_nce(a["z1"], a["z2"], None, t, reduction=reduction, backend=backend), ["z1", "z2"]),
        "sup_con": (lambda a, t: sup_con(a["z"], a["labels"], t, reduction=reduction, backend=backend), ["z"]),
    }
    out = {}
    for name, (fn, names) in fns.items():
        leaves = {k: (v.clone().requires_grad_() if k in names else v) for k, v in x.items()}
        tau = torch.tensor(0.1, device=x["z1"].device, requires_grad=True)
        loss = fn(leaves, tau)
        weighted = loss if loss.ndim == 0 else (loss.float() * x["weights"][: loss.numel()]).sum()
        out[name] = (loss.detach().float(), [g.float() for g in torch.autograd.grad(weighted, [leaves[k] for k in names] + [tau])])
    return out


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-6))


def main() -> int:
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    if not torch.cuda.is_available() and not interpreted:
        print("gpu_check: no CUDA device", file=sys.stderr)
        return 2
    device = "cpu" if interpreted else "cuda"
    print(f"device: {'CPU, Triton interpreted' if interpreted else torch.cuda.get_device_name()}, torch {torch.__version__}")
    failures = 0
    for n, k, d in SHAPES[:1] if interpreted else SHAPES:
        g = torch.Generator(device=device).manual_seed(n)
        base = {
            "z1": torch.randn(n, d, device=device, generator=g),
            "z2": torch.randn(n, d, device=device, generator=g),
            "queue": torch.randn(k, d, device=device, generator=g),
            "z": torch.randn(n, 2, d, device=device, generator=g),
            "labels": torch.randint(0, 10, (n,), device=device, generator=g),
            "weights": torch.rand(2 * n, device=device, generator=g) + 0.5,
        }
        for dtype, tolerance in TOLERANCE.items():
            if interpreted and dtype == torch.bfloat16:
                continue  # triton 3.9's interpreter multiplies bfloat16 tiles wrongly even in a bare tl.dot
            x = {key: (v.to(dtype) if v.is_floating_point() and key != "weights" else v) for key, v in base.items()}
            exact = {key: (v.float() if v.is_floating_point() else v) for key, v in x.items()}
            for reduction in ("mean", "none"):
                ours, ref = losses("triton", x, reduction), losses("reference", exact, reduction)
                for name in ours:
                    errors = [relative_error(ours[name][0], ref[name][0])] + [relative_error(a, b) for a, b in zip(ours[name][1], ref[name][1])]
                    worst = max(errors)
                    ok = worst <= tolerance
                    failures += not ok
                    print(f"{'ok  ' if ok else 'FAIL'} N={n:<5} K={k:<5} D={d:<4} {str(dtype).removeprefix('torch.'):<9} {reduction:<5} {name:<15} "
                          f"max rel. error {worst:.2e} (loss {errors[0]:.1e}, grads {max(errors[1:]):.1e})", flush=True)
    print(f"{failures} failed" if failures else "all Triton cases match the reference")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
