"""SwAV's Sinkhorn-Knopp codes and swapped prediction (Caron et al. 2020, arXiv:2006.09882, §3.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3, shared_rows: int = 0) -> torch.Tensor:
    """Codes ``(B, K)`` for prototype scores ``(B, K)`` (B samples, K prototypes) by Sinkhorn-Knopp
    (Caron et al. 2020, §3.1 and the code's ``distributed_sinkhorn``): Q = exp(S/ε)ᵀ ``(K, B)``
    scaled to sum to 1, then ``iterations`` times: each row (prototype) to 1/K, each column
    (sample) to 1/B; finally each column to 1, so a code is a distribution over prototypes. In
    float64, with the global maximum subtracted first (a common factor the first scaling removes).

    Under ``torch.distributed`` B counts every rank's samples and the per-prototype sums are
    all-reduced; the first ``shared_rows`` rows (a queue every rank holds identically) are counted
    once.

    Raises:
        ValueError: ε ≤ 0, ``iterations`` < 1, scores not 2-d, ``shared_rows`` outside [0, B].
    """
    from selfsup_kernels.distributed import all_reduce, world

    if not epsilon > 0:
        raise ValueError(f"epsilon: expected > 0, got {epsilon}")
    if iterations < 1:
        raise ValueError(f"iterations: expected at least 1, got {iterations}")
    if scores.ndim != 2:
        raise ValueError(f"scores: expected (B, K), got {tuple(scores.shape)}")
    if not 0 <= shared_rows <= scores.shape[0]:
        raise ValueError(f"shared_rows: expected 0 to {scores.shape[0]}, got {shared_rows}")
    _, ranks = world()

    def per_prototype(q: torch.Tensor) -> torch.Tensor:
        return all_reduce(q[:, shared_rows:].sum(1, keepdim=True)) + q[:, :shared_rows].sum(1, keepdim=True)

    logits = scores.double() / epsilon
    q = torch.exp(logits - all_reduce(logits.max(), torch.distributed.ReduceOp.MAX)).T
    prototypes = q.shape[0]
    samples = shared_rows + ranks * (q.shape[1] - shared_rows)
    q /= per_prototype(q).sum()
    for _ in range(iterations):
        q /= per_prototype(q) * prototypes
        q /= q.sum(0, keepdim=True) * samples
    return (q * samples).T.float()


def swapped_prediction_loss(scores: torch.Tensor, codes: torch.Tensor, temperature: float) -> torch.Tensor:
    """L for prototype ``scores (V, N, K)`` of every crop and ``codes (G, N, K)`` of the first G
    crops: the mean over code crops s of the mean over the other crops t of the batch mean of
    −Σ_k q_s^(k) log softmax(scores_t / τ)^(k)."""
    views = scores.shape[0]
    if views < 2 or codes.shape[0] > views or codes.shape[1:] != scores.shape[1:]:
        raise ValueError(f"codes: expected (G ≤ V, N, K) codes for scores (V ≥ 2, N, K) {tuple(scores.shape)}, got {tuple(codes.shape)}")
    log_p = F.log_softmax(scores.to(torch.promote_types(scores.dtype, torch.float32)) / temperature, dim=-1)
    total = log_p.new_zeros(())
    for s in range(codes.shape[0]):
        others = [t for t in range(views) if t != s]
        total = total - (codes[s] * log_p[others]).sum(-1).mean(-1).sum() / len(others)
    return total / codes.shape[0]
