"""The shared constructor of the loss modules."""

from __future__ import annotations

from typing import Any

from torch import nn

from selfsup_kernels import _validate


class ContrastiveLossModule(nn.Module):
    """Holds and validates the options every fused loss takes; ``options`` are passed on as
    keyword arguments to the functional form."""

    def __init__(
        self, temperature: float, *, normalize: bool = True, reduction: str = "mean", gather: bool = False, backend: str = "auto", **extra: Any
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature: expected > 0, got {temperature}")
        _validate.check_options(reduction, backend)
        self.temperature = temperature
        self.options: dict[str, Any] = dict(normalize=normalize, reduction=reduction, gather=gather, backend=backend, **extra)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, " + ", ".join(f"{k}={v}" for k, v in self.options.items())
