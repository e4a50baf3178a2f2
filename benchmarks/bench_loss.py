"""Fused contrastive loss vs naive torch, measured in one run, each case in its own process.

CPU (default): NT-Xent forward + backward at D=128 for 2N in {2048, 8192, 32768}: wall time and
peak memory (growth of the process's max RSS) of selfsup's chunked loss, of the naive loss
(``selfsup_kernels.reference``: full logits) and of a published-style formulation (lightly's: two
cross-entropies over [positives | negatives] logits), with ratios. Each case first runs once on a
tiny batch, so one-time imports and allocator start-up are not counted as the loss's memory.

    python benchmarks/bench_loss.py [--sizes 2048 8192 32768] [--dim 128] [--threads 2]
    python benchmarks/bench_loss.py --device cuda     # bf16, TFLOP/s; needs a GPU
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASE = r"""
import json, resource, sys, time, torch
import torch.nn.functional as F
from selfsup_kernels import nt_xent, reference

impl, two_n, dim, device, dtype, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], getattr(torch, sys.argv[5]), int(sys.argv[6])
if int(sys.argv[7]) > 0:
    torch.set_num_threads(int(sys.argv[7]))
g = torch.Generator(device=device).manual_seed(0)

def lightly_style(a, b, tau=0.1):
    n = a.shape[0]
    a, b = F.normalize(a.float(), dim=1), F.normalize(b.float(), dim=1)
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    first = torch.cat([a @ b.T, (a @ a.T).masked_fill(eye, float("-inf"))], dim=1) / tau
    second = torch.cat([b @ a.T, (b @ b.T).masked_fill(eye, float("-inf"))], dim=1) / tau
    t = torch.arange(n, device=a.device)
    return (F.cross_entropy(first, t) + F.cross_entropy(second, t)) / 2

fns = {
    "selfsup": lambda a, b: nt_xent(a, b, 0.1),
    "naive": lambda a, b: reference.nt_xent(a, b, 0.1).mean(),
    "lightly-style": lambda a, b: lightly_style(a, b),
    "compiled-naive": torch.compile(lambda a, b: reference.nt_xent(a, b, 0.1).mean(), dynamic=False),
}
loss_fn = fns[impl]
if impl != "compiled-naive":
    loss_fn(*(torch.randn(8, dim, device=device, dtype=dtype, requires_grad=True) for _ in range(2))).backward()
n = two_n // 2
z1 = torch.randn(n, dim, device=device, dtype=dtype, generator=g, requires_grad=True)
z2 = torch.randn(n, dim, device=device, dtype=dtype, generator=g, requires_grad=True)
fn = lambda: loss_fn(z1, z2)

def sync():
    if device == "cuda":
        torch.cuda.synchronize()

if device == "cuda":
    torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fn().backward(); sync()
fwd, total = [], []
for _ in range(repeat):
    z1.grad = z2.grad = None
    sync(); t0 = time.perf_counter()
    loss = fn(); sync(); t1 = time.perf_counter()
    loss.backward(); sync(); t2 = time.perf_counter()
    fwd.append(t1 - t0); total.append(t2 - t0)
if device == "cuda":
    peak = torch.cuda.max_memory_allocated() - base
else:
    peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({"fwd": min(fwd), "total": min(total), "peak": peak}))
"""


def run_case(impl: str, two_n: int, dim: int, device: str, dtype: str, repeat: int, threads: int) -> dict[str, float] | None:
    out = subprocess.run(
        [sys.executable, "-c", CASE, impl, str(two_n), str(dim), device, dtype, str(repeat), str(threads)], capture_output=True, text=True
    )
    if out.returncode != 0:
        print(f"  {impl} at 2N={two_n} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
        return None
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--dim", type=int, nargs="+", default=[128])
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (0: torch's default)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    sizes = args.sizes or ([8192, 32768, 65536, 131072, 262144] if cuda else [2048, 8192, 32768])
    impls = ["selfsup", "naive", "compiled-naive"] if cuda else ["selfsup", "naive", "lightly-style"]
    dtype = "bfloat16" if cuda else "float32"
    threads = f"{args.threads} threads" if args.threads else "default threads"
    print(f"NT-Xent fwd+bwd, {args.device}, {dtype}, {threads}; each case in its own process; best of repeats")
    header = f"{'D':>5} {'2N':>7} {'impl':<15} {'fwd s':>8} {'fwd+bwd s':>10} {'peak MiB':>9} {'speed-up':>9} {'mem ratio':>9}"
    if cuda:
        header += f" {'fwd TF/s':>9} {'bwd TF/s':>9}"
    print(header)
    for dim in args.dim:
        for two_n in sizes:
            repeat = args.repeat or (1 if two_n >= 32768 and not cuda else 3)
            results = {impl: run_case(impl, two_n, dim, args.device, dtype, repeat, args.threads) for impl in impls}
            ours = results["selfsup"]
            for impl, r in results.items():
                if r is None:
                    continue
                speed = r["total"] / ours["total"] if ours else float("nan")
                mem = r["peak"] / max(ours["peak"], 1) if ours else float("nan")
                line = f"{dim:>5} {two_n:>7} {impl:<15} {r['fwd']:>8.3f} {r['total']:>10.3f} {r['peak'] / 2**20:>9.1f} {speed:>8.2f}x {mem:>8.1f}x"
                if cuda:
                    flops_fwd = 2 * two_n * two_n * dim
                    line += f" {flops_fwd / r['fwd'] / 1e12:>9.1f} {2 * flops_fwd / max(r['total'] - r['fwd'], 1e-9) / 1e12:>9.1f}"
                print(line, flush=True)
    print("speed-up and mem ratio: the row's time and peak memory divided by selfsup's (higher = selfsup better)")


if __name__ == "__main__":
    main()
