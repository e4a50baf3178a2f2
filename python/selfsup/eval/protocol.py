"""The evaluation protocol of EVALUATION.md: frozen features of a fixed train/test split, the same
probe for every backbone, labeled subsets of 1/5/10/all per class over several seeds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.eval.knn import knn_predict
from selfsup.eval.probe import linear_probe_accuracy
from selfsup.eval.subsets import labeled_subset
from selfsup.models.inputs import device_of, images_to_tensor
from selfsup.models.lightness import input_channels, lightness, lightness_to_tensor


def backbone_inputs(backbone: nn.Module, images: npt.NDArray[np.uint8], device: str | torch.device = "cpu") -> torch.Tensor:
    """What ``backbone`` expects of uint8 images: the standardised pixels, or for a backbone whose
    first convolution takes one channel and RGB images, their CIE L (a colorization backbone)."""
    if images.ndim == 4 and images.shape[-1] == 3 and input_channels(backbone) == 1:
        return lightness_to_tensor(lightness(images), device)
    return images_to_tensor(images, device)


@torch.no_grad()
def extract_features(
    backbone: nn.Module, images: npt.NDArray[np.uint8], batch_size: int = 256, device: str | torch.device | None = None
) -> torch.Tensor:
    """Backbone features ``(N, out_dim)`` on the CPU of uint8 images (see :func:`backbone_inputs`),
    in eval mode (BatchNorm running stats), computed on ``device`` (default: where the backbone's
    parameters are)."""
    if device is None:
        device = device_of(backbone)
    was_training = backbone.training
    backbone.eval()
    try:
        chunks = [backbone(backbone_inputs(backbone, images[i : i + batch_size], device)).float().cpu() for i in range(0, len(images), batch_size)]
    finally:
        backbone.train(was_training)
    return torch.cat(chunks)


def shot_name(per_class: int | None) -> str:
    return "all" if per_class is None else str(per_class)


def probe_table(
    train_features: torch.Tensor,
    train_labels: npt.NDArray[np.int64],
    test_features: torch.Tensor,
    test_labels: npt.NDArray[np.int64],
    shots: Sequence[int | None] = (1, 5, 10, None),
    seeds: Sequence[int] = (0, 1, 2),
) -> dict[str, Any]:
    """Linear-probe accuracy (mean, std over ``seeds``) per labeled-subset size, and weighted kNN
    (k=20, T=0.07) with all labels. Subsets of "all" are the same for every seed, so it runs once."""
    classes = int(max(train_labels.max(), test_labels.max()) + 1)
    y_test = torch.from_numpy(test_labels)
    table: dict[str, Any] = {"linear": {}}
    for per_class in shots:
        runs = []
        for seed in seeds if per_class is not None else seeds[:1]:
            chosen = labeled_subset(train_labels, per_class, seed)
            runs.append(
                linear_probe_accuracy(
                    train_features[chosen], torch.from_numpy(train_labels[chosen]), test_features, y_test, num_classes=classes
                )
            )
        table["linear"][shot_name(per_class)] = {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}
    knn = knn_predict(train_features, torch.from_numpy(train_labels), test_features, k=20, temperature=0.07, num_classes=classes)
    table["knn_all"] = float((knn == y_test).double().mean())
    return table


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """Rows of :func:`probe_table` as a plain-text table: the probe per shot (mean ± std) and kNN."""
    shots = list(next(iter(rows.values()))["linear"].keys())
    header = f"{'backbone':<22}" + "".join(f"{s + ' / class':>16}" for s in shots) + f"{'kNN all':>10}"
    lines = [header, "-" * len(header)]
    for name, table in rows.items():
        cells = "".join(f"{table['linear'][s]['mean']:>10.3f} ±{table['linear'][s]['std']:.3f}" for s in shots)
        lines.append(f"{name:<22}{cells}{table['knn_all']:>10.3f}")
    return "\n".join(lines)
