"""MAE's reconstruction loss on the masked patches (He et al. 2021, arXiv:2111.06377, §3)."""

from __future__ import annotations

import torch


def masked_patch_loss(prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked patches ``masked (N, M)`` only, averaged over their
    pixels: ``prediction``, ``target`` ``(N, L, P)``."""
    index = masked.unsqueeze(-1).expand(-1, -1, target.shape[-1])
    return (prediction.gather(1, index) - target.gather(1, index)).pow(2).mean()
