"""All-gathering embeddings with their gradient, for losses computed over the global batch.

``gather(x)`` returns the concatenation over ranks of every rank's ``x`` (rank order), and this
rank's offset into it. Its backward sums, over ranks, the gradients every rank's loss sends to this
rank's shard (an all-reduce of the gathered gradient, sliced). A loss averaged over the local
anchors, under DDP's gradient averaging, then gives every rank the gradient of one process
computing the mean over the global batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rank, size = dist.get_rank(), dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    """Whether more than one rank takes part: whether a loss must gather or all-reduce."""
    return world()[1] > 1


def all_reduce(x: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> torch.Tensor:
    """Reduces ``x`` over ranks in place (no gradient) and returns it; ``x`` itself on one rank."""
    if is_distributed():
        dist.all_reduce(x, op=op)
    return x


def gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(cat over ranks of x, this rank's row offset)``. Every rank must pass the same shape."""
    rank, size = world()
    if size == 1:
        return x, 0
    gathered: torch.Tensor = _AllGather.apply(x)
    return gathered, rank * x.shape[0]


def gather_labels(y: torch.Tensor) -> torch.Tensor:
    """Labels need no gradient: a plain all-gather."""
    rank, size = world()
    if size == 1:
        return y
    parts = [torch.empty_like(y) for _ in range(size)]
    dist.all_gather(parts, y.contiguous())
    return torch.cat(parts)
