"""The one-call Python API: :func:`train` a method and :func:`load_backbone` what it trained."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from selfsup.data import Source
from selfsup.methods.base import Method
from selfsup.run.build import build_trainer, resolve_run
from selfsup.run.config import RunConfig, load_settings, merge_settings
from selfsup.run.restore import load_backbone

__all__ = ["Run", "load_backbone", "train"]


@dataclass
class Run:
    """A finished (or resumed and finished) training run."""

    config: RunConfig
    """The resolved run (also in ``out_dir/config.toml`` and the checkpoint)."""
    out_dir: Path
    checkpoint: Path
    metrics: list[dict[str, float]]
    """The rows logged during this call (``out_dir/metrics.jsonl`` has the whole run)."""
    method: Method
    """The trained method, heads included."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Unreadable images replaced in their batches: path → reason."""

    @property
    def backbone(self) -> nn.Module:
        """The trained backbone."""
        backbone: nn.Module = self.method.backbone
        return backbone


def _describe(data: Any) -> str:
    if isinstance(data, np.ndarray):
        return f"<array {data.dtype} {tuple(data.shape)}>"
    return f"<{type(data).__name__} of {len(data)} images>"


def train(
    method: str | None = None,
    data: str | Path | Source | npt.NDArray[np.uint8] | None = None,
    out: str | Path | None = None,
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    backbone: str | nn.Module | None = None,
    resume: bool = False,
    allow_changes: bool = False,
    progress: bool = True,
    **settings: Any,
) -> Run:
    """Trains ``method`` on ``data`` into ``out`` and returns the :class:`Run`.

    Args:
        method: a registered method or recipe name (``"simclr"``, ``"mocov1"``).
        data: a registered dataset name, an image folder, a file list, tar shards, a
            :class:`~selfsup.data.Source` or a uint8 ``(N, H, W, C)`` array.
        out: the run folder (checkpoint, metrics, config.toml).
        config: a TOML run file or a mapping of settings; the arguments here override it.
        backbone: a registered backbone name, ``torchvision:NAME``, ``timm:NAME``, or your own
            ``nn.Module`` (returning ``(N, D)`` features; ``out_dim`` is measured when it lacks one).
        resume: continue from the checkpoint in ``out`` (see :meth:`selfsup.training.Trainer.resume`).
        **settings: any other key of :class:`~selfsup.run.config.RunConfig` (``steps=200``,
            ``lr=0.3``, ``options={"temperature": 0.2}``, ``device="cuda"``).

    The run is resolved from the method's registered recipe, then ``config``, then these
    arguments (:mod:`selfsup.run.config`).

    Raises:
        selfsup.run.config.ConfigError: an unknown setting (the closest one named) or a bad value.
        selfsup.plugins.UnknownNameError: an unknown method, dataset or backbone name.
        ValueError, TypeError: bad data, options or checkpoint, each naming its argument.
    """
    layers: list[Mapping[str, Any]] = []
    if isinstance(config, (str, Path)):
        layers.append(load_settings(config))
    elif config is not None:
        layers.append(dict(config))
    given: dict[str, Any] = {}
    if method is not None:
        given["method"] = method
    if isinstance(data, (str, Path)):
        given["data"] = str(data)
    elif data is not None:
        given["data"] = _describe(data)
    if out is not None:
        given["out"] = str(out)
    if isinstance(backbone, str):
        given["backbone"] = backbone
    elif backbone is not None:
        given["backbone"] = f"module:{type(backbone).__qualname__}"
    run = resolve_run(merge_settings(*layers, given, settings), source="selfsup.train")
    trainer = build_trainer(
        run, data=None if data is None or isinstance(data, (str, Path)) else data,
        backbone=backbone if isinstance(backbone, nn.Module) else None, progress=progress,
    )
    if resume and not trainer.resume(allow_changes=allow_changes):
        print(f"resume: no checkpoint in {run.out}; starting from step 0", file=sys.stderr)
    metrics = trainer.fit()
    return Run(run, Path(run.out), trainer.checkpoint_path, metrics, trainer.method, dict(trainer.skipped))
