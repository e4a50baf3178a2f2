"""Fine-tuning the way ULMFiT does it (Howard & Ruder 2018, "Universal Language Model Fine-tuning
for Text Classification", arXiv:1801.06146, §3.2–3.3), for image backbones.

- **Layer groups**: the backbone split from input to output (stem, then each stage), plus the new
  classifier head on top.
- **Discriminative learning rates**: group ``l`` of ``L`` (head = ``L − 1``) trains at
  ``lr / factor^(L − 1 − l)`` with ``factor = 2.6``.
- **Gradual unfreezing**: epoch 0 trains only the head; each later epoch unfreezes the next group
  down, until all train. Frozen groups also keep their BatchNorm statistics (eval mode).
- **One-cycle** schedule (Smith 2018, arXiv:1803.09820) over all steps, each group peaking at its
  own discriminative rate (ULMFiT's slanted triangular rates, as implemented in fastai).

:func:`train_from_scratch` is the baseline of EVALUATION.md: the same architecture, labels and
budget, all layers at ``lr`` from random init.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.models.inputs import device_of, images_to_tensor


@dataclass
class FineTuneConfig:
    epochs: int = 6
    batch_size: int = 32
    lr: float = 3e-3
    factor: float = 2.6
    weight_decay: float = 1e-4
    gradual_unfreezing: bool = True
    discriminative: bool = True
    seed: int = 0

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs, batch_size: expected positive ints, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0 or self.factor < 1:
            raise ValueError(f"lr, factor: expected lr > 0 and factor >= 1, got {self.lr}, {self.factor}")


def layer_groups(backbone: nn.Module) -> list[nn.Module]:
    """Input-to-output groups: torchvision ResNets → stem, layer1..layer4; :class:`SmallResNet` →
    stem and one group per stage width; otherwise the backbone's direct children with parameters."""
    if all(hasattr(backbone, name) for name in ("conv1", "bn1", "layer1", "layer4")):
        stem = nn.ModuleList([backbone.conv1, backbone.bn1])  # type: ignore[list-item]
        return [stem, *(getattr(backbone, f"layer{i}") for i in range(1, 5))]
    if hasattr(backbone, "stem") and hasattr(backbone, "stages"):
        groups: list[list[nn.Module]] = []
        width = None
        for block in backbone.stages:  # type: ignore[union-attr]
            out = block.conv2.out_channels
            if out != width:
                groups.append([])
                width = out
            groups[-1].append(block)
        return [backbone.stem, *(nn.ModuleList(g) for g in groups)]  # type: ignore[list-item]
    children = [m for m in backbone.children() if any(p.requires_grad for p in m.parameters())]
    return children or [backbone]


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        out_dim = getattr(backbone, "out_dim", None)
        if not isinstance(out_dim, int):
            raise ValueError("backbone: expected an integer out_dim attribute")
        self.backbone = backbone
        self.head = nn.Linear(out_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.backbone(x))
        return logits


def discriminative_rates(lr: float, groups: int, factor: float) -> list[float]:
    """``lr / factor^(groups − 1 − l)`` for ``l = 0..groups−1`` (the last group is the head)."""
    return [lr / factor ** (groups - 1 - level) for level in range(groups)]


def _fit(
    model: Classifier,
    groups: list[nn.Module],
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    config: FineTuneConfig,
    rates: list[float],
    gradual: bool,
) -> list[dict[str, float]]:
    n = len(images)
    per_epoch = max(1, -(-n // config.batch_size))
    optimizer = torch.optim.AdamW(
        [{"params": list(g.parameters()), "lr": r} for g, r in zip(groups, rates)], weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=rates, total_steps=config.epochs * per_epoch)
    rng = np.random.default_rng(config.seed)
    device = device_of(model)
    history = []
    for epoch in range(config.epochs):
        trainable = min(len(groups), epoch + 1) if gradual else len(groups)
        for level, group in enumerate(groups):
            active = level >= len(groups) - trainable
            group.requires_grad_(active)
            group.train(active)
        order = rng.permutation(n)
        total, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            logits = model(images_to_tensor(images[idx], device))
            target = torch.from_numpy(labels[idx]).to(device)
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == target).sum())
        history.append({"epoch": epoch, "trainable_groups": trainable, "loss": total / n, "accuracy": correct / n})
    model.requires_grad_(True)
    recompute_batchnorm(model, images, config.batch_size)
    model.eval()
    return history


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, images: npt.NDArray[np.uint8], batch_size: int) -> None:
    """Replaces BatchNorm running statistics by their exact average over ``images`` ("precise BN",
    Wu & Johnson 2021, arXiv:2105.07576): a few fine-tuning steps leave the exponential moving
    averages far from the statistics the final weights produce."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes below
    model.train()
    device = device_of(model)
    for start in range(0, len(images), batch_size):
        model(images_to_tensor(images[start : start + batch_size], device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def finetune(
    backbone: nn.Module, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], num_classes: int, config: FineTuneConfig
) -> tuple[Classifier, list[dict[str, float]]]:
    """Fine-tunes ``backbone`` with a new linear head on labeled uint8 images, on the device the
    backbone is on. Returns the classifier (in eval mode) and per-epoch training metrics."""
    config.validate()
    torch.manual_seed(config.seed)
    model = Classifier(backbone, num_classes).to(device_of(backbone))
    groups = [*layer_groups(backbone), model.head]
    rates = discriminative_rates(config.lr, len(groups), config.factor if config.discriminative else 1.0)
    return model, _fit(model, groups, images, labels, config, rates, config.gradual_unfreezing)


def train_from_scratch(
    backbone: nn.Module, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], num_classes: int, config: FineTuneConfig
) -> tuple[Classifier, list[dict[str, float]]]:
    """The baseline: same architecture and budget, every layer trained at ``lr`` from the start."""
    config.validate()
    torch.manual_seed(config.seed)
    model = Classifier(backbone, num_classes).to(device_of(backbone))
    groups = [*layer_groups(backbone), model.head]
    return model, _fit(model, groups, images, labels, config, [config.lr] * len(groups), gradual=False)


@torch.no_grad()
def accuracy(model: nn.Module, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], batch_size: int = 256) -> float:
    model.eval()
    device = device_of(model)
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images_to_tensor(images[start : start + batch_size], device))
        correct += int((logits.argmax(1).cpu() == torch.from_numpy(labels[start : start + batch_size])).sum())
    return correct / len(images)
