"""Every hook of the plugin API is documented and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from selfsup import hookspecs

HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("selfsup_")]
TESTS = Path(__file__).parent


def test_hookspec_module_declares_the_five_hooks():
    assert sorted(HOOKS) == sorted(
        ["selfsup_register_methods", "selfsup_register_pretext_tasks", "selfsup_register_backbones", "selfsup_register_datasets", "selfsup_register_recipes"]
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_docs(hook: str):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 40 and "register(" in doc, f"{hook} needs a docstring with an example"
    assert list(inspect.signature(getattr(hookspecs, hook)).parameters) == ["register"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook: str):
    sources = [p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name]
    assert any(hook in text for text in sources), f"no test uses {hook}"
