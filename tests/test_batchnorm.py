"""SplitBatchNorm against BatchNorm run on each group separately; the BatchNorm swaps; the
single-process behaviour of GlobalBatchNorm (its cross-rank statistics are in test_distributed.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfsup.models import small_resnet
from selfsup.models.batchnorm import GlobalBatchNorm, SplitBatchNorm, split_batchnorm, sync_batchnorm


def reference_groups(x: torch.Tensor, splits: int, weight: torch.Tensor, bias: torch.Tensor, momentum: float):
    """One fresh BatchNorm per group of samples i ≡ s (mod splits), with the same affine parameters."""
    layers = []
    out = torch.empty_like(x)
    for s in range(splits):
        bn = (nn.BatchNorm1d if x.dim() == 2 else nn.BatchNorm2d)(x.shape[1], momentum=momentum)
        with torch.no_grad():
            bn.weight.copy_(weight)
            bn.bias.copy_(bias)
        out[s::splits] = bn(x[s::splits])
        layers.append(bn)
    return out, layers


@pytest.mark.parametrize("shape", [(12, 4, 3, 5), (9, 6)])
def test_split_batchnorm_normalises_each_group_like_its_own_batchnorm(shape):
    splits = 3
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + torch.arange(shape[0]).view(-1, *([1] * (len(shape) - 1)))
    layer = SplitBatchNorm(shape[1], splits, momentum=0.2)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-1, 1)
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    x1 = x.clone().requires_grad_(True)
    out = layer(x1)
    r = torch.randn_like(x)
    (out * r).sum().backward()

    x2 = x.clone().requires_grad_(True)
    w2, b2 = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    expected = torch.empty_like(x)
    reduce_dims = [0, *range(2, x.dim())]
    view = (1, -1, *([1] * (x.dim() - 2)))
    for s in range(splits):
        g = x2[s::splits]
        mean, var = g.mean(reduce_dims), g.var(reduce_dims, unbiased=False)
        expected[s::splits] = (g - mean.view(view)) / torch.sqrt(var.view(view) + 1e-5) * w2.view(view) + b2.view(view)
    (expected * r).sum().backward()
    torch.testing.assert_close(out, expected.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.weight.grad, w2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.bias.grad, b2.grad, rtol=1e-4, atol=1e-5)

    # running statistics: the mean over groups of what each group's own BatchNorm tracks
    _, layers = reference_groups(x, splits, weight, bias, 0.2)
    torch.testing.assert_close(layer.running_mean, torch.stack([bn.running_mean for bn in layers]).mean(0))
    torch.testing.assert_close(layer.running_var, torch.stack([bn.running_var for bn in layers]).mean(0))
    assert int(layer.num_batches_tracked) == 1
    # evaluation is plain BatchNorm on the running statistics
    layer.eval()
    plain = (nn.BatchNorm1d if x.dim() == 2 else nn.BatchNorm2d)(shape[1]).eval()
    plain.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), plain(x))


def test_one_split_is_batchnorm():
    torch.manual_seed(1)
    x = torch.randn(8, 5, 4, 4)
    split, plain = SplitBatchNorm(5, 1), nn.BatchNorm2d(5)
    torch.testing.assert_close(split(x), plain(x))
    torch.testing.assert_close(split.running_var, plain.running_var)


def test_swaps_share_parameters_and_keep_the_state_dict():
    torch.manual_seed(0)
    net = small_resnet(width=4)
    keys = list(net.state_dict())
    first_weight = net.stem[1].weight
    split_batchnorm(net, 2)
    assert list(net.state_dict()) == keys
    assert isinstance(net.stem[1], SplitBatchNorm) and net.stem[1].weight is first_weight
    assert not any(type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) for m in net.modules())
    head = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    sync_batchnorm(head)
    assert isinstance(head[1], GlobalBatchNorm)
    # outside a process group GlobalBatchNorm is plain BatchNorm
    x = torch.randn(6, 4)
    plain = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    plain.load_state_dict(head.state_dict())
    torch.testing.assert_close(head(x), plain(x))
    torch.testing.assert_close(head[1].running_mean, plain[1].running_mean)


def test_bad_splits_name_the_argument():
    with pytest.raises(ValueError, match="^splits"):
        SplitBatchNorm(4, 0)
    with pytest.raises(ValueError, match="^input: a batch of 10 does not split into 4 groups"):
        SplitBatchNorm(3, 4)(torch.randn(10, 3))
