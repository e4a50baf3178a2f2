"""Weighted k-nearest-neighbour classification of features (Wu et al. 2018, "Unsupervised
Feature Learning via Non-Parametric Instance Discrimination", arXiv:1805.01978, §3.4).

Features are L2-normalised; the ``k`` most cosine-similar training examples vote for their class
with weight ``exp(s / T)``; the class with the largest total wins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class predictions ``(M,)`` for ``test_features (M, D)`` from ``train_features (N, D)``.

    Raises:
        ValueError: empty inputs, mismatched shapes, ``k`` < 1, ``temperature`` ≤ 0.
    """
    if train_features.ndim != 2 or train_features.shape[0] == 0:
        raise ValueError(f"train_features: expected a non-empty (N, D) tensor, got {tuple(train_features.shape)}")
    if test_features.ndim != 2 or test_features.shape[1] != train_features.shape[1]:
        raise ValueError(f"test_features: expected (M, {train_features.shape[1]}), got {tuple(test_features.shape)}")
    if train_labels.shape != (train_features.shape[0],):
        raise ValueError(f"train_labels: expected shape ({train_features.shape[0]},), got {tuple(train_labels.shape)}")
    if k < 1:
        raise ValueError(f"k: expected a positive int, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    classes = int(num_classes if num_classes is not None else int(train_labels.max()) + 1)
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.long()
    predictions = []
    for start in range(0, test_features.shape[0], chunk):
        query = F.normalize(test_features[start : start + chunk].float(), dim=1)
        similarity, neighbour = (query @ train.T).topk(k, dim=1)
        votes = torch.zeros(query.shape[0], classes, dtype=torch.float32, device=query.device)
        votes.scatter_add_(1, labels[neighbour], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)
