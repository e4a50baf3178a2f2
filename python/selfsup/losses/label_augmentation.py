"""Self-supervised label augmentation (Lee, Hwang & Shin 2020, arXiv:1910.05872, §2.2–2.3).

One classifier over the joint labels (class i, transformation j) — M transformations, here the
rotations by 0, 90, 180, 270° — learns the classes and the self-supervised task at once
(eq. 4). At inference the joint logits of all M transformed copies are aggregated (eq. 6):
P(i | x) ∝ exp((1/M) Σ_j z_{ij}(t_j(x))), with z_{ij}(t_j(x)) the logit of joint label (i, j) on
the j-th transformed copy. Self-distillation (eq. 7) trains a plain classifier head σ(v(x)) with
KL(P_aggregated ‖ σ(v(x))) + CE(σ(v(x)), y), the aggregated distribution as the teacher (no
gradient through it).

Per sample: nothing is gathered across ranks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.losses.fixmatch import check_logits


def joint_labels(labels: torch.Tensor, transforms: torch.Tensor, num_transforms: int) -> torch.Tensor:
    """``labels · M + transforms``: the joint label of class ``labels[n]`` under transformation
    ``transforms[n]`` (both ``(N,)`` integers).

    Raises:
        ValueError: shapes that differ, a transformation outside ``[0, M)``.
    """
    if labels.shape != transforms.shape or labels.ndim != 1:
        raise ValueError(f"transforms: expected the shape of labels {tuple(labels.shape)}, got {tuple(transforms.shape)}")
    if num_transforms < 1 or transforms.min() < 0 or transforms.max() >= num_transforms:
        raise ValueError(f"transforms: expected integers in [0, {num_transforms})")
    return labels * num_transforms + transforms


def aggregated_logits(joint: torch.Tensor) -> torch.Tensor:
    """Eq. 6's logits ``(N, K)`` from the joint logits ``(M, N, K·M)`` of the M transformed copies
    (copy j of image n at ``joint[j, n]``): (1/M) Σ_j joint[j, n, i·M + j].

    Raises:
        ValueError: not ``(M, N, K·M)``.
    """
    if joint.ndim != 3 or joint.shape[2] % joint.shape[0] != 0:
        raise ValueError(f"joint: expected joint logits (M, N, K*M), got {tuple(joint.shape)}")
    copies, _, width = joint.shape
    classes = width // copies
    index = torch.arange(classes, device=joint.device)[None, :] * copies + torch.arange(copies, device=joint.device)[:, None]  # (M, K)
    picked = joint.gather(2, index[:, None, :].expand(copies, joint.shape[1], classes))
    return picked.mean(dim=0)


def self_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 7's distillation terms for a plain head: KL(softmax(teacher) ‖ softmax(student)) +
    CE(softmax(student), labels), batch means; the teacher (aggregated logits) gets no gradient.

    Raises:
        ValueError: bad logits or labels.
    """
    check_logits("student_logits", student_logits)
    check_logits("teacher_logits", teacher_logits, student_logits, "student_logits")
    if labels.shape != student_logits.shape[:1] or labels.is_floating_point():
        raise ValueError(f"labels: expected {student_logits.shape[0]} integer labels, got {labels.dtype} {tuple(labels.shape)}")
    teacher = F.log_softmax(teacher_logits.detach().float(), dim=1)
    student = F.log_softmax(student_logits, dim=1)
    kl = (teacher.exp() * (teacher - student)).sum(dim=1).mean()
    return kl + F.cross_entropy(student_logits, labels)
