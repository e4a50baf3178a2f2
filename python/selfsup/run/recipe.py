"""Recipes: how a registered method trains well, registered next to the method itself.

A :class:`Recipe` names a registered method and everything its training needs beyond the data
and the budget: the method's options, the backbone and its options, the optimizer, the peak
learning rate, weight decay, schedule, warm-up and batch size, and per-dataset overrides chosen on
that dataset's validation split. Plugins register recipes through the
``selfsup_register_recipes`` hook (:mod:`selfsup.hookspecs`); the recipe registered under a
method's own name is that method's default, and a recipe under another name is a named variant
(``mocov1`` is MoCo with ``version=1`` and its paper's optimizer).

``selfsup train``, :func:`selfsup.train`, ``selfsup compare`` and ``selfsup demo`` all read the
registered recipe; a run's own settings (config file, command line, keyword arguments) override it
key by key (:mod:`selfsup.run.config`). The evidence behind each built-in recipe is in
``docs/recipes.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw", "lars")
SCHEDULES: tuple[str, ...] = ("cosine", "onecycle")


@dataclass(frozen=True)
class Recipe:
    """The training settings of one registered method (see the module docstring).

    ``warmup_steps=None`` leaves the warm-up to the run (a tenth of its steps, at most 10).
    ``datasets`` maps a registered dataset name to the fields that change on it, for a method
    whose best setting differs between data sets: ``{"digits": {"options": {"mask_weight": 100.0}}}``
    (``options`` and ``backbone_options`` are merged key by key, other fields replaced).
    """

    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    backbone: str = "small_resnet"
    backbone_options: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int | None = None
    batch_size: int = 64
    datasets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    summary: str = ""
    """One line on where the settings come from (shown by ``selfsup methods --details``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"method: expected a registered method name, got {self.method!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay: expected >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {self.batch_size}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected >= 0, got {self.warmup_steps}")
        allowed = {f.name for f in fields(self)} - {"method", "datasets", "summary"}
        for dataset, changes in self.datasets.items():
            unknown = sorted(set(changes) - allowed)
            if unknown:
                raise ValueError(f"datasets: the entry for {dataset!r} changes unknown fields {unknown}; expected some of {sorted(allowed)}")

    def changed(self, **changes: Any) -> Recipe:
        """This recipe with ``changes``: ``options`` and ``backbone_options`` merged key by key,
        other fields replaced (``recipe.changed(lr=0.3, options={"prototypes": 30})``)."""
        for merged in ("options", "backbone_options"):
            if merged in changes:
                changes[merged] = {**getattr(self, merged), **changes[merged]}
        return replace(self, **changes)

    def on(self, dataset: str) -> Recipe:
        """This recipe with ``dataset``'s entry of :attr:`datasets` applied (unchanged for a data
        set without one)."""
        return self.changed(**self.datasets.get(dataset, {}), datasets={})

    def training_fields(self) -> dict[str, Any]:
        """The fields a run takes from the recipe, as plain values."""
        return {
            "backbone": self.backbone, "backbone_options": dict(self.backbone_options), "options": dict(self.options),
            "optimizer": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay, "schedule": self.schedule,
            "warmup_steps": self.warmup_steps, "batch_size": self.batch_size,
        }
