"""MixMatch (Berthelot et al. 2019, arXiv:1905.02249, Algorithm 1 and eqs. 2–5): sharpening,
MixUp with λ' = max(λ, 1 − λ), the two losses and the ramp-up of the unlabelled weight.

- Sharpen(p, T)_i = p_i^{1/T} / Σ_j p_j^{1/T} (eq. 7).
- MixUp: λ ~ Beta(α, α), λ' = max(λ, 1 − λ), x' = λ' x₁ + (1 − λ') x₂, p' = λ' p₁ + (1 − λ') p₂
  (eqs. 8–11): the mixed input stays closer to its first argument.
- L_X = 1/|X'| Σ H(p, p_model(y | x)); L_U = 1/(L |U'|) Σ ‖q − p_model(y | u)‖²₂ (eqs. 3–4), L the
  number of classes; the total is L_X + λ_U · L_U with λ_U ramped up linearly (the code's
  ``linear_rampup`` over the first 16 epochs).

Per sample: nothing is gathered across ranks (the labels guessed for a batch depend only on it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.losses.fixmatch import check_logits


def sharpen(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sharpen(p, T) over the last dimension.

    Raises:
        ValueError: ``temperature`` ≤ 0; negative probabilities.
    """
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    if (probabilities < 0).any():
        raise ValueError("probabilities: expected non-negative values")
    powered = probabilities.pow(1.0 / temperature)
    return powered / powered.sum(dim=-1, keepdim=True)


def mixup(
    inputs: torch.Tensor, targets: torch.Tensor, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """``(mixed inputs, mixed targets, λ', permutation)``: every row mixed with row
    ``permutation[i]`` of the same batch at λ' = max(λ, 1 − λ), λ ~ Beta(α, α) and the
    permutation drawn from ``rng`` (one λ per batch, as the code).

    Raises:
        ValueError: ``alpha`` ≤ 0; inputs and targets of other lengths; an empty batch.
    """
    if not alpha > 0:
        raise ValueError(f"alpha: expected > 0, got {alpha}")
    if inputs.shape[0] != targets.shape[0] or inputs.shape[0] == 0:
        raise ValueError(f"targets: expected one row per input ({inputs.shape[0]}), got {targets.shape[0]}")
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    order = torch.from_numpy(rng.permutation(inputs.shape[0])).to(inputs.device)
    return lam * inputs + (1 - lam) * inputs[order], lam * targets + (1 - lam) * targets[order], lam, order


def mixmatch_losses(
    labelled_logits: torch.Tensor, labelled_targets: torch.Tensor, unlabelled_logits: torch.Tensor, unlabelled_targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_X, L_U)`` (module docstring) for logits ``(N, L)`` and soft targets ``(N, L)``.

    Raises:
        ValueError: bad logits or targets of another shape.
    """
    check_logits("labelled_logits", labelled_logits)
    check_logits("unlabelled_logits", unlabelled_logits)
    for name, targets, logits in (("labelled_targets", labelled_targets, labelled_logits), ("unlabelled_targets", unlabelled_targets, unlabelled_logits)):
        if targets.shape != logits.shape:
            raise ValueError(f"{name}: expected soft targets of shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
    supervised = -(labelled_targets * F.log_softmax(labelled_logits, dim=1)).sum(dim=1).mean()
    unsupervised = (torch.softmax(unlabelled_logits, dim=1) - unlabelled_targets).pow(2).mean()
    return supervised, unsupervised


def linear_rampup(step: int, length: int) -> float:
    """min(step / length, 1): the weight of L_U ramps up linearly over ``length`` steps (1 when
    ``length`` is 0)."""
    if length < 0:
        raise ValueError(f"length: expected >= 0, got {length}")
    return 1.0 if length == 0 else min(max(step / length, 0.0), 1.0)
