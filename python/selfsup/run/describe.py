"""``selfsup methods --details NAME``: a method's paper, options with their defaults, and recipes."""

from __future__ import annotations

import inspect
import textwrap

from selfsup import plugins
from selfsup.run.build import method_and_recipe, method_parameters
from selfsup.run.recipe import Recipe


def _options(cls: type) -> list[str]:
    lines = []
    for name, parameter in method_parameters(cls).items():
        default = "required" if parameter.default is parameter.empty else repr(parameter.default)
        lines.append(f"  {name} = {default}")
    return lines


def _recipe_line(name: str, recipe: Recipe) -> str:
    settings = [f"optimizer={recipe.optimizer}", f"lr={recipe.lr:g}", f"weight_decay={recipe.weight_decay:g}", f"batch_size={recipe.batch_size}"]
    if recipe.backbone != "small_resnet" or recipe.backbone_options:
        settings.append(f"backbone={recipe.backbone} {dict(recipe.backbone_options) or ''}".rstrip())
    if recipe.options:
        settings.append(f"options={dict(recipe.options)}")
    if recipe.datasets:
        settings.append(f"per dataset={ {k: dict(v) for k, v in recipe.datasets.items()} }")
    text = f"  {name}: " + ", ".join(settings)
    return text + (f"\n    {recipe.summary}" if recipe.summary else "")


def describe_method(name: str) -> str:
    """What ``selfsup methods --details NAME`` prints.

    Raises:
        plugins.UnknownNameError: no method or recipe ``name``.
    """
    cls, _ = method_and_recipe(name)
    registry = plugins.registry()
    entry = registry.find("methods", cls.name)
    doc = inspect.getdoc(cls) or ""
    summary = doc.split("\n\n")[0]
    module_doc = (inspect.getdoc(inspect.getmodule(cls)) or "").split("\n\n")[0]
    lines = [f"{cls.name} ({cls.__module__}.{cls.__qualname__}; plugin {entry.plugin if entry else '?'})"]
    if entry is not None and entry.aliases:
        lines.append(f"aliases: {', '.join(entry.aliases)}")
    for paragraph in (module_doc, summary):
        if paragraph:
            lines += textwrap.wrap(" ".join(paragraph.split()), 100)
    lines.append("options (--option KEY=VALUE):")
    lines += _options(cls) or ["  none"]
    recipes = [(e.name, e.obj) for e in registry.registrations("recipes") if e.obj.method == cls.name]
    lines.append("recipes (--method NAME):" if recipes else "recipes: none registered (defaults: AdamW 1e-3)")
    lines += [_recipe_line(n, r) for n, r in recipes]
    return "\n".join(lines)
