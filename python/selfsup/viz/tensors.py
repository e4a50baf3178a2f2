"""Turning standardised network tensors back into pictures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD


def to_image(tensor: torch.Tensor) -> npt.NDArray[np.uint8]:
    """``(C, H, W)`` standardised (as produced by ``images_to_tensor``) → uint8 ``(H, W, C)``."""
    c = tensor.shape[0]
    mean = torch.tensor(CHANNEL_MEAN[:c]).view(-1, 1, 1)
    std = torch.tensor(CHANNEL_STD[:c]).view(-1, 1, 1)
    pixels = ((tensor.detach().float().cpu() * std + mean).clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).numpy())
