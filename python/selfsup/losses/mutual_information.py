"""Deep InfoMax's mutual-information lower bounds: Jensen–Shannon, Donsker–Varadhan and InfoNCE
(Hjelm et al. 2019, arXiv:1808.06670, eqs. 2–5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ESTIMATORS = ("jsd", "infonce", "dv")


def pair_scores(local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
    """T for every location and pair: ``local (N, M, S)``, ``global_ (N, S)`` → ``(M, N, N)``,
    ``[i, n, m] = local[n, i] · global_[m]`` (positives on the diagonal)."""
    return torch.einsum("nis,ms->inm", local, global_)


def jsd_bound(scores: torch.Tensor) -> torch.Tensor:
    """Eq. 4 on scores ``(M, N, N)`` (positives on the diagonal): E_P[−sp(−T)] − E_{P×P̃}[sp(T)]."""
    positive, negative = split_pairs(scores)
    return -F.softplus(-positive).mean() - F.softplus(negative).mean()


def dv_bound(scores: torch.Tensor) -> torch.Tensor:
    """Donsker–Varadhan on scores ``(M, N, N)``: E_P[T] − log E_{P×P̃}[e^T]."""
    positive, negative = split_pairs(scores)
    return positive.mean() - (torch.logsumexp(negative, dim=0) - math.log(negative.numel()))


def infonce_bound(local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
    """Eq. 5 for ``local (N, M, S)`` and ``global_ (N, S)``, mean over the M locations: at each location
    the InfoNCE of the local features against all global features, the image's own as positive."""
    from selfsup_kernels import info_nce

    losses = [info_nce(local[:, i], global_, temperature=1.0, normalize=False) for i in range(local.shape[1])]
    return -torch.stack(losses).mean()


def split_pairs(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(M, N, N)`` → (positives ``(M·N,)``, negatives ``(M·N·(N − 1),)``)."""
    n = scores.shape[-1]
    if n < 2:
        raise ValueError(f"scores: expected at least 2 images for negative pairs, got {n}")
    same = torch.eye(n, dtype=torch.bool, device=scores.device).expand_as(scores)
    return scores[same], scores[~same]


def mi_bound(local: torch.Tensor, global_: torch.Tensor, estimator: str) -> torch.Tensor:
    """The lower bound ``estimator`` of the mutual information between ``local (N, M, S)`` and
    ``global_ (N, S)`` score embeddings (to be maximised)."""
    if estimator == "infonce":
        return infonce_bound(local, global_)
    scores = pair_scores(local, global_)
    if estimator == "jsd":
        return jsd_bound(scores)
    if estimator == "dv":
        return dv_bound(scores)
    raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
