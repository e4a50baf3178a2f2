"""Instance discrimination against a memory bank: the full softmax (Wu et al. 2018, arXiv:1805.01978, eq. 2), its NCE
approximation (eqs. 5–8) and InfoNCE against sampled bank rows (CMC, PIRL)."""

from __future__ import annotations

import math

import torch

from selfsup.models.memory_bank import MemoryBank


def instance_softmax_loss(q: torch.Tensor, positives: torch.Tensor, bank: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean of −log P(i | q_i) (eq. 2) for queries ``q (N, D)`` whose bank rows are ``positives
    (N, D)`` (rows of ``bank (n, D)``), every bank row counted once in the denominator."""
    from selfsup_kernels import info_nce

    doubled = info_nce(q, positives, bank, temperature, batch_negatives=False, reduction="none")
    return (doubled + torch.log1p(-torch.exp(-doubled))).mean()


def nce_loss(
    q: torch.Tensor, positives: torch.Tensor, noise: torch.Tensor, normalizer: float, size: int, temperature: float
) -> torch.Tensor:
    """J_NCE (eqs. 5–7) of queries ``q (N, D)`` against their bank rows ``positives (N, D)`` and
    the ``noise (m, D)`` rows drawn uniformly from a bank of ``size`` rows, with P(i|v) =
    exp(vᵢᵀv/τ)/``normalizer``; mean over the batch of the positive term plus the m noise terms."""
    log_noise = math.log(noise.shape[0] / size)
    log_z = math.log(normalizer)
    data = (q * positives).sum(1) / temperature - log_z
    noise_logits = q @ noise.T / temperature - log_z
    log_h_data = data - torch.logaddexp(data, torch.full_like(data, log_noise))
    log_noise_is_noise = log_noise - torch.logaddexp(noise_logits, torch.full_like(noise_logits, log_noise))
    return -(log_h_data + log_noise_is_noise.sum(1)).mean()


@torch.no_grad()
def estimate_normalizer(q: torch.Tensor, noise: torch.Tensor, size: int, temperature: float) -> float:
    """Z ≈ n·mean over the batch and the noise rows of exp(vⱼᵀf_i/τ) (eq. 8), averaged over ranks."""
    from selfsup_kernels.distributed import all_reduce, world

    mean = all_reduce((q.detach().float() @ noise.float().T / temperature).exp().mean())
    return float(mean) / world()[1] * size


def bank_info_nce(
    anchors: torch.Tensor, bank: MemoryBank, indices: torch.Tensor, negatives: int, step: int, temperature: float, seed: int = 0
) -> torch.Tensor:
    """InfoNCE of ``anchors (N, D)`` against a memory bank: the positive of anchor ``i`` is the bank
    row of its own sample ``indices[i]``, the negatives are ``negatives`` rows drawn by
    :meth:`MemoryBank.sample` from ``(seed, step)`` and shared by all anchors,

        ℓ_i = −log  exp(a_i·v_{idx_i}/τ) / ( exp(a_i·v_{idx_i}/τ) + Σ_{j ∈ S} exp(a_i·v_j/τ) ),

    averaged over the anchors (ℓ2-normalised first) through :func:`selfsup_kernels.info_nce`. Bank
    rows carry no gradient; as in the papers' code a drawn row may be the positive's own."""
    from selfsup_kernels import info_nce

    drawn = bank.bank[bank.sample(negatives, step, seed)]
    return info_nce(anchors, bank.rows(indices).to(anchors.dtype), drawn.to(anchors.dtype), temperature, batch_negatives=False)
