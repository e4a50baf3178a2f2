"""Local Aggregation's close-neighbour likelihood ratio (Zhuang et al. 2019, arXiv:1903.12355, eq. 3)."""

from __future__ import annotations

import math

import torch

RATIO_FLOOR = 1e-7
"""Added to P(C ∩ B | v)/P(B | v) before the log, as in the reference code."""


def local_aggregation_loss(
    q: torch.Tensor,
    bank: torch.Tensor,
    cluster_labels: torch.Tensor,
    indices: torch.Tensor,
    background: int,
    temperature: float,
    chunk: int = 1024,
) -> torch.Tensor:
    """Mean over queries ``q (N, D)`` (samples ``indices (N,)``) of −log(P(C ∩ B | q)/P(B | q) +
    10⁻⁷), with B the ``background`` rows of ``bank (n, D)`` most similar to q and C the samples
    sharing a cluster with the query's sample in any row of ``cluster_labels (H, n)``."""
    own = cluster_labels[:, indices]
    losses = []
    for start in range(0, q.shape[0], chunk):
        stop = start + chunk
        similarity = (q[start:stop].float() @ bank.float().T) / temperature
        values, neighbours = similarity.topk(background, dim=1)
        close = (cluster_labels[:, neighbours] == own[:, start:stop, None]).any(dim=0)
        log_background = torch.logsumexp(values, dim=1)
        log_close = torch.logsumexp(values.masked_fill(~close, torch.finfo(values.dtype).min), dim=1)
        ratio = log_close - log_background
        losses.append(-torch.logaddexp(ratio, torch.full_like(ratio, math.log(RATIO_FLOOR))))
    return torch.cat(losses).mean()
