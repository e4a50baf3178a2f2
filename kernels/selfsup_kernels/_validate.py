"""Argument checks shared by the losses: every error names the argument."""

from __future__ import annotations

import torch

BACKENDS = ("auto", "triton", "torch", "reference")
REDUCTIONS = ("mean", "sum", "none")


def check_embeddings(x: torch.Tensor, name: str, ndim: int = 2) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: the batch is empty")
    if x.shape[-1] == 0:
        raise ValueError(f"{name}: the embedding dimension is 0")
    # a data-dependent check would break a torch.compile graph: eager calls only
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: contains NaN or infinity")


def check_same(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str, *, shape: bool = True) -> None:
    if shape and a.shape != b.shape:
        raise ValueError(f"{name_b}: expected the shape of {name_a} {tuple(a.shape)}, got {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{name_b}: expected embedding dimension {a.shape[-1]} like {name_a}, got {b.shape[-1]}")
    if a.device != b.device:
        raise ValueError(f"{name_b}: on {b.device}, but {name_a} is on {a.device}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name_b}: dtype {b.dtype} differs from {name_a}'s {a.dtype}")


def temperature(temperature: float | torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, float | None]:
    """The temperature as a 0-dim tensor on ``like``'s device in the compute dtype (float64 for
    float64 embeddings, else float32; keeping its autograd graph), and its value when known
    without a device sync inside ``torch.compile``."""
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature: expected a scalar, got shape {tuple(temperature.shape)}")
        t = temperature.reshape(()).to(device=like.device, dtype=dtype)
        if torch.compiler.is_compiling():
            return t, None
        value = float(t.detach())
    elif isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        value = float(temperature)
        t = torch.tensor(value, device=like.device, dtype=dtype)
    else:
        raise TypeError(f"temperature: expected a float or a tensor, got {type(temperature).__name__}")
    if not value > 0 or value != value:
        raise ValueError(f"temperature: expected > 0, got {value}")
    return t, value


def check_options(reduction: str, backend: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")


def row_weights(reduction: str, rows: int, keep: torch.Tensor | None = None, device: torch.device | None = None) -> torch.Tensor | None:
    """Weights ρ with the reduced loss = Σ_i ρ_i ℓ_i (``None`` for ``reduction="none"``); rows not
    in ``keep`` weigh 0."""
    if reduction == "none":
        return None
    weights = torch.ones(rows, device=device) if keep is None else keep.float()
    if reduction == "mean":
        weights = weights / weights.sum()
    return weights


def reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses
