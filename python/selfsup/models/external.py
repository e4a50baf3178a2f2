"""Backbones from other model zoos, by name, random init, no weights downloaded.

- ``torchvision:NAME``: any torchvision classification model (``torchvision.models.list_models``),
  built with ``weights=None`` and its last ``nn.Linear`` (the classifier) replaced by
  ``nn.Identity``, so the output is the penultimate feature; ``out_dim`` is that layer's
  ``in_features``. The models with auxiliary classifiers (GoogLeNet, Inception v3) are built
  without them.
- ``timm:NAME``: ``timm.create_model(NAME, pretrained=False, num_classes=0)`` (the pooled
  features; needs the optional extra ``selfsup[timm]``); ``out_dim`` is timm's feature width.

The state dict of such a backbone is the zoo model's own minus the classifier, so an exported
file loads into the plain model (:mod:`selfsup.run.export`).
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from torch import nn

TORCHVISION = "torchvision:"
TIMM = "timm:"


def is_external(name: str) -> bool:
    return name.startswith((TORCHVISION, TIMM))


def classifier_name(model: nn.Module) -> str:
    """The qualified name of the last ``nn.Linear`` of ``model`` (its classifier).

    Raises:
        ValueError: a model without one (SqueezeNet classifies with a convolution).
    """
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ValueError(f"backbone: {type(model).__name__} has no nn.Linear classifier to remove; choose another model")
    return str(linear[-1])


def _replace(model: nn.Module, qualified: str, replacement: nn.Module) -> None:
    parent_name, _, child = qualified.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, replacement)


def torchvision_backbone(name: str, **options: Any) -> nn.Module:
    """The torchvision classification model ``name`` without its classifier (module docstring).

    Raises:
        ValueError: not a torchvision classification model (the closest names in the message),
            or one without a linear classifier.
    """
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; {len(names)} models, e.g. resnet18, convnext_tiny, vit_b_16"
        raise ValueError(f"backbone: {name!r} is not a torchvision classification model{hint}")
    builder = torchvision.models.get_model_builder(name)
    if "aux_logits" in inspect.signature(builder).parameters or name in ("googlenet", "inception_v3"):
        options.setdefault("aux_logits", False)
        options.setdefault("init_weights", True)
    model: nn.Module = builder(weights=None, **options)
    head = classifier_name(model)
    linear = model.get_submodule(head)
    assert isinstance(linear, nn.Linear)
    _replace(model, head, nn.Identity())
    setattr(model, "out_dim", int(linear.in_features))
    setattr(model, "classifier_key", head)
    return model


def timm_backbone(name: str, **options: Any) -> nn.Module:
    """The timm model ``name`` with ``num_classes=0`` (pooled features), random init.

    Raises:
        ValueError: timm is not installed (names the extra), or no timm model is called ``name``.
    """
    try:
        import timm
    except ImportError:
        raise ValueError('backbone: timm models need timm: pip install "selfsup[timm]"') from None
    if name not in timm.list_models():
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"backbone: {name!r} is not a timm model{hint}")
    model: nn.Module = timm.create_model(name, pretrained=False, num_classes=0, **options)
    width = getattr(model, "head_hidden_size", None) or getattr(model, "num_features")
    setattr(model, "out_dim", int(width))
    return model


def external_backbone(name: str, **options: Any) -> nn.Module:
    """``torchvision:NAME`` or ``timm:NAME`` (see the module docstring)."""
    if name.startswith(TORCHVISION):
        return torchvision_backbone(name[len(TORCHVISION) :], **options)
    if name.startswith(TIMM):
        return timm_backbone(name[len(TIMM) :], **options)
    raise ValueError(f"backbone: {name!r} names no model zoo; expected torchvision:NAME or timm:NAME")
