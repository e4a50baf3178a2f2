"""Rebuilding what a checkpoint trained: its backbone (for evaluation and export) and its method
(for ``selfsup show``), from the names and options the run recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup import plugins
from selfsup.methods.base import Method
from selfsup.run.build import MODULE_BACKBONE, build_backbone
from selfsup.run.export import EXPORT_FORMAT
from selfsup.training import load_checkpoint
from selfsup.training.checkpoint import load_state_file


def backbone_spec(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``{"name", "options"}`` of the backbone a checkpoint trained.

    Raises:
        ValueError: a checkpoint that does not record it.
    """
    spec = state.get("metadata", {}).get("backbone")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"checkpoint: {path} does not say which backbone it trained (it was not written by selfsup train or selfsup.train)")
    return {"name": spec["name"], "options": dict(spec.get("options") or {})}


def architecture(state: dict[str, Any], path: str | Path, backbone: nn.Module | None = None) -> nn.Module:
    """The backbone a checkpoint trained, untrained: built from its recorded name and options (or
    ``backbone``, for a run that trained the caller's own module) and prepared as its method trains
    it (unchanged when the method's plugin is not installed).

    Raises:
        ValueError: no recorded backbone, or a user module's run without ``backbone``.
    """
    spec = backbone_spec(state, path)
    if backbone is None:
        if spec["name"].startswith(MODULE_BACKBONE):
            raise ValueError(f"checkpoint: {path} trained the caller's own {spec['name'][len(MODULE_BACKBONE):]}; pass an instance as backbone=")
        backbone = build_backbone(spec["name"], spec["options"])
    try:
        method_cls = plugins.get("methods", state["method"]) if "method" in state else None
    except plugins.UnknownNameError:
        method_cls = None  # the backbone alone still loads without the plugin that trained it
    prepare = getattr(method_cls, "prepare_backbone", None)
    if prepare is not None:
        backbone = prepare(backbone, **state.get("metadata", {}).get("method_options", {}))
    assert isinstance(backbone, nn.Module)
    return backbone


def load_weights(backbone: nn.Module, weights: dict[str, Any], path: str | Path, name: str) -> nn.Module:
    """``backbone`` with ``weights`` loaded strictly.

    Raises:
        ValueError: weights that do not fit (names the backbone and the first mismatch).
    """
    try:
        backbone.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"checkpoint: the weights of {path} do not fit {name} ({str(error).splitlines()[0]})") from None
    return backbone


EVALUATED_BACKBONES = ("ema.backbone.", "backbone.")
"""Where a checkpoint's backbone weights are, first match wins: the semi-supervised methods'
exponential moving average (the weights they are evaluated with), then the trained backbone."""


def backbone_from_state(state: dict[str, Any], path: str | Path, backbone: nn.Module | None = None) -> nn.Module:
    """The trained backbone of a loaded checkpoint ``state`` (:data:`EVALUATED_BACKBONES`: the
    EMA's for a semi-supervised run): :func:`architecture` with those weights loaded strictly.

    Raises:
        ValueError: no recorded backbone, a user module's run without ``backbone``, weights that do
            not fit.
    """
    model = state["model"]
    prefix = next((p for p in EVALUATED_BACKBONES if any(k.startswith(p) for k in model)), EVALUATED_BACKBONES[-1])
    weights = {k[len(prefix) :]: v for k, v in model.items() if k.startswith(prefix)}
    return load_weights(architecture(state, path, backbone), weights, path, f"its backbone {backbone_spec(state, path)['name']}")


def random_init_backbone(state: dict[str, Any], path: str | Path) -> nn.Module:
    """The architecture of a checkpoint's backbone, untrained, initialised as the run was
    (``torch.manual_seed`` of its seed first) and prepared as its method trains it."""
    torch.manual_seed(int(state.get("config", {}).get("seed", 0)))
    return architecture(state, path)


def load_backbone(checkpoint: str | Path, *, backbone: nn.Module | None = None, device: str = "cpu") -> nn.Module:
    """The trained backbone of ``checkpoint`` (a file written by ``selfsup train``,
    :func:`selfsup.train` or ``selfsup export`` in a state-dict format), in eval mode on ``device``; ``backbone`` is the module to load into
    for a run that trained the caller's own ``nn.Module``.

    Raises:
        FileNotFoundError: no file. ValueError: not a selfsup checkpoint, or one whose weights
            do not fit.
    """
    state = load_state_file(checkpoint)
    if state.get("format") == EXPORT_FORMAT:
        module = backbone_from_export(state, checkpoint, backbone)
    else:
        if "model" not in state:
            raise ValueError(f"checkpoint: {checkpoint} is neither a selfsup checkpoint nor an exported backbone")
        module = backbone_from_state(state, checkpoint, backbone)
    return module.to(device).eval()


def backbone_from_export(state: dict[str, Any], path: str | Path, backbone: nn.Module | None = None) -> nn.Module:
    """The backbone of a file written by ``selfsup export`` (formats selfsup, torchvision, timm)."""
    recorded = state.get("architecture")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("name"), str):
        raise ValueError(f"checkpoint: {path} is an export without its architecture")
    if backbone is None:
        backbone = build_backbone(recorded["name"], dict(recorded.get("options") or {}))
    if not isinstance(state.get("state_dict"), dict):
        raise ValueError(f"checkpoint: {path} is an export without its state_dict")
    return load_weights(backbone, state["state_dict"], path, recorded["name"])


def load_method(checkpoint: str | Path) -> tuple[Method, dict[str, Any]]:
    """The whole trained method of ``checkpoint`` (heads included) and the checkpoint's state.

    Raises:
        ValueError: as :func:`load_backbone`; plugins.UnknownNameError: the method that wrote it is
            not installed.
    """
    state = load_checkpoint(checkpoint)
    backbone = backbone_from_state(state, checkpoint)
    method: Method = plugins.get("methods", state["method"])(backbone, **state["metadata"].get("method_options", {}))
    if "dataset_size" in state["metadata"]:
        method.bind_dataset(int(state["metadata"]["dataset_size"]))
    method.load_state_dict(state["model"])
    assert isinstance(method, torch.nn.Module)
    return method, state
