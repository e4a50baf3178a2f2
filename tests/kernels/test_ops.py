"""The ``torch.library`` ops of the chunked core: ``opcheck``, and ``torch.compile`` over a
training step that calls ``nt_xent`` without graph breaks, matching eager."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import selfsup_kernels
from selfsup_kernels import _ops, nt_xent

torch.set_num_threads(2)


def _inputs(unit: bool) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    q, c = torch.randn(13, 6, generator=g), torch.randn(19, 6, generator=g)
    if unit:
        q, c = F.normalize(q, dim=1), F.normalize(c, dim=1)
    return q.requires_grad_(), c.requires_grad_(), torch.tensor(2.5, requires_grad=True), torch.randn(13, generator=g).requires_grad_()


@pytest.mark.parametrize("with_extra, with_own, bounded", [(True, True, True), (False, True, False), (True, False, False), (False, False, True)])
def test_opcheck_chunked_ops(with_extra: bool, with_own: bool, bounded: bool):
    q, c, alpha, extra = _inputs(unit=bounded)
    e = extra if with_extra else None
    own = torch.randint(0, 19, (13,), generator=torch.Generator().manual_seed(1)) if with_own else None
    torch.library.opcheck(_ops.ops.chunked_lse.default, (q, c, alpha, e, own, bounded, 4))
    torch.library.opcheck(_ops.ops.chunked_lse_sum.default, (q, c, alpha, torch.rand(13), e, own, bounded, True, 5))
    lse = _ops.ops.chunked_lse(q, c, alpha, e, own, bounded, 4).detach()
    torch.library.opcheck(_ops.ops.chunked_lse_backward.default, (torch.rand(13), lse, q.detach(), c.detach(), alpha.detach(), None if e is None else e.detach(), own, 3))
    # the op's values against a direct log-sum-exp
    logits = alpha * q @ c.T
    if own is not None:
        logits = logits.scatter(1, own.unsqueeze(1), float("-inf"))
    if e is not None:
        logits = torch.cat([logits, e.unsqueeze(1)], dim=1)
    torch.testing.assert_close(lse, torch.logsumexp(logits, dim=1).detach(), rtol=1e-6, atol=1e-5)


def test_bounded_shift_redoes_underflowing_rows():
    # tau = 0.005 (alpha = 200): most rows lie far below the Cauchy-Schwarz bound
    q, c, _, _ = _inputs(unit=True)
    alpha = torch.tensor(200.0)
    lse = _ops.ops.chunked_lse(q.detach(), c.detach(), alpha, None, None, True, 4)
    torch.testing.assert_close(lse, torch.logsumexp(alpha * q.detach() @ c.detach().T, dim=1), rtol=1e-6, atol=1e-4)


def _compile_backend() -> str:
    try:
        from torch._inductor import cpp_builder  # noqa: F401
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception:
        return "aot_eager"
    return "inductor"


def test_compiled_training_step_has_no_graph_breaks_and_matches_eager():
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    x1, x2 = torch.randn(10, 12, generator=g), torch.randn(10, 12, generator=g)

    def step(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return nt_xent(model(a), model(b), 0.2, backend="torch", chunk=3)

    compiled = torch.compile(step, fullgraph=True, backend=_compile_backend())
    eager_loss = step(x1, x2)
    eager_grads = torch.autograd.grad(eager_loss, list(model.parameters()))
    compiled_loss = compiled(x1, x2)
    compiled_grads = torch.autograd.grad(compiled_loss, list(model.parameters()))
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # and the eager loss is the naive one
    torch.testing.assert_close(eager_loss, nt_xent(model(x1), model(x2), 0.2, backend="reference"), rtol=1e-5, atol=1e-6)


NO_TRITON = textwrap.dedent(
    """
    import sys
    import torch
    from selfsup_kernels import nt_xent, reference
    from selfsup_kernels.triton import is_available
    assert not is_available()
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g)
    ours, ref = nt_xent(z1, z2, 0.3), reference.nt_xent(z1, z2, 0.3).mean()
    assert abs(float(ours) - float(ref)) < 1e-5, (float(ours), float(ref))
    try:
        nt_xent(z1, z2, 0.3, backend="triton")
    except ValueError as e:
        assert "needs the triton package" in str(e), e
    else:
        raise AssertionError("backend='triton' without triton must fail")
    assert "triton" not in sys.modules
    """
)


def test_works_without_triton(tmp_path: Path):
    # a site-packages with everything but triton (linked), and no .pth processing (-S)
    site = Path(torch.__file__).parent.parent
    for entry in site.iterdir():
        if not entry.name.startswith(("triton", "selfsup_kernels")):
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "selfsup_kernels").symlink_to(Path(selfsup_kernels.__file__).parent)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-S", "-c", NO_TRITON], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
