"""All ranks' tensors in the order of the global batch."""

from __future__ import annotations

import torch


def gather_global(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` in the order of the global batch (floating-point ``x`` with gradient,
    integer ``x`` such as dataset indices without). The trainer gives rank r the samples r, r + W,
    r + 2W, … (:func:`selfsup.training.distributed.shard`), so the rank-major gather is interleaved
    back; outside ``torch.distributed`` it returns ``x``."""
    from selfsup_kernels.distributed import gather, gather_labels, world

    _, size = world()
    if size == 1:
        return x
    gathered = gather(x)[0] if x.is_floating_point() else gather_labels(x)
    return gathered.view(size, x.shape[0], *x.shape[1:]).transpose(0, 1).reshape(size * x.shape[0], *x.shape[1:])
