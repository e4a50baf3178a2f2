"""Backbones: ``nn.Module`` feature extractors ``(N, C, H, W) -> (N, out_dim)``, random init.

- :class:`SmallResNet`: a 4-stage ResNet with a 3×3 stem for 32-px inputs, practical on a CPU.
- :func:`resnet18` / :func:`resnet50`: torchvision's ResNets (He et al. 2016, arXiv:1512.03385)
  with the classifier removed; ``small_inputs=True`` swaps the 7×7/2 stem and max-pool for a 3×3/1
  stem, the usual CIFAR variant.
- :func:`vit`: torchvision's VisionTransformer (Dosovitskiy et al. 2021, arXiv:2010.11929), the
  class token as feature.

No weights are downloaded. ``export`` of a torchvision backbone gives a ``state_dict`` that loads
into the torchvision model (``strict=False`` for the removed classifier).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """Stem 3×3 conv, four stages of ``blocks`` basic blocks with widths ``w, 2w, 4w, 8w`` (strides
    1, 2, 2, 2), global average pooling. ``out_dim = 8w``."""

    def __init__(self, width: int = 32, blocks: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        if width < 1 or blocks < 1 or in_channels < 1:
            raise ValueError(f"width, blocks, in_channels: expected positive ints, got {width}, {blocks}, {in_channels}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages: list[nn.Module] = []
        channels = width
        for stage, mult in enumerate((1, 2, 4, 8)):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                stages.append(BasicBlock(channels, width * mult, stride))
                channels = width * mult
        self.stages = nn.Sequential(*stages)
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.stages(self.stem(x)).mean(dim=(2, 3))
        return features


def small_resnet(width: int = 32, blocks: int = 1, in_channels: int = 3) -> SmallResNet:
    return SmallResNet(width, blocks, in_channels)


def _torchvision_resnet(name: str, small_inputs: bool) -> nn.Module:
    import torchvision

    model: nn.Module = getattr(torchvision.models, name)(weights=None)
    if small_inputs:
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    fc = model.fc
    assert isinstance(fc, nn.Linear)
    setattr(model, "out_dim", fc.in_features)
    model.fc = nn.Identity()
    return model


def resnet18(small_inputs: bool = False) -> nn.Module:
    return _torchvision_resnet("resnet18", small_inputs)


def resnet50(small_inputs: bool = False) -> nn.Module:
    return _torchvision_resnet("resnet50", small_inputs)


def vit(image_size: int = 224, patch_size: int = 16, layers: int = 12, heads: int = 6, hidden: int = 384) -> nn.Module:
    """ViT-S/16 by default; ``out_dim = hidden``."""
    from torchvision.models.vision_transformer import VisionTransformer

    model: nn.Module = VisionTransformer(image_size, patch_size, layers, heads, hidden, 4 * hidden)
    model.heads = nn.Identity()
    setattr(model, "out_dim", hidden)
    return model


@hookimpl
def selfsup_register_backbones(register: Register) -> None:
    register(small_resnet, name="small_resnet")
    register(resnet18, name="resnet18")
    register(resnet50, name="resnet50")
    register(vit, name="vit", aliases=("vit_small",))
