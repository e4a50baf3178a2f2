"""The memory bank against numpy, and the trainer's ``bind_dataset`` call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.methods.base import Method
from selfsup.models.memory_bank import MemoryBank
from selfsup.training import TrainConfig, Trainer


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_rows_start_as_unit_vectors_and_are_repeatable() -> None:
    a, b = MemoryBank(50, 8, seed=3), MemoryBank(50, 8, seed=3)
    assert torch.equal(a.bank, b.bank)
    np.testing.assert_allclose(a.bank.norm(dim=1).numpy(), 1.0, atol=1e-6)
    assert not torch.equal(a.bank, MemoryBank(50, 8, seed=4).bank)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_update_moves_rows_toward_features(momentum: float) -> None:
    bank = MemoryBank(20, 6)
    before = bank.bank.numpy().copy()
    indices = torch.tensor([3, 17, 0])
    features = torch.randn(3, 6)
    bank.update(indices, features, momentum)
    expected = before.copy()
    new = unit(features.numpy())
    expected[[3, 17, 0]] = unit(momentum * before[[3, 17, 0]] + (1 - momentum) * new) if momentum else new
    np.testing.assert_allclose(bank.bank.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(bank.rows(indices).numpy(), expected[[3, 17, 0]], atol=1e-6)


def test_negatives_are_a_function_of_step_and_seed() -> None:
    bank = MemoryBank(1000, 4)
    assert torch.equal(bank.sample(64, step=5), bank.sample(64, step=5))
    assert not torch.equal(bank.sample(64, step=5), bank.sample(64, step=6))
    drawn = torch.cat([bank.sample(4096, step=s) for s in range(5)])
    assert drawn.min() >= 0 and drawn.max() < 1000
    counts = np.bincount(drawn.numpy(), minlength=1000)
    assert counts.min() > 0 and counts.max() < 60  # uniform: mean 20.5


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="size"):
        MemoryBank(0, 4)
    bank = MemoryBank(10, 4)
    with pytest.raises(ValueError, match="indices"):
        bank.rows(torch.tensor([10]))
    with pytest.raises(ValueError, match="indices"):
        bank.update(torch.tensor([0.5]), torch.randn(1, 4))
    with pytest.raises(ValueError, match="features"):
        bank.update(torch.tensor([1, 2]), torch.randn(2, 5))
    with pytest.raises(ValueError, match="momentum"):
        bank.update(torch.tensor([1]), torch.randn(1, 4), momentum=1.0)
    with pytest.raises(ValueError, match="count"):
        bank.sample(0, step=0)


class Recorder(Method):
    name = "recorder"
    views = ("x",)

    def __init__(self) -> None:
        backbone = torch.nn.Flatten()
        backbone.out_dim = 12  # type: ignore[assignment]
        super().__init__(backbone)
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.bound: tuple[int, np.ndarray | None] | None = None

    def bind_dataset(self, size: int, labels: np.ndarray | None = None) -> None:  # type: ignore[override]
        self.bound = (size, labels)

    def make_batch(self, images, *, seed, epoch, indices, device="cpu"):  # type: ignore[no-untyped-def, override]
        return {"x": torch.from_numpy(images).float()}

    def training_step(self, batch):  # type: ignore[no-untyped-def, override]
        return {"loss": self.weight * batch["x"].mean()}


def test_trainer_binds_the_dataset_and_records_its_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    images = np.zeros((7, 2, 2, 3), np.uint8)
    labels = np.arange(7) % 3
    method = Recorder()
    trainer = Trainer(method, images, TrainConfig(steps=1, batch_size=4, progress=False), tmp_path, labels=labels)
    assert method.bound is not None and method.bound[0] == 7
    np.testing.assert_array_equal(method.bound[1], labels)
    assert trainer.state_dict()["metadata"]["dataset_size"] == 7
    with pytest.raises(ValueError, match="labels"):
        Trainer(Recorder(), images, TrainConfig(steps=1, progress=False), tmp_path, labels=labels[:5])
