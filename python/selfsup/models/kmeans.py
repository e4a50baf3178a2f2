"""Deterministic k-means (Lloyd's algorithm) in torch, for clustering a memory bank.

Local Aggregation (arXiv:1903.12355) clusters the bank with faiss (``niter = 20``, seeded
initial centroids drawn from the data); this is the same procedure in plain torch: ``clusters``
distinct rows drawn by a generator seeded with ``seed`` start as centroids, then every iteration
assigns each point to its nearest centroid (squared Euclidean distance) and moves each centroid to
the mean of its points. A centroid left without points stays where it was (faiss instead splits a
large cluster). Iteration stops early once no assignment changes. The result depends only on the
data and the seed, so every rank of a DDP run clusters an identical bank identically.
"""

from __future__ import annotations

import torch


def nearest_centroid(points: torch.Tensor, centroids: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index ``(N,)`` of the nearest of ``centroids (K, D)`` for every row of ``points (N, D)``."""
    squared = (centroids * centroids).sum(1)
    labels = [
        (squared - 2.0 * points[start : start + chunk] @ centroids.T).argmin(dim=1)
        for start in range(0, points.shape[0], chunk)
    ]
    return torch.cat(labels)


@torch.no_grad()
def kmeans(
    points: torch.Tensor, clusters: int, *, seed: int = 0, iterations: int = 20, init: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clusters ``points (N, D)`` into ``clusters`` groups; returns ``(labels (N,) int64,
    centroids (clusters, D))``. ``init`` gives the starting centroids instead of seeded rows.

    Raises:
        ValueError: ``points`` not a non-empty 2-d tensor, ``clusters`` outside [1, N],
            ``iterations`` < 1, ``init`` of the wrong shape.
    """
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError(f"points: expected a non-empty (N, D) tensor, got {tuple(points.shape)}")
    if not 1 <= clusters <= points.shape[0]:
        raise ValueError(f"clusters: expected 1 to {points.shape[0]} (the number of points), got {clusters}")
    if iterations < 1:
        raise ValueError(f"iterations: expected a positive int, got {iterations}")
    data = points.float()
    if init is None:
        generator = torch.Generator().manual_seed(seed)
        rows = torch.randperm(data.shape[0], generator=generator)[:clusters].to(data.device)
        centroids = data[rows].clone()
    elif init.shape != (clusters, data.shape[1]):
        raise ValueError(f"init: expected ({clusters}, {data.shape[1]}), got {tuple(init.shape)}")
    else:
        centroids = init.float().clone().to(data.device)
    labels = nearest_centroid(data, centroids)
    for _ in range(iterations):
        sums = torch.zeros_like(centroids).index_add_(0, labels, data)
        counts = torch.bincount(labels, minlength=clusters)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1).to(data.dtype)
        new_labels = nearest_centroid(data, centroids)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return labels, centroids
