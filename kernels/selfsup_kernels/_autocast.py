"""Running the losses outside autocast: under ``torch.autocast`` the inputs of one loss may arrive in
different dtypes (a bfloat16 query from the autocast head, a float32 queue, bank or support set).
The losses take every embedding in the dtype of the first one and run with autocast off, their
kernels accumulating in float32 (``_core.compute_dtype``); outside autocast nothing changes, and
mixed dtypes are an error as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

_F = TypeVar("_F", bound=Callable[..., Any])
_LOW = (torch.bfloat16, torch.float16, torch.float32)


def _autocast_on(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4 takes no device type
        return bool(torch.is_autocast_enabled()) if device_type == "cuda" else bool(torch.is_autocast_cpu_enabled())


def outside_autocast(*embeddings: str) -> Callable[[_F], _F]:
    """Decorates a loss whose tensor parameters ``embeddings`` (by name, the first one leading)
    meet in one computation: under autocast on the leading tensor's device, the others are cast to
    its dtype and the loss runs with autocast disabled."""

    def decorate(fn: _F) -> _F:
        import inspect

        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            lead = bound.arguments.get(embeddings[0])
            if not isinstance(lead, torch.Tensor) or not _autocast_on(lead.device.type):
                return fn(*args, **kwargs)
            for name in embeddings[1:]:
                value = bound.arguments.get(name)
                if isinstance(value, torch.Tensor) and value.dtype in _LOW and lead.dtype in _LOW and value.dtype != lead.dtype:
                    bound.arguments[name] = value.to(lead.dtype)
            with torch.autocast(lead.device.type, enabled=False):
                return fn(*bound.args, **bound.kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
