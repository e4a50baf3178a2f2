"""The Triton backend under ``TRITON_INTERPRET=1`` on CPU against the naive reference.

The interpreter must be switched on before triton is first imported, so the Triton side runs in a
subprocess (small tiles forced: several row, column and D tiles and D slices at N=41, K=67, D=24);
it saves its losses and gradients, and the comparison with ``reference`` happens here. The
subprocess also runs ``torch.library.opcheck`` on the Triton ops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from selfsup_kernels import info_nce, nt_xent, sup_con

N, K, D, V = 41, 67, 24, 2
REDUCTIONS = ("mean", "sum", "none")
LOSSES = ("nt_xent", "info_nce_queue", "info_nce_batch", "info_nce_batch_only", "sup_con")


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "z1": torch.randn(N, D, generator=g),
        "z2": torch.randn(N, D, generator=g),
        "queue": torch.randn(K, D, generator=g),
        "z": torch.randn(N, V, D, generator=g),
        "labels": torch.randint(0, 6, (N,), generator=g),
        "weights": torch.rand(N * V, generator=g) + 0.5,
    }


def cases(backend: str, x: dict[str, torch.Tensor], reductions: tuple[str, ...] = REDUCTIONS) -> dict[str, tuple[torch.Tensor, list[torch.Tensor]]]:
    """Every loss and reduction: ``(loss, grads wrt (inputs..., temperature))``, a per-row loss
    weighted before backward so each row's gradient path is distinct."""
    losses = {
        "nt_xent": (lambda a, t, r: nt_xent(a["z1"], a["z2"], t, reduction=r, backend=backend), ["z1", "z2"]),
        "info_nce_queue": (lambda a, t, r: info_nce(a["z1"], a["z2"], a["queue"], t, reduction=r, backend=backend), ["z1", "z2", "queue"]),
        "info_nce_batch": (
            lambda a, t, r: info_nce(a["z1"], a["z2"], a["queue"], t, batch_negatives=True, reduction=r, backend=backend),
            ["z1", "z2", "queue"],
        ),
        "info_nce_batch_only": (lambda a, t, r: info_nce(a["z1"], a["z2"], None, t, reduction=r, backend=backend, normalize=False), ["z1", "z2"]),
        "sup_con": (lambda a, t, r: sup_con(a["z"], a["labels"], t, reduction=r, backend=backend), ["z"]),
    }
    out = {}
    for name, (fn, names) in losses.items():
        for reduction in reductions:
            leaves = {k: (v.clone().requires_grad_() if k in names else v) for k, v in x.items()}
            tau = torch.tensor(0.1 if name != "info_nce_batch_only" else 0.5, requires_grad=True)
            loss = fn(leaves, tau, reduction)
            weighted = loss if loss.ndim == 0 else (loss * x["weights"][: loss.numel()]).sum()
            out[f"{name}/{reduction}"] = (loss.detach(), list(torch.autograd.grad(weighted, [leaves[k] for k in names] + [tau])))
    return out


SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TRITON_INTERPRET"] = "1"
    import torch
    sys.path.insert(0, sys.argv[2])
    from test_triton_interpreter import cases, inputs
    from selfsup_kernels import _ops, nt_xent
    from selfsup_kernels.triton import host

    torch.set_num_threads(1)
    # D = 24 in two slices of 16: the general path (score tiles summed over D slices, gradient
    # products per D slice)
    host.BLOCK_OVERRIDE = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_D": 16, "BLOCK_DV": 16}
    x = inputs()
    results = cases("triton", x)
    # D = 24 in one tile of 32: the path GPUs take up to D = 256 (rows loaded once, the column
    # tile shared by the score and gradient products)
    host.BLOCK_OVERRIDE = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_D": 32, "BLOCK_DV": 32}
    one_tile = cases("triton", x, ("none",))
    host.BLOCK_OVERRIDE = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_D": 16, "BLOCK_DV": 16}

    # fp16 at tau = 0.01: finite and close to float32. (bfloat16 is not checked here: the
    # interpreter of triton 3.9 multiplies bfloat16 tiles wrongly even in a bare tl.dot(a, b))
    low = {}
    for dtype in (torch.float16,):
        z1, z2 = x["z1"].to(dtype).requires_grad_(), x["z2"].to(dtype).requires_grad_()
        loss = nt_xent(z1, z2, 0.01, backend="triton")
        low[str(dtype)] = (loss.detach(), [g.float() for g in torch.autograd.grad(loss, [z1, z2])])

    # strided inputs (every other row and a transposed layout)
    wide = torch.randn(2 * 41, 24, generator=torch.Generator().manual_seed(1))
    q_strided, c_t = wide[::2], torch.randn(24, 67, generator=torch.Generator().manual_seed(2)).T
    alpha = torch.tensor(7.0)
    strided = _ops.ops.triton_lse(q_strided, c_t, alpha, None, None, False)

    # opcheck on the Triton ops (schema, fake tensors, autograd registration, AOT dispatch)
    q = torch.randn(41, 24, requires_grad=True)
    c = torch.randn(67, 24, requires_grad=True)
    a = torch.tensor(3.0, requires_grad=True)
    e = torch.randn(41, requires_grad=True)
    own = torch.randint(0, 67, (41,))
    for args in [(q, c, a, e, own, False), (q / q.norm(dim=1, keepdim=True), c / c.norm(dim=1, keepdim=True), a, None, None, True)]:
        torch.library.opcheck(_ops.ops.triton_lse.default, args)
    lse = _ops.ops.triton_lse(q, c, a, e, own, False).detach()
    torch.library.opcheck(_ops.ops.triton_lse_backward.default, (torch.rand(41), lse, q.detach(), c.detach(), a.detach(), e.detach(), own))
    torch.save({"cases": results, "one_tile": one_tile, "low": low, "strided": strided, "strided_inputs": (q_strided.clone(), c_t.clone())}, sys.argv[1])
    """
)


@pytest.fixture(scope="module")
def triton_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("triton") / "results.pt"
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(Path(__file__).parent)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results: dict[str, object] = torch.load(out)
    return results


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_triton_matches_reference(triton_results: dict[str, object], loss: str, reduction: str):
    expected = cases("reference", inputs())[f"{loss}/{reduction}"]
    got = triton_results["cases"][f"{loss}/{reduction}"]  # type: ignore[index]
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(got[1], expected[1]):
        # the last gradient is the temperature's
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", LOSSES)
def test_triton_single_d_tile_matches_reference(triton_results: dict[str, object], loss: str):
    expected = cases("reference", inputs(), ("none",))[f"{loss}/none"]
    got = triton_results["one_tile"][f"{loss}/none"]  # type: ignore[index]
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_triton_fp16_at_small_temperature(triton_results: dict[str, object]):
    dtype = "torch.float16"
    x = inputs()
    z1, z2 = x["z1"].requires_grad_(), x["z2"].requires_grad_()
    low_dtype = getattr(torch, dtype.split(".")[1])
    # the float32 reference on the same rounded inputs
    a, b = z1.detach().to(low_dtype).float().requires_grad_(), z2.detach().to(low_dtype).float().requires_grad_()
    ref = nt_xent(a, b, 0.01, backend="reference")
    ref_grads = torch.autograd.grad(ref, [a, b])
    loss, grads = triton_results["low"][dtype]  # type: ignore[index]
    assert torch.isfinite(loss)
    tol = 5e-3
    torch.testing.assert_close(loss, ref.detach(), rtol=tol, atol=tol)
    for g, r in zip(grads, ref_grads):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, r, rtol=tol, atol=tol * float(r.abs().max()))


def test_triton_takes_strided_inputs(triton_results: dict[str, object]):
    q, c = triton_results["strided_inputs"]  # type: ignore[index]
    expected = torch.logsumexp(7.0 * q @ c.T, dim=1)
    torch.testing.assert_close(triton_results["strided"], expected, rtol=1e-5, atol=1e-5)
