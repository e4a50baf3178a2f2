"""Fused losses against the naive reference, published formulations, autograd, DDP and bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from selfsup_kernels import InfoNCELoss, NTXentLoss, SupConLoss, info_nce, nt_xent, reference, sup_con

torch.set_num_threads(2)


def grads(loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, inputs))


def leaf(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()


@pytest.mark.parametrize("n, d, chunk", [(41, 16, 7), (401, 32, 64), (1271, 8, None)])
@pytest.mark.parametrize("normalize", [True, False])
def test_nt_xent_matches_reference(n: int, d: int, chunk: int | None, normalize: bool):
    z1, z2 = leaf(n, d, seed=1), leaf(n, d, seed=2)
    tau = torch.tensor(0.2, requires_grad=True)
    scale = 1.0 if normalize else 0.2
    ours = nt_xent(z1 * scale, z2 * scale, tau, normalize=normalize, chunk=chunk)
    ref = nt_xent(z1 * scale, z2 * scale, tau, normalize=normalize, backend="reference")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads(ours, [z1, z2, tau]), grads(ref, [z1, z2, tau])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_reductions(reduction: str):
    z1, z2 = leaf(9, 5, seed=3), leaf(9, 5, seed=4)
    ours = nt_xent(z1, z2, 0.5, reduction=reduction, chunk=4)
    ref = nt_xent(z1, z2, 0.5, reduction=reduction, backend="reference")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    weights = torch.linspace(0.1, 2, ours.numel()).reshape(ours.shape)
    for a, b in zip(grads((ours * weights).sum(), [z1, z2]), grads((ref * weights).sum(), [z1, z2])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def lightly_style_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """The formulation of lightly's NTXentLoss without a memory bank: for each view, the positive
    is the other view of the same image; negatives are all other views of both batches."""
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n = a.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    logits_ab, logits_ba = a @ b.T / tau, b @ a.T / tau
    logits_aa = (a @ a.T / tau).masked_fill(eye, float("-inf"))
    logits_bb = (b @ b.T / tau).masked_fill(eye, float("-inf"))
    first = torch.cat([logits_ab, logits_aa], dim=1)
    second = torch.cat([logits_ba, logits_bb], dim=1)
    targets = torch.arange(n)
    return (F.cross_entropy(first, targets) + F.cross_entropy(second, targets)) / 2


def test_nt_xent_matches_the_published_formulation():
    z1, z2 = leaf(33, 12, seed=5), leaf(33, 12, seed=6)
    torch.testing.assert_close(nt_xent(z1, z2, 0.1, chunk=5), lightly_style_nt_xent(z1, z2, 0.1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("queue, batch_negatives", [(0, True), (37, True), (37, False)])
def test_info_nce_matches_reference(queue: int, batch_negatives: bool):
    q, k = leaf(23, 10, seed=7), leaf(23, 10, seed=8)
    negatives = leaf(queue, 10, seed=9) if queue else None
    tau = torch.tensor(0.07, requires_grad=True)
    inputs = [q, k, tau] + ([negatives] if negatives is not None else [])
    ours = info_nce(q, k, negatives, tau, batch_negatives=batch_negatives, chunk=6)
    ref = info_nce(q, k, negatives, tau, batch_negatives=batch_negatives, backend="reference")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads(ours, inputs), grads(ref, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_info_nce_is_mocos_cross_entropy():
    q, k, queue = leaf(8, 6, seed=10), leaf(8, 6, seed=11), leaf(50, 6, seed=12)
    qn, kn, negn = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    l_pos = torch.einsum("nc,nc->n", qn, kn).unsqueeze(-1)
    l_neg = torch.einsum("nc,kc->nk", qn, negn)
    logits = torch.cat([l_pos, l_neg], dim=1) / 0.2
    expected = F.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(info_nce(q, k, queue, 0.2), expected, rtol=1e-5, atol=1e-6)


def official_supcon(features: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """Khosla et al.'s released L_out (contrast_mode='all', base_temperature = temperature)."""
    n, v = features.shape[:2]
    contrast = torch.cat(torch.unbind(F.normalize(features, dim=2), dim=1))
    mask = torch.eq(labels.view(-1, 1), labels.view(1, -1)).float().repeat(v, v)
    logits = contrast @ contrast.T / tau
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    logits_mask = 1 - torch.eye(n * v)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return -mean_log_prob_pos.mean()


@pytest.mark.parametrize("n, v", [(17, 2), (40, 3)])
def test_sup_con_matches_reference_and_official(n: int, v: int):
    z = leaf(n, v, 12, seed=13)
    labels = torch.randint(0, 5, (n,), generator=torch.Generator().manual_seed(0))
    tau = torch.tensor(0.1, requires_grad=True)
    ours = sup_con(z, labels, tau, chunk=9)
    ref = sup_con(z, labels, tau, backend="reference")
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, official_supcon(z, labels, 0.1), rtol=1e-5, atol=1e-5)
    for a, b in zip(grads(ours, [z, tau]), grads(ref, [z, tau])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_sup_con_with_distinct_labels_is_nt_xent():
    z1, z2 = leaf(12, 8, seed=14), leaf(12, 8, seed=15)
    z = torch.stack([z1, z2], dim=1)
    torch.testing.assert_close(sup_con(z, torch.arange(12), 0.3), nt_xent(z1, z2, 0.3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 2e-2), (torch.float16, 5e-3)])
def test_low_precision_inputs(dtype: torch.dtype, tol: float):
    z1, z2 = leaf(64, 32, seed=16), leaf(64, 32, seed=17)
    low = nt_xent(z1.to(dtype), z2.to(dtype), 0.01)
    full = nt_xent(z1, z2, 0.01)
    assert torch.isfinite(low)
    torch.testing.assert_close(low.float(), full, rtol=tol, atol=tol * 10)


def test_modules_match_functions():
    z1, z2 = leaf(6, 4, seed=18), leaf(6, 4, seed=19)
    torch.testing.assert_close(NTXentLoss(0.2)(z1, z2), nt_xent(z1, z2, 0.2))
    torch.testing.assert_close(InfoNCELoss(0.2)(z1, z2), info_nce(z1, z2, temperature=0.2))
    z, y = leaf(6, 2, 4, seed=20), torch.tensor([0, 0, 1, 1, 2, 2])
    torch.testing.assert_close(SupConLoss(0.2)(z, y), sup_con(z, y, 0.2))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)


PEAK_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from selfsup_kernels import nt_xent
    torch.set_num_threads(1)

    def status_kib(field):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

    small = torch.randn(64, 16, requires_grad=True), torch.randn(64, 16, requires_grad=True)
    nt_xent(*small, 0.1, backend=sys.argv[1]).backward()  # the code pages and thread pools it needs
    z1, z2 = torch.randn(4096, 16, requires_grad=True), torch.randn(4096, 16, requires_grad=True)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak resident size (VmHWM) starts again from the current one
    before = status_kib("VmRSS")
    nt_xent(z1, z2, 0.1, backend=sys.argv[1]).backward()
    print(status_kib("VmHWM") - before)
    """
)


def test_memory_stays_chunk_sized():
    # 2N = 8192: the naive reference must hold at least the 8192 x 8192 fp32 logits (256 MiB);
    # how many more of those it keeps alive depends on the allocator, so only that one is asserted
    growth = {}
    for backend in ("torch", "reference"):
        out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, backend], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        growth[backend] = int(out.stdout.split()[-1]) * 1024
    assert growth["reference"] > 200 * 2**20, growth
    assert growth["torch"] < 100 * 2**20, growth


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(4, 4)), ValueError, "z2: expected the shape"),
        (lambda: nt_xent(torch.randn(0, 4), torch.randn(0, 4)), ValueError, "z1: the batch is empty"),
        (lambda: nt_xent(torch.randn(3, 0), torch.randn(3, 0)), ValueError, "embedding dimension is 0"),
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(3, 4), 0.0), ValueError, "temperature: expected > 0"),
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(3, 4), -1.0), ValueError, "temperature"),
        (lambda: nt_xent(torch.full((3, 4), float("nan")), torch.randn(3, 4)), ValueError, "z1: contains NaN"),
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(3, 4).double()), TypeError, "z2: dtype"),
        (lambda: nt_xent(torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long)), TypeError, "z1: expected a floating"),
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(3, 4), reduction="max"), ValueError, "reduction"),
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(3, 4), backend="cuda"), ValueError, "backend"),
        (lambda: nt_xent(torch.randn(3, 4), torch.randn(3, 4), backend="triton"), ValueError, "backend: 'triton' needs CUDA tensors"),
        (lambda: sup_con(torch.randn(4, 2, 3).double(), torch.arange(4), backend="triton"), ValueError, "backend: 'triton' needs CUDA"),
        (lambda: info_nce(torch.randn(3, 4), torch.randn(3, 4), batch_negatives=False), ValueError, "negatives: required"),
        (lambda: info_nce(torch.randn(3, 4), torch.randn(3, 4), torch.randn(5, 3)), ValueError, "negatives: expected embedding dimension"),
        (lambda: sup_con(torch.randn(4, 2, 3), torch.tensor([0, 1, 2])), ValueError, r"labels: expected shape \(4,\)"),
        (lambda: sup_con(torch.randn(4, 2, 3), torch.zeros(4)), TypeError, "labels: expected an integer"),
        (lambda: sup_con(torch.randn(4, 1, 3), torch.arange(4)), ValueError, "labels: no anchor has a positive"),
        (lambda: sup_con(torch.randn(4, 3), torch.arange(4)), ValueError, "z: expected 3 dimensions"),
    ],
)
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch, torch.distributed as dist
    from selfsup_kernels import nt_xent, info_nce, sup_con
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    z = torch.randn(16, 2, 8, generator=g)
    labels = torch.randint(0, 4, (16,), generator=g)
    queue = torch.randn(20, 8, generator=g)
    local = slice(rank * 8, rank * 8 + 8)
    out = {}
    for name, make in {
        "nt_xent": lambda a, b, c, y: nt_xent(a, b, 0.2, gather=True, chunk=5, backend=sys.argv[2]),
        "info_nce": lambda a, b, c, y: info_nce(a, b, queue, 0.2, batch_negatives=True, gather=True, chunk=5, backend=sys.argv[2]),
        "sup_con": lambda a, b, c, y: sup_con(c, y, 0.2, gather=True, chunk=5, backend=sys.argv[2]),
    }.items():
        a, b, c = z1[local].clone().requires_grad_(), z2[local].clone().requires_grad_(), z[local].clone().requires_grad_()
        loss = make(a, b, c, labels[local])
        loss.backward()
        # DDP averages gradients over ranks
        gs = [x.grad / world if x.grad is not None else torch.zeros_like(x) for x in (a, b, c)]
        reduced = loss.detach().clone(); dist.all_reduce(reduced); reduced /= world
        out[name] = {"loss": reduced, "grads": gs}
    torch.save(out, os.path.join(sys.argv[1], f"rank{rank}.pt"))
    dist.destroy_process_group()
    """
)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_gather_across_two_gloo_processes_equals_one_process(tmp_path: Path, backend: str):
    # the Triton kernels run on CPU under the interpreter
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2")
    if backend == "triton":
        env["TRITON_INTERPRET"] = "1"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path), backend], env=dict(env, RANK=str(r)), stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    z = torch.randn(16, 2, 8, generator=g)
    labels = torch.randint(0, 4, (16,), generator=g)
    queue = torch.randn(20, 8, generator=g)
    single = {
        "nt_xent": lambda a, b, c: nt_xent(a, b, 0.2, backend="reference"),
        "info_nce": lambda a, b, c: info_nce(a, b, queue, 0.2, batch_negatives=True, backend="reference"),
        "sup_con": lambda a, b, c: sup_con(c, labels, 0.2, backend="reference"),
    }
    for name, make in single.items():
        a, b, c = z1.clone().requires_grad_(), z2.clone().requires_grad_(), z.clone().requires_grad_()
        loss = make(a, b, c)
        loss.backward()
        full = [x.grad if x.grad is not None else torch.zeros_like(x) for x in (a, b, c)]
        for r in range(2):
            torch.testing.assert_close(ranks[r][name]["loss"], loss.detach(), rtol=1e-6, atol=1e-6, msg=name)
            for got, want in zip(ranks[r][name]["grads"], full):
                torch.testing.assert_close(got, want[r * 8 : r * 8 + 8], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_float64_losses_pass_gradcheck_in_embeddings_and_temperature(backend: str):
    g = torch.Generator().manual_seed(3)
    z1, z2 = (torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    queue = torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    views = torch.randn(6, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 2, 1, 2])
    tau = torch.tensor(0.02, dtype=torch.float64, requires_grad=True)
    checks = {
        "nt_xent": (lambda a, b, t: nt_xent(a, b, t, backend=backend), (z1, z2, tau)),
        "info_nce": (lambda a, b, q, t: info_nce(a, b, negatives=q, temperature=t, backend=backend), (z1, z2, queue, tau)),
        "sup_con": (lambda v, t: sup_con(v, labels, t, backend=backend), (views, tau)),
    }
    for name, (fn, inputs) in checks.items():
        assert fn(*inputs).dtype == torch.float64, name
        assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4), name
