"""A memory bank: one ℓ2-normalised feature per training image (Wu, Xiong, Yu & Lin 2018,
"Unsupervised Feature Learning via Non-Parametric Instance Discrimination", arXiv:1805.01978, §3.1),
shared by InstDisc, Local Aggregation, CMC and PIRL.

Row ``i`` holds the running feature of dataset sample ``i``. After each step the rows of the batch's
samples move toward their new features, ``v_i ← normalize(m·v_i + (1 − m)·f_i)`` (``m = 0``
replaces them, as InstDisc does; CMC and PIRL use m = 0.5). Under ``torch.distributed`` every rank
gathers all ranks' indices and features before writing, so every rank holds the bank one process
would. Negatives are drawn uniformly from the whole bank by a generator seeded from the step, so
every rank (and a resumed run) draws the same ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MemoryBank(nn.Module):
    """``size`` rows of ``dim``-d unit vectors, saved in checkpoints as the buffer ``bank``.

    The rows start as random unit vectors drawn from ``seed`` (the paper's code starts uniform
    and rescaled; both are "no information yet").
    """

    bank: torch.Tensor

    def __init__(self, size: int, dim: int, seed: int = 0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size: expected a positive number of rows, got {size}")
        if dim < 1:
            raise ValueError(f"dim: expected a positive feature size, got {dim}")
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("bank", F.normalize(torch.randn(size, dim, generator=generator), dim=1))

    def __len__(self) -> int:
        return int(self.bank.shape[0])

    def check_indices(self, indices: torch.Tensor) -> None:
        if indices.dtype not in (torch.int64, torch.int32) or indices.ndim != 1:
            raise ValueError(f"indices: expected a 1-d integer tensor, got {indices.dtype} {tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= len(self)):
            raise ValueError(f"indices: expected dataset indices in [0, {len(self)}), got {int(indices.min())}..{int(indices.max())}")

    def rows(self, indices: torch.Tensor) -> torch.Tensor:
        """The current rows of ``indices (N,)``: ``(N, dim)``, detached copies."""
        self.check_indices(indices)
        return self.bank[indices].clone()

    def sample(self, count: int, step: int, seed: int = 0) -> torch.Tensor:
        """``count`` row indices drawn uniformly (with replacement) from a generator seeded by
        ``(seed, step)``: identical on every rank and after a resume."""
        if count < 1:
            raise ValueError(f"count: expected a positive number of negatives, got {count}")
        generator = torch.Generator().manual_seed((seed << 32) + step)
        return torch.randint(0, len(self), (count,), generator=generator).to(self.bank.device)

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor, momentum: float = 0.0) -> None:
        """Moves the rows of ``indices (B,)`` toward ``features (B, dim)``; under DDP all ranks'
        rows are gathered first (in global-batch order), so the bank stays identical everywhere."""
        from selfsup.models.gather import gather_global

        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1), got {momentum}")
        if features.ndim != 2 or features.shape != (indices.shape[0], self.bank.shape[1]):
            raise ValueError(f"features: expected ({indices.shape[0]}, {self.bank.shape[1]}), got {tuple(features.shape)}")
        self.check_indices(indices)
        features = gather_global(features.detach())
        indices = gather_global(indices.to(self.bank.device))
        new = F.normalize(features.float(), dim=1)
        if momentum:
            new = F.normalize(momentum * self.bank[indices] + (1.0 - momentum) * new, dim=1)
        self.bank[indices] = new.to(self.bank.dtype)


