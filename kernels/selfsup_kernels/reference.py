"""Naive implementations that materialise all logits: the test oracle and the benchmark baseline.

Same signatures as the fused losses (minus ``backend``/``chunk``); written from the papers'
equations with full matrices, independently of the chunked core.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F



def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float | torch.Tensor = 0.1, normalize: bool = True) -> torch.Tensor:
    """Per-anchor NT-Xent losses ``(2N,)``: anchor order ``z1`` then ``z2``."""
    z = torch.cat([z1, z2]).to(_compute_dtype(z1.dtype))
    if normalize:
        z = F.normalize(z, dim=1)
    n = z1.shape[0]
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets, reduction="none")


def info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 0.07,
    normalize: bool = True,
    batch_negatives: bool | None = None,
) -> torch.Tensor:
    """Per-query InfoNCE losses ``(N,)``."""
    dt = _compute_dtype(q.dtype)
    q, k = q.to(dt), k.to(dt)
    neg = None if negatives is None else negatives.to(dt)
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        neg = None if neg is None else F.normalize(neg, dim=1)
    in_batch = negatives is None if batch_negatives is None else batch_negatives
    if in_batch:
        columns = k if neg is None else torch.cat([k, neg])
        logits = q @ columns.T / temperature
        return F.cross_entropy(logits, torch.arange(q.shape[0], device=q.device), reduction="none")
    assert neg is not None
    positive = (q * k).sum(1, keepdim=True)
    logits = torch.cat([positive, q @ neg.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device), reduction="none")


def sup_con(z: torch.Tensor, labels: torch.Tensor, temperature: float | torch.Tensor = 0.1, normalize: bool = True) -> torch.Tensor:
    """Per-anchor SupCon losses ``(N·V,)``, anchors ordered view-major; NaN-free: anchors without
    a positive get loss 0 (the fused loss leaves them out of the mean)."""
    n, v, _ = z.shape
    feats = torch.cat(torch.unbind(z.to(_compute_dtype(z.dtype)), dim=1))
    if normalize:
        feats = F.normalize(feats, dim=1)
    y = labels.repeat(v)
    logits = feats @ feats.T / temperature
    self_mask = torch.eye(n * v, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y.unsqueeze(0) == y.unsqueeze(1)) & ~self_mask
    count = positives.sum(1)
    summed = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(1)
    return torch.where(count > 0, -summed / count.clamp_min(1), torch.zeros_like(summed))
