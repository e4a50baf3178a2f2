"""Backbones (feature extractors with an ``out_dim``) and heads."""

from selfsup.models.backbones import SmallResNet, resnet18, resnet50, small_resnet, vit
from selfsup.models.heads import LinearHead, ProjectionHead
from selfsup.models.vit import ViT, vit_tiny

__all__ = ["LinearHead", "ProjectionHead", "SmallResNet", "ViT", "resnet18", "resnet50", "small_resnet", "vit", "vit_tiny"]
