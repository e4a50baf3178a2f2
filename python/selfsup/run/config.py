"""A run as one value: :class:`RunConfig`, its TOML file, and how it is resolved.

Every setting of ``selfsup train`` is a field of :class:`RunConfig` and a key of its TOML file
(``--batch-size`` is ``batch_size``; ``--option k=v`` and ``--backbone-option k=v`` fill the
``[options]`` and ``[backbone_options]`` tables). A run is resolved from four layers, each
overriding the one before key by key (the two tables merged entry by entry):

1. the defaults of :class:`RunConfig`;
2. the registered recipe of the method (:class:`selfsup.run.recipe.Recipe`; with its entry for the
   data set when ``data`` names a registered one);
3. the config file (``--config run.toml``);
4. the command line, or the keyword arguments of :func:`selfsup.train`.

The resolved run is written to the run folder as ``config.toml`` and into every checkpoint, so
``selfsup train --config runs/x/config.toml`` trains the same run again. An unknown key or a value
of the wrong type is a :class:`ConfigError` naming the key (and the closest valid key).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from selfsup.run.recipe import OPTIMIZERS, SCHEDULES, Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
LOGGERS: tuple[str, ...] = ("jsonl", "tensorboard")
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")
"""The device strings a run takes."""
SMALL_RESNET_WIDTH = 16
"""The ``small_resnet`` width a run gets unless it sets one: the width every table in docs/ used."""


class ConfigError(ValueError):
    """A bad run setting: an unknown key, a value of the wrong type or out of range."""


def _setting(default: Any, kind: str, help: str, *, factory: Any = None) -> Any:
    metadata = {"kind": kind, "help": help}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """Everything that defines a training run (see the module docstring for how it is resolved).

    ``kind`` in each field's metadata is the type a config file must give: ``int``, ``pos``
    (positive int), ``float``, ``str``, ``bool``, ``table`` (key/value pairs), ``list`` (strings)
    or ``int?`` (an int, or left out).
    """

    method: str = _setting("", "str", "registered method or recipe name (see `selfsup methods`), e.g. simclr, mocov1")
    data: str = _setting(
        "digits", "str",
        "a registered dataset, an image folder (class sub-folders or flat), WebDataset tar shards "
        "(dir/train-{000000..000127}.tar) or a file list (.txt paths, .csv path,label)",
    )
    labels_per_class: int | None = _setting(
        None, "int?", "semi-supervised methods: labelled images per class, drawn from data with label_seed (unset: every label)"
    )
    label_seed: int = _setting(0, "int", "semi-supervised methods: the seed that draws the labelled images")
    unlabelled: str = _setting(
        "", "str", "semi-supervised methods: the unlabelled pool, a folder, shards or file list (empty: all of data, labels hidden)"
    )
    init: str = _setting(
        "", "str", "start from the backbone of a checkpoint or exported backbone (pretraining, then semi-supervised fine-tuning)"
    )
    out: str = _setting("runs/train", "str", "run folder: checkpoint.pt, metrics.jsonl, config.toml")
    backbone: str = _setting(
        "small_resnet", "str",
        "registered backbone, torchvision:NAME (any torchvision classification model) or timm:NAME (with selfsup[timm])",
    )
    backbone_options: dict[str, Any] = _setting(None, "table", "backbone options (KEY=VALUE)", factory=dict)
    options: dict[str, Any] = _setting(None, "table", "method options (KEY=VALUE), see `selfsup methods --details NAME`", factory=dict)
    steps: int = _setting(300, "pos", "optimizer steps")
    batch_size: int = _setting(64, "pos", "images per micro-batch (global, split over DDP ranks)")
    lr: float = _setting(1e-3, "float", "peak learning rate")
    weight_decay: float = _setting(1e-4, "float", "decoupled (AdamW) or L2 (SGD, LARS) weight decay, >= 0")
    optimizer: str = _setting("adamw", "str", f"one of {', '.join(OPTIMIZERS)}")
    schedule: str = _setting("cosine", "str", "cosine (linear warm-up, then cosine) or onecycle")
    warmup_steps: int | None = _setting(None, "int?", "linear warm-up steps (unset: a tenth of the steps, at most 10)")
    accumulate: int = _setting(1, "pos", "micro-batches per optimizer step")
    amp: str = _setting("none", "str", "mixed precision: none, bf16 or fp16")
    seed: int = _setting(0, "int", "initialisation, data order and augmentation seed")
    checkpoint_every: int = _setting(50, "pos", "steps between checkpoints (and at the end)")
    log_every: int = _setting(10, "pos", "steps between metrics rows")
    image_size: int = _setting(64, "pos", "with files: the crop side of view-based methods and the side of the centre squares others see")
    workers: int = _setting(0, "int", "forked loader processes; 0 builds batches in the main process on every core")
    prefetch: int = _setting(2, "pos", "batches built ahead of the step, per worker")
    sync_bn: bool = _setting(False, "bool", "under torchrun: BatchNorm statistics over the global batch")
    device: str = _setting("auto", "str", "auto (CUDA when present), cpu, cuda or cuda:K")
    log: list[str] = _setting(None, "list", "loggers besides metrics.jsonl: tensorboard (with selfsup[tensorboard])", factory=list)

    def validate(self) -> None:
        """Raises :class:`ConfigError` naming the first bad value."""
        check_types(asdict(self), "run")
        if not self.method:
            raise ConfigError("method: expected a registered method or recipe name")
        for name in ("steps", "batch_size", "accumulate", "checkpoint_every", "log_every", "image_size", "prefetch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: expected a positive int, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr: expected a positive learning rate, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"weight_decay: expected a number >= 0, got {self.weight_decay}")
        if self.labels_per_class is not None and self.labels_per_class < 1:
            raise ConfigError(f"labels_per_class: expected a positive int, got {self.labels_per_class}")
        if self.workers < 0:
            raise ConfigError(f"workers: expected an int >= 0, got {self.workers}")
        for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("amp", AMP_MODES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.steps:
            raise ConfigError(f"warmup_steps: expected 0 to steps ({self.steps}), got {self.warmup_steps}")
        if not DEVICE.fullmatch(self.device):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:K, got {self.device!r}")
        unknown = sorted(set(self.log) - set(LOGGERS))
        if unknown:
            raise ConfigError(f"log: expected some of {', '.join(LOGGERS)}, got {unknown}")

    @property
    def warmup(self) -> int:
        """The warm-up steps of the run: :attr:`warmup_steps`, or a tenth of the steps, at most 10."""
        return self.warmup_steps if self.warmup_steps is not None else min(10, self.steps // 10)

    def to_toml(self) -> str:
        """The run as a TOML document that :func:`load_settings` reads back to the same run."""
        return dumps_toml(asdict(self))


KINDS: dict[str, str] = {f.name: f.metadata["kind"] for f in fields(RunConfig)}
"""The type each key takes (see :class:`RunConfig`)."""
TABLES = tuple(name for name, kind in KINDS.items() if kind == "table")
RECIPE_KEYS: tuple[str, ...] = (
    "backbone", "backbone_options", "options", "optimizer", "lr", "weight_decay", "schedule", "warmup_steps", "batch_size",
)
"""The keys whose default comes from the method's registered recipe."""


def default_of(name: str) -> Any:
    """The default value of field ``name`` of :class:`RunConfig`."""
    spec = {f.name: f for f in fields(RunConfig)}[name]
    if spec.default is not MISSING:
        return spec.default
    factory: Any = spec.default_factory
    return factory()


def help_of(name: str) -> str:
    return str({f.name: f for f in fields(RunConfig)}[name].metadata["help"])


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("int", "pos"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "int?":
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "table":
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_EXPECTED = {
    "int": "an integer", "pos": "a positive integer", "int?": "an integer", "float": "a finite number", "str": "a string",
    "bool": "true or false", "table": "a table of key = value", "list": "a list of strings",
}


SYNONYMS: dict[str, str] = {
    "learning_rate": "lr", "wd": "weight_decay", "batch": "batch_size", "model": "backbone", "arch": "backbone",
    "architecture": "backbone", "dataset": "data", "output": "out", "output_dir": "out", "warmup": "warmup_steps",
    "precision": "amp", "method_options": "options", "num_workers": "workers", "iterations": "steps", "max_steps": "steps",
}
"""Names other tools use for a key, for the "did you mean" hint."""


def closest_key(key: str) -> str | None:
    """The run setting ``key`` most likely means, or None."""
    if key.replace("-", "_") in KINDS:
        return key.replace("-", "_")
    if key in SYNONYMS:
        return SYNONYMS[key]
    close = difflib.get_close_matches(key, list(KINDS), n=1, cutoff=0.5)
    return close[0] if close else None


def check_types(values: Mapping[str, Any], source: str) -> None:
    """Raises :class:`ConfigError` for a key of ``values`` that is not a run setting (naming the
    closest one) or whose value has the wrong type. ``source`` names where the values come from."""
    for key, value in values.items():
        if key not in KINDS:
            close = closest_key(key)
            hint = f" (did you mean {close!r}?)" if close else f"; the keys are {', '.join(KINDS)}"
            raise ConfigError(f"{source}: unknown key {key!r}{hint}")
        kind = KINDS[key]
        if not _type_ok(kind, value):
            raise ConfigError(f"{source}: key {key!r} expects {_EXPECTED[kind]}, got {json.dumps(value, default=repr)}")


def load_settings(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML run file, checked by :func:`check_types`.

    Raises:
        ConfigError: a missing or unreadable file, invalid TOML, an unknown key, a wrong type.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: no file at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config: {path} cannot be read ({error})") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config: {path} is not valid TOML ({error})") from None
    check_types(values, f"config {path}")
    return dict(values)


def merge_settings(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers override earlier ones key by key; the tables are merged entry by entry."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key in TABLES and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def parse_value(text: str) -> Any:
    """A ``KEY=VALUE`` option's value from the command line: an int, a float, true/false, or the
    text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def resolve(settings: Mapping[str, Any], recipe: Recipe, *, in_channels: int | None = None, source: str = "run") -> RunConfig:
    """The run of ``settings`` (the config file's and command line's, merged) over the
    registered ``recipe`` of its method (see the module docstring).

    The recipe's backbone options apply only when the run keeps the recipe's backbone.
    ``small_resnet`` gets width 16 unless set, and ``in_channels`` where the method needs
    another number of input channels (colorization's L).

    Raises:
        ConfigError: an unknown key, a wrong type, a bad value.
    """
    check_types(settings, source)
    recipe = recipe.on(str(settings.get("data", default_of("data"))))
    base = {f.name: default_of(f.name) for f in fields(RunConfig)}
    base.update(recipe.training_fields())
    if settings.get("backbone", recipe.backbone) != recipe.backbone:
        base["backbone_options"] = {}
    values = merge_settings(base, settings)
    if values["backbone"] == "small_resnet":
        values["backbone_options"].setdefault("width", SMALL_RESNET_WIDTH)
        if in_channels is not None:
            values["backbone_options"].setdefault("in_channels", in_channels)
    config = RunConfig(**values)
    config.validate()
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"config: cannot write the non-finite number {value}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"config: cannot write a value of type {type(value).__name__} ({value!r})")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def dumps_toml(values: Mapping[str, Any]) -> str:
    """``values`` as TOML: plain keys first, then one ``[table]`` per dict; ``None`` values are
    left out (an unset key)."""
    lines = ["# selfsup run: `selfsup train --config THIS_FILE` trains it again"]
    tables = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, table in tables:
        lines += ["", f"[{_toml_key(key)}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"
