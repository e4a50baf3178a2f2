"""Metric-learning losses: those of time-contrastive networks (Sermanet et al. 2018,
arXiv:1704.06888) — the triplet loss with semi-hard negatives and the multi-class n-pairs loss —
and the batch-hard triplet loss of S⁴L-Exemplar.

- Triplet, semi-hard (Schroff, Kalenichenko & Philbin 2015, FaceNet, §3.2; TensorFlow's
  ``triplet_semihard_loss``, which TCN's code uses): with squared Euclidean distances d of the
  embeddings, for every ordered pair (a, p) of distinct rows with one label the negative n is the
  closest row of another label with d(a, n) > d(a, p), or, where no negative is that far, the
  farthest one; the loss is the mean over the pairs of max(d(a, p) − d(a, n) + margin, 0).
  TCN L2-normalises the embeddings and uses margin 0.2.
- N-pairs (Sohn 2016, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective";
  TensorFlow's ``npairs_loss``): logits a·pᵀ of anchors against positives, the cross-entropy of
  each row against the (normalised) indicator of equal labels, plus λ/4 · (mean ‖a‖² + mean ‖p‖²)
  with λ = 0.002.

Gathering: with ``gather`` under ``torch.distributed``, every rank's rows join (through an
autograd all-gather) as the candidates of this rank's anchors — the negatives are mined in the
global batch — and the loss is the mean over this rank's anchors, so DDP's average over equal
shares is the single-process loss on the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from selfsup_kernels.distributed import gather as gather_rows
from selfsup_kernels.distributed import gather_labels


def _check(name: str, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    if embeddings.ndim != 2 or embeddings.shape[0] < 2 or not embeddings.is_floating_point():
        raise ValueError(f"{name}: expected float embeddings (N, D) with N >= 2, got {embeddings.dtype} {tuple(embeddings.shape)}")
    if labels.shape != embeddings.shape[:1] or labels.is_floating_point():
        raise ValueError(f"labels: expected {embeddings.shape[0]} integer labels, got {labels.dtype} {tuple(labels.shape)}")
    if torch.isnan(embeddings).any():
        raise ValueError(f"{name}: contains NaN")


def triplet_semihard_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2, gather: bool = False) -> torch.Tensor:
    """The semi-hard triplet loss (module docstring) of ``embeddings (N, D)`` with ``labels (N,)``.

    Raises:
        ValueError: not ``(N, D)`` floats with N ≥ 2 and ``N`` integer labels; NaN; ``margin`` < 0;
            no pair of rows shares a label.
    """
    _check("embeddings", embeddings, labels)
    if margin < 0:
        raise ValueError(f"margin: expected >= 0, got {margin}")
    everyone, offset = gather_rows(embeddings) if gather else (embeddings, 0)
    every_label = gather_labels(labels) if gather else labels
    distances = torch.cdist(embeddings.float(), everyone.float()).pow(2)  # (n, M)
    rows = torch.arange(len(embeddings), device=embeddings.device)
    same = labels[:, None] == every_label[None, :]
    same[rows, rows + offset] = False
    if not same.any():
        raise ValueError("labels: expected at least two rows with one label (an anchor and its positive)")
    anchor, positive = same.nonzero(as_tuple=True)
    d_ap = distances[anchor, positive]  # (P,)
    d_an = distances[anchor]  # (P, M)
    negative = ~(labels[anchor][:, None] == every_label[None, :])
    farther = negative & (d_an > d_ap[:, None])
    inf = torch.finfo(d_an.dtype).max
    outside = torch.where(farther, d_an, torch.full_like(d_an, inf)).min(dim=1).values
    inside = torch.where(negative, d_an, torch.full_like(d_an, -inf)).max(dim=1).values
    semi_hard = torch.where(farther.any(dim=1), outside, inside)
    return F.relu(d_ap - semi_hard + margin).mean()


def npairs_loss(
    anchors: torch.Tensor, positives: torch.Tensor, labels: torch.Tensor, reg_lambda: float = 0.002, gather: bool = False
) -> torch.Tensor:
    """The n-pairs loss (module docstring) of ``anchors (N, D)`` against ``positives (N, D)``,
    row ``i`` of both with ``labels[i]``.

    Raises:
        ValueError: shapes that differ, fewer than 2 rows, NaN, ``reg_lambda`` < 0.
    """
    _check("anchors", anchors, labels)
    if positives.shape != anchors.shape:
        raise ValueError(f"positives: expected the shape of anchors {tuple(anchors.shape)}, got {tuple(positives.shape)}")
    if reg_lambda < 0:
        raise ValueError(f"reg_lambda: expected >= 0, got {reg_lambda}")
    every_positive, _ = gather_rows(positives) if gather else (positives, 0)
    every_label = gather_labels(labels) if gather else labels
    logits = anchors.float() @ every_positive.float().T
    targets = (labels[:, None] == every_label[None, :]).float()
    targets = targets / targets.sum(dim=1, keepdim=True)
    cross_entropy = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    regulariser = reg_lambda * 0.25 * (anchors.float().pow(2).sum(1).mean() + positives.float().pow(2).sum(1).mean())
    return cross_entropy + regulariser


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.5, gather: bool = False) -> torch.Tensor:
    """The batch-hard triplet loss (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss
    for Person Re-Identification", arXiv:1703.07737, eq. 5), as S⁴L-Exemplar uses it (margin 0.5):
    for every row a, the farthest row of its label and the closest row of another label, by
    Euclidean distance, and the mean over the rows of max(margin + d(a, p*) − d(a, n*), 0).
    ``gather`` mines in the global batch (module docstring).

    Raises:
        ValueError: as :func:`triplet_semihard_loss`; a row without another row of its label.
    """
    _check("embeddings", embeddings, labels)
    if margin < 0:
        raise ValueError(f"margin: expected >= 0, got {margin}")
    everyone, offset = gather_rows(embeddings) if gather else (embeddings, 0)
    every_label = gather_labels(labels) if gather else labels
    distances = (embeddings.float()[:, None, :] - everyone.float()[None, :, :]).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    rows = torch.arange(len(embeddings), device=embeddings.device)
    same = labels[:, None] == every_label[None, :]
    positive = same.clone()
    positive[rows, rows + offset] = False
    if not positive.any(dim=1).all():
        raise ValueError("labels: expected every row to share its label with another row (copies of one image)")
    hardest_positive = torch.where(positive, distances, torch.zeros_like(distances)).max(dim=1).values
    hardest_negative = torch.where(~same, distances, torch.full_like(distances, torch.finfo(distances.dtype).max)).min(dim=1).values
    return F.relu(margin + hardest_positive - hardest_negative).mean()


def ranking_loss(
    anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, margin: float = 0.5
) -> torch.Tensor:
    """The ranking loss of tracking triplets (Wang & Gupta 2015, arXiv:1505.00687, eq. 2–3) with
    D(a, b) = 1 − cos(a, b): the mean over anchors ``(N, D)`` and their negatives ``(N, K, D)`` of
    max(0, D(a, p) − D(a, n) + margin), positives ``(N, D)``.

    Raises:
        ValueError: shapes that do not match, no negatives, ``margin`` < 0.
    """
    if anchors.ndim != 2 or positives.shape != anchors.shape or negatives.ndim != 3 or negatives.shape[0] != anchors.shape[0]:
        raise ValueError(f"anchors, positives, negatives: expected (N, D), (N, D), (N, K, D), got {tuple(anchors.shape)}, "
                         f"{tuple(positives.shape)}, {tuple(negatives.shape)}")
    if negatives.shape[1] == 0 or negatives.shape[2] != anchors.shape[1]:
        raise ValueError(f"negatives: expected (N, K >= 1, {anchors.shape[1]}), got {tuple(negatives.shape)}")
    if margin < 0:
        raise ValueError(f"margin: expected >= 0, got {margin}")
    d_positive = 1 - F.cosine_similarity(anchors, positives, dim=1)
    d_negative = 1 - F.cosine_similarity(anchors[:, None, :], negatives, dim=2)
    return F.relu(d_positive[:, None] - d_negative + margin).mean()
