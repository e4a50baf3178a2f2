"""BatchNorm whose training statistics cover another set of samples than the process's batch.

* :class:`SplitBatchNorm` — S groups of one batch, each normalised by its own statistics: what S
  devices with per-device BatchNorm compute, on one device (the MoCo CIFAR-10 demo's stand-in for
  Shuffling BatchNorm, He et al. 2019, arXiv:1911.05722, §3.3).
* :class:`GlobalBatchNorm` — the batches of all ranks of ``torch.distributed`` together, with the
  gradient flowing through the reduction: the semantics of :class:`torch.nn.SyncBatchNorm`, on any
  device and backend (torch's refuses CPU tensors: "SyncBatchNorm expected input tensor to be on
  GPU ...", so gloo runs cannot use it).

:func:`split_batchnorm` and :func:`sync_batchnorm` swap the plain ``BatchNorm1d/2d/3d`` layers of
a module for these, sharing their parameters and buffers (state dicts keep their keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

PLAIN_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class SplitBatchNorm(_BatchNorm):
    """BatchNorm over ``splits`` groups of the batch (the official MoCo CIFAR demo's layer).

    Training: the samples ``i ≡ s (mod S)`` of an input ``(N, C, *)`` form group ``s`` and are
    normalised with the group's mean and biased variance, y = (x − μ_s)/√(σ_s² + ε)·γ + β; the
    running statistics move toward the mean over groups of each group's mean and unbiased variance.
    Evaluation: plain BatchNorm with the running statistics. N must be a multiple of S.

    Raises:
        ValueError: ``splits`` < 1; in training, a batch that does not split into ``splits`` groups.
    """

    def __init__(
        self, num_features: int, splits: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True, track_running_stats: bool = True
    ) -> None:
        if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
            raise ValueError(f"splits: expected a positive int, got {splits!r}")
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.splits = splits

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"input: expected (N, C, *), got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training:
            plain: torch.Tensor = super().forward(input)
            return plain
        self._check_input_dim(input)
        n, c = input.shape[:2]
        s = self.splits
        if n % s:
            raise ValueError(f"input: a batch of {n} does not split into {s} groups")
        factor = _running_factor(self)
        running_mean, running_var = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        mean = running_mean.repeat(s) if running_mean is not None else None
        var = running_var.repeat(s) if running_var is not None else None
        weight = self.weight.repeat(s) if self.weight is not None else None
        bias = self.bias.repeat(s) if self.bias is not None else None
        grouped = input.reshape(n // s, s * c, *input.shape[2:])
        out = F.batch_norm(grouped, mean, var, weight, bias, True, factor, self.eps).view_as(input)
        with torch.no_grad():
            if running_mean is not None and mean is not None:
                running_mean.copy_(mean.view(s, c).mean(0))
            if running_var is not None and var is not None:
                running_var.copy_(var.view(s, c).mean(0))
        return out


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm over the batches of every rank (:class:`torch.nn.SyncBatchNorm` semantics).

    Training under a process group of more than one rank: μ and the biased σ² over all ranks'
    samples (two differentiable all-reduces: Σx and the count, then Σ(x − μ)²), so the gradient of
    every rank's loss reaches every rank's input; the running variance takes the unbiased σ².
    Statistics in float32 whatever the input's dtype. Otherwise: plain BatchNorm. Input
    ``(N, C, *)``; ranks may hold different N.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"input: expected (N, C, *), got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not (self.training and distributed):
            plain: torch.Tensor = super().forward(input)
            return plain
        self._check_input_dim(input)
        factor = _running_factor(self)
        dims = [0, *range(2, input.dim())]
        shape = (1, -1, *([1] * (input.dim() - 2)))
        x = input.float()
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
        dist.all_reduce(count)
        mean = _sum_over_ranks(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = _sum_over_ranks(centred.pow(2).sum(dims)) / count
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None and self.bias is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.running_mean.mul_(1.0 - factor).add_(mean.detach(), alpha=factor)
                unbiased = var.detach() * count / (count - 1).clamp_min(1.0)
                self.running_var.mul_(1.0 - factor).add_(unbiased, alpha=factor)
        return out.to(input.dtype)


class _SumOverRanks(torch.autograd.Function):
    """Σ over ranks; every rank's result feeds its own loss, so the gradient of each rank's input
    is the sum of all ranks' gradients (an all-reduce both ways)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        total = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


def _sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    total: torch.Tensor = _SumOverRanks.apply(x)
    return total


def _running_factor(layer: _BatchNorm) -> float:
    """The running-statistics weight of this step, counting it (as ``_BatchNorm.forward``): the
    layer's momentum, or 1/steps for a cumulative average (``momentum=None``)."""
    if not (layer.training and layer.track_running_stats) or layer.num_batches_tracked is None:
        return 0.0 if layer.momentum is None else float(layer.momentum)
    layer.num_batches_tracked.add_(1)
    return 1.0 / float(layer.num_batches_tracked) if layer.momentum is None else float(layer.momentum)


def swap_modules(module: nn.Module, swap: Callable[[nn.Module], nn.Module | None]) -> nn.Module:
    """``module`` with every submodule (``module`` itself included) for which ``swap`` returns a
    replacement replaced by it, in place; the children of a replaced module are not visited."""
    replacement = swap(module)
    if replacement is not None:
        return replacement
    for name, child in module.named_children():
        new = swap_modules(child, swap)
        if new is not child:
            setattr(module, name, new)
    return module


def replace_batchnorm(module: nn.Module, make: Callable[[_BatchNorm], _BatchNorm]) -> nn.Module:
    """Replaces every plain ``BatchNorm1d/2d/3d`` inside ``module`` (in place; the module itself if
    it is one) by ``make(layer)``, which then takes over the layer's parameters, buffers and mode."""

    def take_over(layer: nn.Module) -> nn.Module | None:
        if type(layer) not in PLAIN_BATCHNORM:
            return None
        assert isinstance(layer, _BatchNorm)
        new = make(layer)
        if layer.affine:
            new.weight, new.bias = layer.weight, layer.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(new, name, getattr(layer, name))
        return new.train(layer.training)

    return swap_modules(module, take_over)


def split_batchnorm(module: nn.Module, splits: int) -> nn.Module:
    """``module`` with its plain BatchNorm layers turned into :class:`SplitBatchNorm` (``splits``)."""
    return replace_batchnorm(
        module, lambda bn: SplitBatchNorm(bn.num_features, splits, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    )


def sync_batchnorm(module: nn.Module, device_type: str = "cpu") -> nn.Module:
    """``module`` with its plain BatchNorm layers synchronised over ranks: :class:`torch.nn.SyncBatchNorm`
    on CUDA, :class:`GlobalBatchNorm` elsewhere (the same statistics and gradients)."""
    if device_type == "cuda":
        return replace_batchnorm(
            module, lambda bn: nn.SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        )
    return replace_batchnorm(module, lambda bn: GlobalBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats))


@contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, the BatchNorm layers of ``module`` that train normalise by the batch's
    statistics as usual but leave their running statistics (and batch count) as they were: for
    extra forward passes that are not the model's data (VAT's perturbed inputs)."""
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield module
    finally:
        for layer in layers:
            layer.track_running_stats = True
