"""Backbones that see the lightness channel only (colorization): the L of CIE Lab as a network input.

A colorization backbone is built with ``in_channels=1`` and fed ``(L / 100 − 0.5) / 0.25``, the
scale :func:`selfsup.models.inputs.images_to_tensor` gives to pixels, so the same optimiser settings
suit it. Feature extraction for probing (:func:`selfsup.eval.protocol.extract_features`) feeds such
a backbone the L of the RGB images too: it is probed on what it was trained to see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

import selfsup.ops as ops

LIGHTNESS_MEAN = 0.5
LIGHTNESS_STD = 0.25


def input_channels(backbone: nn.Module) -> int | None:
    """Input channels of the backbone's first convolution, or ``None`` when it has none."""
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    return None


def lightness(images: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """CIE L in [0, 100] ``(N, H, W)`` of uint8 RGB ``(N, H, W, 3)`` (native ``rgb_to_lab``).

    Raises:
        ValueError: images that are not ``(N, H, W, 3)``.
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected RGB images (N, H, W, 3), got shape {tuple(images.shape)}")
    lab: npt.NDArray[np.float32] = ops.rgb_to_lab(images)
    return np.ascontiguousarray(lab[..., 0])


def lightness_to_tensor(lightness_values: npt.NDArray[np.float32], device: torch.device | str = "cpu") -> torch.Tensor:
    """L in [0, 100] ``(N, H, W)`` → standardised float32 ``(N, 1, H, W)``."""
    tensor = torch.from_numpy(np.ascontiguousarray(lightness_values, dtype=np.float32)).to(device)
    return ((tensor / 100.0 - LIGHTNESS_MEAN) / LIGHTNESS_STD).unsqueeze(1)


def tensor_to_lightness(tensor: torch.Tensor) -> npt.NDArray[np.float32]:
    """Inverse of :func:`lightness_to_tensor`: ``(N, 1, H, W)`` → L ``(N, H, W)``."""
    values = (tensor.detach().float().cpu()[:, 0] * LIGHTNESS_STD + LIGHTNESS_MEAN) * 100.0
    out: npt.NDArray[np.float32] = values.numpy()
    return out
