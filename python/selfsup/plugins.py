"""Loading plugins: the built-ins first, then every entry point of group ``selfsup``.

Loading is lazy (on first use) and forgiving: a plugin that fails to import, whose hook raises,
or that registers a name another plugin already owns is recorded with its error, reported with a
warning (and by ``selfsup plugins``), and everything else still loads. ``SELFSUP_PLUGINS``
controls third-party loading: unset or ``all`` loads every entry point, ``none`` loads none,
``a,b`` loads only the entry points named ``a`` and ``b``. Built-ins always load.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from selfsup import hookspecs

Kind = Literal["methods", "pretext_tasks", "backbones", "datasets", "recipes"]
KINDS: tuple[Kind, ...] = ("methods", "pretext_tasks", "backbones", "datasets", "recipes")
ENTRY_POINT_GROUP = "selfsup"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "selfsup.pretext.rotation",
    "selfsup.pretext.jigsaw",
    "selfsup.pretext.relative",
    "selfsup.data.embedded",
    "selfsup.data.digits",
    "selfsup.data.photo_patches",
    "selfsup.data.shapes",
    "selfsup.data.moving_digits",
    "selfsup.models.backbones",
    "selfsup.models.vit",
    "selfsup.models.video",
    "selfsup.methods.rotnet",
    "selfsup.methods.simclr",
    "selfsup.methods.moco",
    "selfsup.methods.byol",
    "selfsup.methods.simsiam",
    "selfsup.methods.barlow_twins",
    "selfsup.methods.vicreg",
    "selfsup.methods.nnclr",
    "selfsup.methods.dino",
    "selfsup.methods.instdisc",
    "selfsup.methods.local_aggregation",
    "selfsup.methods.cpc",
    "selfsup.methods.infomax",
    "selfsup.methods.swav",
    "selfsup.methods.supcon",
    "selfsup.methods.cmc",
    "selfsup.methods.pirl",
    "selfsup.methods.jigsaw",
    "selfsup.methods.relative",
    "selfsup.methods.autoencoder",
    "selfsup.methods.bigan",
    "selfsup.methods.colorization",
    "selfsup.methods.inpainting",
    "selfsup.methods.corruption",
    "selfsup.methods.mae",
    "selfsup.methods.semi_supervised",
    "selfsup.methods.fixmatch",
    "selfsup.methods.uda",
    "selfsup.methods.mixmatch",
    "selfsup.methods.s4l",
    "selfsup.methods.label_augmentation",
    "selfsup.methods.shuffle_learn",
    "selfsup.methods.tcn",
    "selfsup.methods.odd_one_out",
    "selfsup.methods.rho_clips",
    "selfsup.methods.tracking",
)
"""Modules of the built-in plugins, registered exactly like third-party ones."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded or registered; the others were."""


class UnknownNameError(ValueError):
    """A name that no loaded plugin registered."""


@dataclass(frozen=True)
class Registration:
    kind: Kind
    name: str
    obj: Any
    plugin: str
    aliases: tuple[str, ...] = ()


@dataclass
class PluginInfo:
    name: str
    source: str
    """``builtin`` or the distribution that provides the entry point."""
    error: str | None = None
    registered: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """What the loaded plugins registered, by kind and name (aliases included)."""

    entries: dict[Kind, dict[str, Registration]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    def find(self, kind: Kind, name: str) -> Registration | None:
        """The registration of ``name`` (or an alias), matched without regard to case; None if
        there is none."""
        entry = self.entries[kind].get(name)
        if entry is None:
            folded = name.casefold()
            matches = [e for key, e in self.entries[kind].items() if key.casefold() == folded]
            entry = matches[0] if len(matches) == 1 else None
        return entry

    def get(self, kind: Kind, name: str) -> Any:
        """The object registered as ``name`` (or alias; case does not matter).

        Raises:
            UnknownNameError: no such name; the message gives the closest registered names and
                the list of all of them.
        """
        entry = self.find(kind, name)
        if entry is None:
            raise UnknownNameError(unknown_name_message(kind.rstrip("s").replace("_", " "), name, self.names(kind), list(self.entries[kind])))
        return entry.obj

    def names(self, kind: Kind) -> list[str]:
        """Primary names of ``kind``, sorted (aliases left out)."""
        return sorted({e.name for e in self.entries[kind].values()})

    def registrations(self, kind: Kind) -> list[Registration]:
        unique = {e.name: e for e in self.entries[kind].values()}
        return [unique[n] for n in sorted(unique)]

    def add_batch(self, plugin: str, batch: list[Registration]) -> None:
        """Commits one hook call's registrations, all or nothing."""
        staged: dict[tuple[Kind, str], Registration] = {}
        for entry in batch:
            for key in (entry.name, *entry.aliases):
                owner = self.entries[entry.kind].get(key) or staged.get((entry.kind, key))
                if owner is not None:
                    raise ValueError(
                        f"{entry.kind.rstrip('s').replace('_', ' ')} name {key!r} of plugin {plugin!r} "
                        f"clashes with the one registered by plugin {owner.plugin!r}"
                    )
                staged[(entry.kind, key)] = entry
        for (kind, key), entry in staged.items():
            self.entries[kind][key] = entry
        self.plugins[plugin].registered.extend(f"{e.kind}:{e.name}" for e in batch)


def unknown_name_message(what: str, name: str, names: list[str], keys: list[str] | None = None) -> str:
    """``unknown WHAT 'name' (did you mean 'x'?); registered: a, b, c``, the hint from the closest
    of ``keys`` (default ``names``: primary names and aliases) when one is close."""
    close = difflib.get_close_matches(name.casefold(), [k.casefold() for k in keys or names], n=1, cutoff=0.6)
    lowered = {k.casefold(): k for k in keys or names}
    hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
    return f"unknown {what} {name!r}{hint}; registered: {', '.join(names) or 'none'}"


def make_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("selfsup")
    manager.add_hookspecs(hookspecs)
    return manager


def installed_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Entry points of group ``selfsup`` of installed distributions. The current directory is left
    out of the search even where it is on ``sys.path`` (``python -m selfsup``, ``torchrun -m``): a
    ``*.dist-info`` folder lying in the working directory is not an installed plugin."""
    here = os.path.realpath(os.getcwd())
    path = [p for p in sys.path if p and os.path.realpath(p) != here]
    points: dict[str, importlib.metadata.EntryPoint] = {}
    for dist in importlib.metadata.distributions(path=path):
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                points.setdefault(ep.name, ep)  # the first on the path wins, as for imports
    return sorted(points.values(), key=lambda ep: ep.name)


def selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points that ``SELFSUP_PLUGINS`` selects (``all``, ``none`` or names);
    a name that matches no installed plugin is warned about."""
    setting = os.environ.get("SELFSUP_PLUGINS", "all").strip()
    points = installed_entry_points()
    if setting in ("", "all"):
        return points
    if setting == "none":
        return []
    wanted = {name.strip() for name in setting.split(",") if name.strip()}
    unknown = sorted(wanted - {ep.name for ep in points})
    for name in unknown:
        close = difflib.get_close_matches(name, [ep.name for ep in points], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; installed: {', '.join(ep.name for ep in points) or 'none'}"
        warnings.warn(f"SELFSUP_PLUGINS names {name!r}, which no installed plugin is called{hint}", PluginWarning, stacklevel=3)
    return [ep for ep in points if ep.name in wanted]


def _warn_unknown_hooks(module: Any, plugin: str) -> None:
    """Warns about module attributes that look like selfsup hooks but are none (a misspelled hook
    implementation registers nothing)."""
    known = [name for name in dir(hookspecs) if name.startswith("selfsup_")]
    for attribute in dir(module):
        if attribute.startswith("selfsup_") and attribute not in known and callable(getattr(module, attribute)):
            close = difflib.get_close_matches(attribute, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; the hooks are {', '.join(known)}"
            warnings.warn(f"selfsup plugin {plugin!r} defines {attribute}, which is not a selfsup hook{hint}", PluginWarning, stacklevel=4)


def _fail(registry: Registry, plugin: str, error: str) -> None:
    registry.plugins[plugin].error = error
    warnings.warn(f"selfsup plugin {plugin!r} was not loaded: {error}", PluginWarning, stacklevel=3)


def _call_hooks(manager: pluggy.PluginManager, registry: Registry, plugin_name: str) -> None:
    plugin = manager.get_plugin(plugin_name)
    for kind in KINDS:
        hook = getattr(manager.hook, f"selfsup_register_{kind}")
        for impl in hook.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            batch: list[Registration] = []

            def register(obj: Any, name: str | None = None, aliases: tuple[str, ...] = (), *, _kind: Kind = kind) -> None:
                if _kind == "recipes":
                    from selfsup.run.recipe import Recipe

                    if not isinstance(obj, Recipe):
                        raise TypeError(f"register: expected a selfsup.run.recipe.Recipe for a recipe, got {type(obj).__name__}")
                    name = obj.method if name is None else name
                key = name if name is not None else getattr(obj, "name", None)
                if not isinstance(key, str) or not key:
                    raise ValueError(f"register: {obj!r} has no name; pass name=")
                batch.append(Registration(_kind, key, obj, plugin_name, tuple(aliases)))

            impl.function(register=register)
            registry.add_batch(plugin_name, batch)


def load_registry() -> Registry:
    """Loads built-ins and entry points into a fresh :class:`Registry` (uncached)."""
    manager = make_manager()
    registry = Registry()
    candidates: list[tuple[str, str, Any]] = [("builtin", m, None) for m in BUILTIN_PLUGINS]
    candidates += [(_distribution(ep), ep.name, ep) for ep in selected_entry_points()]
    for source, name, entry_point in candidates:
        if name in registry.plugins:
            registry.plugins[f"{name} ({source})"] = PluginInfo(name, source)
            _fail(registry, f"{name} ({source})", f"a plugin named {name!r} is already loaded")
            continue
        registry.plugins[name] = PluginInfo(name, source)
        try:
            module = importlib.import_module(name) if entry_point is None else entry_point.load()
            _warn_unknown_hooks(module, name)
            manager.register(module, name=name)
            _call_hooks(manager, registry, name)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # a broken plugin (even one calling sys.exit) must not take the host down
            _fail(registry, name, f"{type(error).__name__}: {error}")
    return registry


def _distribution(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "entry point"


_lock = threading.Lock()
_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = load_registry()
        return _registry


def reload() -> Registry:
    """Forgets the loaded registry and loads again (after installing a plugin, in tests)."""
    global _registry
    with _lock:
        _registry = None
    return registry()


def get(kind: Kind, name: str) -> Any:
    """Shorthand for ``registry().get(kind, name)``."""
    return registry().get(kind, name)
