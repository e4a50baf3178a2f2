"""The plugin API of selfsup: five registration hooks (pluggy project name ``"selfsup"``).

A plugin is a module (or object) with functions named like the hooks below and marked with
:data:`hookimpl`. Each hook receives one ``register`` callback; call it once per thing the plugin
adds. Built-in methods and tasks register through these very hooks.

A third-party package exposes its plugin module through an entry point of group ``selfsup``::

    [project.entry-points.selfsup]
    mytask = "my_package.plugin"

and implements, e.g.::

    from selfsup.hookspecs import hookimpl

    @hookimpl
    def selfsup_register_pretext_tasks(register):
        register(MyTask, aliases=("mine",))
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("selfsup")
hookimpl = pluggy.HookimplMarker("selfsup")


class Register(Protocol):
    """The callback a registration hook receives.

    ``register(obj, name=None, aliases=())`` adds ``obj`` under ``name`` (default: ``obj.name``)
    and each alias. Raises ``ValueError`` when the name is empty or already taken by another
    plugin (the message names both plugins).
    """

    def __call__(self, obj: Any, name: str | None = None, aliases: tuple[str, ...] = ()) -> None: ...


@hookspec
def selfsup_register_methods(register: Register) -> None:
    """Register training methods: ``nn.Module`` subclasses that declare the views they need,
    implement ``training_step(batch) -> {"loss": ..., **metrics}`` and expose ``.backbone``.
    Example: ``register(SimCLR, aliases=("simclr",))``."""


@hookspec
def selfsup_register_pretext_tasks(register: Register) -> None:
    """Register data-side pretext tasks: callables ``task(images, *, seed, epoch, indices) ->
    PretextBatch(inputs, targets)`` that turn a uint8 ``(N, H, W, C)`` batch into network inputs
    and self-supervised targets (through the native ops, never a Python pixel loop).
    Example: ``register(Rotation, aliases=("rotnet",))``."""


@hookspec
def selfsup_register_backbones(register: Register) -> None:
    """Register backbone factories: ``factory(**options) -> nn.Module`` returning a feature
    extractor with an integer ``out_dim`` attribute. Example: ``register(resnet18, name="resnet18")``."""


@hookspec
def selfsup_register_datasets(register: Register) -> None:
    """Register dataset factories: ``factory(**options)`` returning a map-style dataset of uint8
    ``(H, W, C)`` images (and labels where known). Example: ``register(digits, name="digits")``."""


@hookspec
def selfsup_register_recipes(register: Register) -> None:
    """Register training recipes (:class:`selfsup.run.recipe.Recipe`): a method's options,
    backbone, optimizer, learning rate, weight decay, schedule, warm-up, batch size and per-dataset
    overrides. The recipe registered under a method's own name is its default for ``selfsup train``,
    :func:`selfsup.train`, ``compare`` and ``demo``; other names are variants that ``--method``
    accepts too. Example: ``register(Recipe("moco", {"version": 1}, optimizer="sgd", lr=0.3), name="mocov1")``."""
