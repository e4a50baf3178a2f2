"""What CMC and PIRL share: joint-embedding views plus dataset indices, one memory bank per named
embedding (allocated when the dataset is bound), InfoNCE against a bank with negatives drawn from
the optimizer step, and the bank's momentum update."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.methods.joint import JointEmbedding, check_positive
from selfsup.methods.memory_bank import MemoryBank, bank_info_nce


class BankContrast(JointEmbedding):
    """A :class:`JointEmbedding` whose batches carry ``indices (N,)`` and that keeps one
    :class:`MemoryBank` of ``embedding_dim``-d rows per name of ``bank_names``.

    The banks live in ``banks`` (saved in checkpoints) once :meth:`bind_dataset` has given the
    dataset size; bank ``k`` starts from seed ``k``. Negatives are drawn by
    :meth:`MemoryBank.sample` at ``step`` = the buffer ``sample_step`` (the last finished optimizer
    step, saved in checkpoints), so every bank, every rank and a resumed run draw the same rows at
    the same step.

    Raises:
        ValueError: ``temperature``, ``negatives`` or ``embedding_dim`` ≤ 0; ``bank_momentum``
            outside [0, 1).
    """

    sample_step: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        bank_names: Sequence[str],
        embedding_dim: int,
        negatives: int,
        temperature: float,
        bank_momentum: float,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        check_positive(temperature=temperature, negatives=negatives, embedding_dim=embedding_dim)
        if not 0.0 <= bank_momentum < 1.0:
            raise ValueError(f"bank_momentum: expected a value in [0, 1), got {bank_momentum}")
        self.bank_names = tuple(bank_names)
        self.embedding_dim = int(embedding_dim)
        self.negatives = int(negatives)
        self.temperature = float(temperature)
        self.bank_momentum = float(bank_momentum)
        self.banks = nn.ModuleDict()
        self.register_buffer("sample_step", torch.zeros((), dtype=torch.long))

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Allocates a ``(size, embedding_dim)`` bank per name (kept when the size is unchanged)."""
        device = self.sample_step.device
        for seed, name in enumerate(self.bank_names):
            if name not in self.banks or len(self.bank(name)) != size:
                self.banks[name] = MemoryBank(size, self.embedding_dim, seed=seed).to(device)

    def bank(self, name: str) -> MemoryBank:
        if name not in self.banks:
            raise RuntimeError(f"{type(self).__name__}: no memory bank yet; bind_dataset(size) allocates them (the Trainer calls it)")
        bank = self.banks[name]
        assert isinstance(bank, MemoryBank)
        return bank

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        batch = super().make_batch(images, seed=seed, epoch=epoch, indices=indices, device=device)
        batch["indices"] = torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(device)
        return batch

    def contrast(self, anchors: torch.Tensor, bank_name: str, indices: torch.Tensor) -> torch.Tensor:
        """InfoNCE of ``anchors (N, D)`` against bank ``bank_name`` (:func:`bank_info_nce`)."""
        return bank_info_nce(anchors, self.bank(bank_name), indices, self.negatives, int(self.sample_step), self.temperature)

    def update_bank(self, bank_name: str, indices: torch.Tensor, embeddings: torch.Tensor) -> None:
        """v_i ← normalize(m·v_i + (1 − m)·z_i) with m = ``bank_momentum`` (all ranks' rows under DDP)."""
        self.bank(bank_name).update(indices, embeddings.detach(), self.bank_momentum)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.sample_step.fill_(step)
