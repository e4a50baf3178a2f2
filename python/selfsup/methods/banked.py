"""What the memory-bank methods (InstDisc, Local Aggregation, CMC, PIRL) share: joint-embedding
views plus dataset indices, one :class:`MemoryBank` per named embedding (allocated when the dataset
is bound, restored from checkpoints), InfoNCE against a bank with negatives drawn from the optimizer
step, and the bank's momentum update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.methods.joint import JointEmbedding, check_positive
from selfsup.models.memory_bank import MemoryBank
from selfsup.losses.nce import bank_info_nce


class BankedEmbedding(JointEmbedding):
    """A :class:`JointEmbedding` whose batches carry ``indices (N,)`` and that keeps one
    :class:`MemoryBank` of ``embedding_dim``-d rows per name of ``bank_names``.

    The banks live in the ``nn.ModuleDict`` ``banks`` (state keys ``banks.<name>.bank``) once
    :meth:`bind_dataset` has given the dataset size; :meth:`load_state_dict` binds to the
    checkpoint's bank size first when that has not happened. Bank ``k`` starts from seed
    ``seed + k``. Negatives are drawn by :meth:`MemoryBank.sample` from ``seed`` and ``step`` = the
    buffer ``steps`` (the last finished optimizer step, saved in checkpoints), so every bank, every
    rank and a resumed run draw the same rows at the same step.

    Raises:
        ValueError: ``temperature``, ``negatives`` or ``embedding_dim`` ≤ 0; ``bank_momentum``
            outside [0, 1); no ``bank_names``.
    """

    steps: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        bank_names: Sequence[str],
        embedding_dim: int,
        negatives: int,
        temperature: float,
        bank_momentum: float,
        seed: int = 0,
        image_size: int | None = None,
        blur: bool | None = None,
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        check_positive(temperature=temperature, negatives=negatives, embedding_dim=embedding_dim)
        if not 0.0 <= bank_momentum < 1.0:
            raise ValueError(f"bank_momentum: expected a value in [0, 1), got {bank_momentum}")
        if not bank_names:
            raise ValueError("bank_names: expected at least one bank")
        self.bank_names = tuple(bank_names)
        self.embedding_dim = int(embedding_dim)
        self.negatives = int(negatives)
        self.temperature = float(temperature)
        self.bank_momentum = float(bank_momentum)
        self.seed = int(seed)
        self.banks = nn.ModuleDict()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def bind_dataset(self, size: int, labels: npt.NDArray[np.int64] | None = None) -> None:
        """Allocates a ``(size, embedding_dim)`` bank of random unit rows per name (kept when the
        size is unchanged)."""
        device = self.steps.device
        for offset, name in enumerate(self.bank_names):
            if name not in self.banks or len(self.bank(name)) != size:
                self.banks[name] = MemoryBank(size, self.embedding_dim, seed=self.seed + offset).to(device)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Binds to the checkpoint's bank size first when :meth:`bind_dataset` has not been called."""
        saved = [key for key in (f"banks.{name}.bank" for name in self.bank_names) if key in state_dict]
        if saved and any(name not in self.banks for name in self.bank_names):
            self.bind_dataset(int(state_dict[saved[0]].shape[0]))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def bank(self, name: str | None = None) -> MemoryBank:
        """The bank of ``name`` (default: the first of ``bank_names``).

        Raises:
            ValueError: ``name`` is not one of ``bank_names``. RuntimeError: no bank yet.
        """
        key = self.bank_names[0] if name is None else name
        if key not in self.bank_names:
            raise ValueError(f"name: expected one of {', '.join(self.bank_names)}, got {key!r}")
        if key not in self.banks:
            raise RuntimeError(
                f"{self.name}: call bind_dataset(size) before training (the Trainer calls it): a memory bank holds one row per training image"
            )
        bank = self.banks[key]
        assert isinstance(bank, MemoryBank)
        return bank

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        batch = super().make_batch(images, seed=seed, epoch=epoch, indices=indices, device=device)
        batch["indices"] = torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(device)
        return batch

    def contrast(self, anchors: torch.Tensor, bank_name: str, indices: torch.Tensor) -> torch.Tensor:
        """InfoNCE of ``anchors (N, D)`` against bank ``bank_name`` (:func:`bank_info_nce`)."""
        return bank_info_nce(anchors, self.bank(bank_name), indices, self.negatives, int(self.steps), self.temperature, self.seed)

    def update_bank(self, bank_name: str, indices: torch.Tensor, embeddings: torch.Tensor) -> None:
        """v_i ← normalize(m·v_i + (1 − m)·z_i) with m = ``bank_momentum`` (all ranks' rows under DDP)."""
        self.bank(bank_name).update(indices, embeddings.detach(), self.bank_momentum)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps.fill_(step)
