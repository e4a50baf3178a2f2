"""From a run's settings to the objects that train it: the method and its recipe, the data
source, the backbone, the device and the :class:`~selfsup.training.Trainer`."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup import plugins
from selfsup.data import ArraySource, Source
from selfsup.data.sources import looks_like_path, open_data
from selfsup.methods.base import Method
from selfsup.models.external import external_backbone, is_external
from selfsup.run.config import DEVICE, ConfigError, RunConfig, resolve
from selfsup.run.recipe import Recipe
from selfsup.training import TrainConfig, Trainer

MODULE_BACKBONE = "module:"
"""Prefix of the backbone name a run records for a user's own ``nn.Module``."""


def method_and_recipe(name: str) -> tuple[type[Method], Recipe]:
    """The method class and recipe ``name`` stands for: a registered recipe (with the method it
    names), or a registered method (with the recipe under its name, or the defaults). Case does
    not matter.

    Raises:
        plugins.UnknownNameError: neither (the message gives the closest name).
    """
    registry = plugins.registry()
    found = registry.find("recipes", name)
    if found is not None:
        recipe: Recipe = found.obj
        return registry.get("methods", recipe.method), recipe
    method = registry.find("methods", name)
    if method is None:
        keys = list(registry.entries["methods"]) + list(registry.entries["recipes"])
        names = sorted(set(registry.names("methods")) | set(registry.names("recipes")))
        raise plugins.UnknownNameError(plugins.unknown_name_message("method", name, names, keys))
    default = registry.find("recipes", method.name)
    return method.obj, default.obj if default is not None else Recipe(method.name)


def resolve_run(settings: Mapping[str, Any], source: str = "run") -> RunConfig:
    """:func:`selfsup.run.config.resolve` over the recipe of ``settings["method"]``.

    Raises:
        ConfigError: no method, a bad key or value. plugins.UnknownNameError: an unknown method.
    """
    name = settings.get("method")
    if not isinstance(name, str) or not name:
        raise ConfigError("method: expected a registered method or recipe name (--method, or method = ... in the config file)")
    method_cls, recipe = method_and_recipe(name)
    registry = plugins.registry()
    found = registry.find("recipes", name) or registry.find("methods", name)
    canonical = {**settings, "method": found.name if found is not None else name}
    return resolve(canonical, recipe, in_channels=getattr(method_cls, "in_channels", None), source=source)


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda``/``cuda:K`` checked.

    Raises:
        ConfigError: CUDA asked for but absent, or no GPU ``K``.
    """
    if not DEVICE.fullmatch(device):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:K, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {device} asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device: {device} asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device: mps asked for, but this torch has no MPS device")
    return device


def build_backbone(name: str, options: Mapping[str, Any]) -> nn.Module:
    """The registered backbone ``name``, or ``torchvision:NAME`` / ``timm:NAME``, built with
    ``options`` (random init; seed torch first for a reproducible one).

    Raises:
        plugins.UnknownNameError, ValueError: an unknown name; TypeError: an unknown option.
    """
    if name.startswith(MODULE_BACKBONE):
        raise ValueError(f"backbone: {name} was the caller's own nn.Module; pass the module itself (backbone=...)")
    if is_external(name):
        return external_backbone(name, **options)
    factory = plugins.get("backbones", name)
    try:
        backbone: nn.Module = factory(**options)
    except TypeError as error:
        raise TypeError(f"backbone_options: {error}") from None
    return backbone


def ensure_out_dim(backbone: nn.Module, image_size: int, in_channels: int = 3) -> nn.Module:
    """Gives a user's ``backbone`` without an integer ``out_dim`` one, from the width of its
    output on a zero batch ``(2, in_channels, image_size, image_size)``.

    Raises:
        ValueError: the output is not ``(N, D)`` features.
    """
    if isinstance(getattr(backbone, "out_dim", None), int):
        return backbone
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.zeros(2, in_channels, image_size, image_size))
    backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"backbone: expected an nn.Module returning (N, D) features, got {shape}; pool or flatten its output")
    setattr(backbone, "out_dim", int(out.shape[1]))
    return backbone


def method_parameters(cls: Any) -> dict[str, inspect.Parameter]:
    """The options ``cls(backbone, **options)`` takes: its constructor's keyword parameters and,
    where it passes ``**options`` on, those of the base classes' constructors it passes them to."""
    found: dict[str, inspect.Parameter] = {}
    for klass in getattr(cls, "__mro__", (cls,)):
        init = klass.__dict__.get("__init__") if isinstance(klass, type) else None
        if init is None:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[2:]
        except (TypeError, ValueError):
            return found
        for parameter in parameters:
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                found.setdefault(parameter.name, parameter)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return found


def takes_option(cls: Any, option: str) -> bool:
    return option in method_parameters(cls)


def semi_supervised_methods() -> list[str]:
    registry = plugins.registry()
    return sorted(name for name in registry.names("methods") if getattr(registry.get("methods", name), "semi_supervised", False))


def semi_supervised_data(source: Source, config: RunConfig) -> Source:
    """``source`` as labelled + unlabelled data (:class:`~selfsup.data.semi.SemiSupervisedSource`):
    ``labels_per_class`` labels per class drawn with ``label_seed``, and the ``unlabelled`` pool
    (else all of ``source``, labels hidden). A semi-supervised source passes as it is.

    Raises:
        ConfigError: an unlabelled ``data``, a pool that cannot be opened, a bad label count.
    """
    from selfsup.data.semi import SemiSupervisedSource

    if isinstance(source, SemiSupervisedSource):
        return source
    if not source.labeled:
        raise ConfigError(
            f"data: method {config.method} trains on labelled and unlabelled images and {config.data} has no labels "
            "(an image folder with one sub-folder per class, or a .csv of path,label; the pool goes in --unlabelled)"
        )
    pool = None
    if config.unlabelled:
        try:
            pool = open_data(config.unlabelled)
        except ValueError as error:
            raise ConfigError(f"unlabelled: {str(error).removeprefix('data: ')}") from None
    try:
        return SemiSupervisedSource.from_labelled(source, per_class=config.labels_per_class, seed=config.label_seed, unlabelled=pool)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def class_count(source: Source) -> int:
    """K: the class names of a folder's labelled part, else one more than its largest label."""
    names = getattr(source, "classes", None)
    labels = [t for t in source.targets if t >= 0]
    return max(len(names) if names else 0, max(labels) + 1 if labels else 0, 2)


def build_trainer(
    config: RunConfig,
    *,
    data: Source | npt.NDArray[np.uint8] | None = None,
    backbone: nn.Module | None = None,
    progress: bool = True,
) -> Trainer:
    """The trainer of ``config``: its data (``data`` when given, else :func:`open_data` of
    ``config.data``), backbone (``backbone`` when given, else built after
    ``torch.manual_seed(config.seed)``), method, device and loggers.

    Raises:
        ValueError, TypeError: as the parts do, each naming its setting.
    """
    method_cls, _ = method_and_recipe(config.method)
    if data is None and method_cls.takes_clips and looks_like_path(config.data):
        from selfsup.data.clips import open_clips

        try:
            source: Source = open_clips(config.data)
        except (OSError, ValueError) as error:
            raise ConfigError(f"data: {str(error).removeprefix('data: ')}") from None
    elif data is None:
        source = open_data(config.data)
    elif isinstance(data, np.ndarray):
        source = ArraySource(data)
    else:
        source = data
    options = dict(config.options)
    if method_cls.semi_supervised:
        source = semi_supervised_data(source, config)
        options.setdefault("classes", class_count(source))
    elif config.labels_per_class is not None or config.unlabelled:
        raise ConfigError(
            f"labels_per_class, unlabelled: only the semi-supervised methods ({', '.join(semi_supervised_methods())}) read them, "
            f"not {config.method}"
        )
    if method_cls.uses_labels and not source.labeled:
        raise ValueError(
            f"data: method {config.method} trains on class labels and {config.data} has none"
            " (an image folder needs one sub-folder per class)"
        )
    device = resolve_device(config.device)
    in_memory = getattr(source, "images", None)
    clips = getattr(source, "clips", None)
    if isinstance(clips, np.ndarray):
        in_memory = clips.reshape(-1, *clips.shape[-3:])
    from_files = not isinstance(in_memory, np.ndarray)
    torch.manual_seed(config.seed)
    if backbone is None:
        backbone = build_backbone(config.backbone, config.backbone_options)
        backbone_spec = {"name": config.backbone, "options": dict(config.backbone_options)}
    else:
        backbone_spec = {"name": MODULE_BACKBONE + type(backbone).__qualname__, "options": {}}
    if config.init:
        from selfsup.run.restore import load_backbone

        backbone = load_backbone(config.init, backbone=backbone).train()
    size = config.image_size if from_files else int(in_memory.shape[1])  # type: ignore[union-attr]
    backbone = ensure_out_dim(backbone, size, int(getattr(method_cls, "in_channels", 3)))
    if from_files and method_cls.takes_originals and takes_option(method_cls, "image_size"):
        options.setdefault("image_size", config.image_size)
    try:
        method = method_cls(backbone, **options)
    except TypeError as error:
        raise TypeError(f"options: {error}") from None
    train_config = TrainConfig(
        steps=config.steps, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay, optimizer=config.optimizer,
        schedule=config.schedule, warmup_steps=config.warmup, accumulate=config.accumulate, amp=config.amp, seed=config.seed,
        checkpoint_every=config.checkpoint_every, log_every=config.log_every, progress=progress, device=device,
        workers=config.workers, prefetch=config.prefetch, sync_bn=config.sync_bn, loggers=tuple(config.log),
    )
    metadata = {
        "backbone": backbone_spec, "method_options": options, "data": config.data, "image_size": size, "run": asdict(config),
    }
    return Trainer(
        method, source, train_config, Path(config.out), metadata=metadata, image_size=config.image_size if from_files else None,
        run_files={"config.toml": config.to_toml()},
    )
