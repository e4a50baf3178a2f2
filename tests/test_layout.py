"""The package's layers: imports point down only, and methods/ holds methods."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "selfsup"
LOWER = ("data", "models", "losses", "eval", "viz", "ops", "transforms")
"""Folders below the methods: none may import selfsup.methods (type-checking imports aside)."""


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    guarded = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for node in ast.walk(branch)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


@pytest.mark.parametrize("folder", LOWER)
def test_lower_layers_never_import_methods(folder: str):
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for module in imported_modules(path)
        if module == "selfsup.methods" or module.startswith("selfsup.methods.") or module.startswith(("selfsup.run", "selfsup.experiments", "selfsup.cli"))
    ]
    assert offenders == []


def test_methods_hold_methods_only():
    """Every module of methods/ but the shared bases defines a registered method."""
    for path in sorted((PACKAGE / "methods").glob("*.py")):
        if path.name in ("__init__.py", "base.py", "joint.py", "banked.py", "temporal.py"):
            continue
        source = path.read_text()
        assert "def selfsup_register_methods" in source and "def selfsup_register_recipes" in source, path.name


def test_the_losses_package_is_what_the_methods_use():
    import selfsup.losses as losses
    from selfsup.methods import barlow_twins, byol, dino, swav, vicreg

    assert dino.dino_loss is losses.dino_loss and byol.byol_loss is losses.byol_loss
    assert barlow_twins.barlow_twins_loss is losses.barlow_twins_loss and vicreg.vicreg_terms is losses.vicreg_terms
    assert swav.sinkhorn is losses.sinkhorn and losses.nt_xent.__module__.startswith("selfsup_kernels")
