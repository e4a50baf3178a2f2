"""Exporting a trained backbone: a state dict that says which architecture it holds, or ONNX.

Formats (``selfsup export --format``):

- ``selfsup``: ``{"format", "architecture": {"name", "options"}, "method", "state_dict"}``;
  :func:`selfsup.load_backbone` rebuilds the module from it (as from a checkpoint).
- ``torchvision``: the same envelope, for a backbone that is a torchvision model
  (``torchvision:NAME``, or ``resnet18``/``resnet50`` without ``small_inputs``); its
  ``state_dict`` loads into ``torchvision.models.get_model(NAME)`` with ``strict=False``, the
  classifier's weight and bias being the only missing keys.
- ``timm``: the same, for ``timm:NAME``; the ``state_dict`` loads strictly into
  ``timm.create_model(NAME, num_classes=0)``.
- ``onnx``: the backbone as an ONNX graph ``images (N, C, S, S) float32 -> features (N, D)``
  with a dynamic batch dimension, ``S`` the run's image size (needs ``onnx`` and ``onnxscript``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup.models.external import TIMM, TORCHVISION
from selfsup.training import save_checkpoint

FORMATS: tuple[str, ...] = ("selfsup", "torchvision", "timm", "onnx")
EXPORT_FORMAT = "selfsup-backbone"

_TORCHVISION_REGISTERED = {"resnet18": "resnet18", "resnet50": "resnet50"}


def zoo_name(spec: dict[str, Any], fmt: str) -> str:
    """The torchvision or timm model name of a backbone ``spec`` for format ``fmt``.

    Raises:
        ValueError: the backbone is not a model of that zoo.
    """
    name, options = spec["name"], spec.get("options", {})
    if fmt == "torchvision":
        if name.startswith(TORCHVISION):
            return str(name[len(TORCHVISION) :])
        if name in _TORCHVISION_REGISTERED and not options.get("small_inputs", False):
            return _TORCHVISION_REGISTERED[name]
        raise ValueError(f"format: the backbone {name} {options or ''} is not a torchvision architecture; export it as selfsup or onnx")
    if name.startswith(TIMM):
        return str(name[len(TIMM) :])
    raise ValueError(f"format: the backbone {name} is not a timm model; export it as selfsup or onnx")


def export_backbone(
    backbone: nn.Module, spec: dict[str, Any], out: str | Path, *, fmt: str = "selfsup", method: str = "", image_size: int = 32,
    in_channels: int = 3,
) -> Path:
    """Writes ``backbone`` (built from ``spec`` = ``{"name", "options"}``) to ``out`` in ``fmt``.

    Raises:
        ValueError: an unknown format, or a backbone that is not of the format's zoo.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        return export_onnx(backbone, out, image_size=image_size, in_channels=in_channels)
    architecture = dict(spec)
    if fmt in ("torchvision", "timm"):
        prefix = TORCHVISION if fmt == "torchvision" else TIMM
        architecture = {"name": prefix + zoo_name(spec, fmt), "options": {k: v for k, v in spec.get("options", {}).items() if k != "small_inputs"}}
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    envelope = {"format": EXPORT_FORMAT, "zoo": fmt, "architecture": architecture, "method": method, "state_dict": state}
    return save_checkpoint(envelope, out)


def export_onnx(backbone: nn.Module, out: str | Path, *, image_size: int, in_channels: int = 3) -> Path:
    """``backbone`` as ONNX (opset 18): input ``images (N, in_channels, image_size, image_size)``,
    output ``features (N, D)``, the batch dimension dynamic.

    Raises:
        ValueError: the ONNX exporter is not installed.
    """
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ValueError('format: ONNX export needs onnx and onnxscript: pip install "selfsup[onnx]"') from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone = backbone.cpu().eval()
    example = torch.zeros(2, in_channels, image_size, image_size)
    tmp = out.with_name(f".{out.name}.tmp")
    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.onnx.export(
            backbone, (example,), dynamo=True, input_names=["images"], output_names=["features"],
            dynamic_shapes=({0: batch},), opset_version=18,
        )
        assert program is not None
        program.save(str(tmp))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
