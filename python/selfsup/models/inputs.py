"""uint8 images to network inputs: the channel standardisation every method and evaluation share."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

CHANNEL_MEAN = (0.5, 0.5, 0.5)

CHANNEL_STD = (0.25, 0.25, 0.25)


def images_to_tensor(images: npt.NDArray[Any], device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` (or float tiles) → contiguous float32 ``(N, C, H, W)``; uint8 is
    scaled to [0, 1] and standardised with ``CHANNEL_MEAN``/``CHANNEL_STD``; float input is taken
    as already standardised. Contiguous, not a channels-last view: torch 2.15's oneDNN convolution
    backward corrupts the heap on channels-last inputs to narrow layers (4 channels) on CPU."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    tensor = tensor.movedim(-1, -3)
    if tensor.dtype == torch.uint8:
        channels = tensor.shape[-3]
        mean = torch.tensor(CHANNEL_MEAN[:channels], device=tensor.device).view(-1, 1, 1)
        std = torch.tensor(CHANNEL_STD[:channels], device=tensor.device).view(-1, 1, 1)
        tensor = (tensor.float() / 255.0 - mean) / std
    return tensor.float().contiguous()


def device_of(module: torch.nn.Module) -> torch.device:
    """Where ``module``'s parameters are (the CPU for a module without any)."""
    return next(iter(module.parameters()), torch.empty(0)).device
