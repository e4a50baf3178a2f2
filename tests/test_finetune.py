"""ULMFiT fine-tuning: layer groups, discriminative rates, gradual unfreezing, one-cycle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.data import load_digits
from selfsup.eval import labeled_subset
from selfsup.eval.finetune import (
    FineTuneConfig,
    accuracy,
    discriminative_rates,
    finetune,
    layer_groups,
    train_from_scratch,
)
from selfsup.models import resnet18, small_resnet


def test_layer_groups():
    groups = layer_groups(small_resnet(width=4, blocks=2))
    assert len(groups) == 5 and len(groups[1]) == 2
    assert len(layer_groups(resnet18())) == 5
    params = sum(p.numel() for g in layer_groups(resnet18()) for p in g.parameters())
    assert params == sum(p.numel() for p in resnet18().parameters())


def test_discriminative_rates_follow_ulmfit():
    rates = discriminative_rates(1.0, 4, 2.6)
    np.testing.assert_allclose(rates, [1 / 2.6**3, 1 / 2.6**2, 1 / 2.6, 1.0])


def test_gradual_unfreezing_trains_groups_from_the_top():
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(16) % 2
    snapshots = []
    backbone = small_resnet(width=4)
    before = [torch.cat([p.detach().flatten().clone() for p in g.parameters()]) for g in layer_groups(backbone)]
    for epochs in (1, 2, 6):
        torch.manual_seed(0)
        bb = small_resnet(width=4)
        bb.load_state_dict(backbone.state_dict())
        model, history = finetune(bb, images, labels, 2, FineTuneConfig(epochs=epochs, batch_size=8))
        after = [torch.cat([p.detach().flatten() for p in g.parameters()]) for g in layer_groups(bb)]
        snapshots.append([not torch.equal(a, b) for a, b in zip(before, after)])
        assert [h["trainable_groups"] for h in history] == [min(6, e + 1) for e in range(epochs)]
    # backbone groups: stem, 4 stages; epoch 0 trains the head only, epoch 1 adds the top stage
    assert snapshots[0] == [False, False, False, False, False]
    assert snapshots[1] == [False, False, False, False, True]
    assert snapshots[2] == [True, True, True, True, True]


def test_one_cycle_peaks_at_each_groups_rate():
    from selfsup.eval import finetune as module

    seen = []
    original = torch.optim.lr_scheduler.OneCycleLR

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, optimizer, max_lr, total_steps):
            seen.append(list(max_lr))
            super().__init__(optimizer, max_lr=max_lr, total_steps=total_steps)

    module.torch.optim.lr_scheduler.OneCycleLR = Recording
    try:
        finetune(small_resnet(width=4), np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 0, 1]), 2, FineTuneConfig(epochs=1, lr=0.01))
    finally:
        module.torch.optim.lr_scheduler.OneCycleLR = original
    np.testing.assert_allclose(seen[0], discriminative_rates(0.01, 6, 2.6))


def test_finetuning_learns_the_digits():
    data = load_digits()
    chosen = labeled_subset(data.train.labels, 10, seed=0)
    torch.manual_seed(0)
    model, history = finetune(small_resnet(width=8), data.train.images[chosen], data.train.labels[chosen], 10, FineTuneConfig(epochs=8, lr=1e-2))
    assert history[-1]["loss"] < history[0]["loss"]
    torch.manual_seed(0)
    scratch, _ = train_from_scratch(small_resnet(width=8), data.train.images[chosen], data.train.labels[chosen], 10, FineTuneConfig(epochs=8, lr=1e-2))
    assert accuracy(model, data.test.images, data.test.labels) > 0.3
    assert accuracy(scratch, data.test.images, data.test.labels) > 0.2


def test_bad_config():
    with pytest.raises(ValueError, match="epochs"):
        FineTuneConfig(epochs=0).validate()
    with pytest.raises(ValueError, match="factor"):
        FineTuneConfig(factor=0.5).validate()
