"""A small (2+1)D ResNet for clips (Tran, Wang, Torresani, Ray, LeCun & Paluri 2018, "A Closer
Look at Spatiotemporal Convolutions for Action Recognition", arXiv:1711.11248).

Every 3×3×3 convolution is factored into a 1×3×3 spatial one and a 3×1×1 temporal one with
BatchNorm and ReLU between them. Stem, four stages of one residual block each (widths w, 2w, 4w,
8w; spatial strides 1, 2, 2, 2, time kept), global average pooling over time and space:
clips ``(N, 3, T, H, W)`` → ``(N, 8w)``. A single frame ``(N, 3, H, W)`` is a clip of one frame,
so image probes and image methods work on it unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl


class Conv2Plus1d(nn.Sequential):
    """A 1×k×k spatial convolution, BatchNorm, ReLU, then a k×1×1 temporal convolution."""

    def __init__(self, inputs: int, outputs: int, spatial_stride: int = 1) -> None:
        middle = max(outputs, inputs)
        super().__init__(
            nn.Conv3d(inputs, middle, (1, 3, 3), (1, spatial_stride, spatial_stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(middle),
            nn.ReLU(inplace=True),
            nn.Conv3d(middle, outputs, (3, 1, 1), 1, (1, 0, 0), bias=False),
        )


class Block2Plus1d(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = Conv2Plus1d(inputs, outputs, stride)
        self.bn1 = nn.BatchNorm3d(outputs)
        self.conv2 = Conv2Plus1d(outputs, outputs)
        self.bn2 = nn.BatchNorm3d(outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv3d(inputs, outputs, 1, (1, stride, stride), bias=False), nn.BatchNorm3d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallR2Plus1d(nn.Module):
    """See the module docstring; ``out_dim = 8·width``."""

    def __init__(self, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        if width < 1 or in_channels < 1:
            raise ValueError(f"width, in_channels: expected positive ints, got {width}, {in_channels}")
        self.stem = nn.Sequential(Conv2Plus1d(in_channels, width), nn.BatchNorm3d(width), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        channels = width
        for stage, mult in enumerate((1, 2, 4, 8)):
            stages.append(Block2Plus1d(channels, width * mult, 2 if stage else 1))
            channels = width * mult
        self.stages = nn.Sequential(*stages)
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x[:, :, None]
        if x.ndim != 5:
            raise ValueError(f"x: expected clips (N, C, T, H, W) or images (N, C, H, W), got shape {tuple(x.shape)}")
        features: torch.Tensor = self.stages(self.stem(x)).mean(dim=(2, 3, 4))
        return features


def small_r2plus1d(width: int = 16, in_channels: int = 3) -> SmallR2Plus1d:
    return SmallR2Plus1d(width, in_channels)


@hookimpl
def selfsup_register_backbones(register: Register) -> None:
    register(small_r2plus1d, name="small_r2plus1d", aliases=("r2plus1d",))
