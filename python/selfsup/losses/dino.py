"""DINO's self-distillation cross-entropy (Caron et al. 2021, arXiv:2104.14294, eq. 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, student_temperature: float, teacher_temperature: float) -> torch.Tensor:
    """Eq. 3 for ``student (V, N, K)`` and ``teacher (G, N, K)`` logits (G ≤ V global views, the
    first G student views): the mean over pairs (teacher view a, student view b ≠ a) of the batch
    mean of −P_t^a · log P_s^b.

    Raises:
        ValueError: shapes that are not ``(V, N, K)`` and ``(G, N, K)`` with ``G ≤ V``, or no pair
            of different views (one teacher and one student view).
    """
    if student.ndim != 3 or teacher.ndim != 3 or teacher.shape[1:] != student.shape[1:] or teacher.shape[0] > student.shape[0]:
        raise ValueError(f"student, teacher: expected (V, N, K) and (G, N, K) logits with G <= V, got {tuple(student.shape)} and {tuple(teacher.shape)}")
    if student.shape[0] < 2:
        raise ValueError(f"student: DINO's loss pairs each teacher view with the other student views; got {student.shape[0]} view, need at least 2")
    targets = F.softmax((teacher - center) / teacher_temperature, dim=-1)
    log_student = F.log_softmax(student / student_temperature, dim=-1)
    total = student.new_zeros(())
    pairs = 0
    for a in range(teacher.shape[0]):
        for b in range(student.shape[0]):
            if a != b:
                total = total + (-(targets[a] * log_student[b]).sum(-1)).mean()
                pairs += 1
    return total / pairs
