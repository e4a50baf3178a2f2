"""Shuffling BatchNorm (He et al. 2019, "Momentum Contrast", arXiv:1911.05722, §3.3).

With BatchNorm computed per device, a query and its positive key encoded in the same batch share
its statistics, and the network can "cheat the pretext task" through them. MoCo shuffles the
global batch before the key encoder and restores the order afterwards, so the statistics of a
key come from another subset of samples than those of its query:

    x̃ = gather(x)[π],   k = unshuffle(gather(f_k(x̃ on this rank's share)), π⁻¹) on this rank's rows

π is a permutation of the global batch of B = W·n samples drawn from a generator seeded by
``seed``, identical on every rank (the paper's code draws it on rank 0 and broadcasts it). Rank r
encodes the shuffled rows r, r + W, … (the trainer's sharding, :func:`selfsup.training.distributed.shard`).
In one process (W = 1) the shuffle is within the batch: what matters with
:class:`selfsup.models.batchnorm.SplitBatchNorm`, whose groups then stand for the devices. Under
``torch.distributed`` all ranks' inputs and all keys are gathered (no gradient); the encoder
must be the same per-sample function on every rank for the keys to be the unshuffled encoding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from selfsup.models.gather import gather_global


def shuffle_permutation(count: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """π, a permutation of ``range(count)`` that depends on ``seed`` only (the same on every rank)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator).to(device)


@torch.no_grad()
def shuffled_encode(encoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seed: int) -> torch.Tensor:
    """``encoder`` applied to this rank's share of the shuffled global batch, then unshuffled:
    rows of ``x (n, ...)`` in, their encodings ``(n, ...)`` out, each computed among other samples
    than its neighbours in ``x``. Every rank must call it with the same ``seed`` and ``n``."""
    from selfsup_kernels.distributed import world

    rank, size = world()
    everything = gather_global(x)
    permutation = shuffle_permutation(everything.shape[0], seed, x.device)
    encoded = gather_global(encoder(everything[permutation[rank::size]]))
    return encoded[torch.argsort(permutation)][rank::size]
