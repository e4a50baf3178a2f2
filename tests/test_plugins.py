"""Plugin loading through real entry points: built-ins, third parties, broken plugins, clashes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from selfsup import plugins

GOOD = '''
from dataclasses import dataclass
from typing import ClassVar
import numpy as np
import selfsup.ops as ops
from selfsup.hookspecs import hookimpl
from selfsup.pretext.base import PretextBatch

@dataclass(frozen=True)
class Flip:
    name: ClassVar[str] = "upside_down"
    def __call__(self, images, *, seed, epoch=0, indices=None):
        out = ops.rotations(images, k=np.full(len(images), 2))
        return PretextBatch(out.images, out.labels)

def small_backbone(**options):
    return "backbone"

@hookimpl
def selfsup_register_pretext_tasks(register):
    register(Flip, aliases=("flip",))

@hookimpl
def selfsup_register_backbones(register):
    register(small_backbone, name="tiny")

@hookimpl
def selfsup_register_datasets(register):
    register(lambda **options: np.zeros((4, 8, 8, 3), np.uint8), name="blank")
'''

BROKEN_IMPORT = "import module_that_does_not_exist\n"

RAISING_HOOK = '''
from selfsup.hookspecs import hookimpl

@hookimpl
def selfsup_register_methods(register):
    register(object(), name="half")
    raise RuntimeError("registration exploded")
'''

CLASH = '''
from selfsup.hookspecs import hookimpl

@hookimpl
def selfsup_register_pretext_tasks(register):
    register(object(), name="rotation")
'''


def install_plugin(site: Path, dist: str, entry: str, source: str) -> None:
    """A real installed distribution: a module plus its .dist-info with an entry point."""
    module = f"{dist}_plugin"
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[selfsup]\n{entry} = {module}\n")


def run_python(code: str, site: Path, env_plugins: str | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("SELFSUP_PLUGINS", None)
    if env_plugins is not None:
        env["SELFSUP_PLUGINS"] = env_plugins
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120)


REPORT = """
import json, warnings
warnings.simplefilter("always")
from selfsup import plugins
r = plugins.registry()
print(json.dumps({
    "tasks": r.names("pretext_tasks"), "backbones": r.names("backbones"), "methods": r.names("methods"),
    "datasets": r.names("datasets"),
    "errors": {name: info.error for name, info in r.plugins.items() if info.error},
}))
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    install_plugin(tmp_path, "goodpkg", "good", GOOD)
    install_plugin(tmp_path, "brokenpkg", "broken", BROKEN_IMPORT)
    install_plugin(tmp_path, "raisingpkg", "raising", RAISING_HOOK)
    install_plugin(tmp_path, "clashpkg", "clash", CLASH)
    return tmp_path


def test_builtins_register_through_the_hooks():
    registry = plugins.load_registry()
    assert {"rotation", "jigsaw", "relative_position"} <= set(registry.names("pretext_tasks"))
    assert all(info.source == "builtin" and info.error is None for info in registry.plugins.values() if info.source == "builtin")
    assert registry.get("pretext_tasks", "rotnet") is registry.get("pretext_tasks", "rotation")
    photos = registry.get("datasets", "photos")(size=32, count=3)
    assert photos.shape == (3, 32, 32, 3) and photos.dtype == np.uint8


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(plugins.UnknownNameError, match="unknown pretext task 'nope'; registered: .*rotation"):
        plugins.registry().get("pretext_tasks", "nope")


def test_third_party_plugins_load_and_broken_ones_are_reported(site: Path):
    result = run_python(REPORT, site)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "upside_down" in report["tasks"] and "rotation" in report["tasks"]
    assert "tiny" in report["backbones"] and "small_resnet" in report["backbones"]
    assert report["datasets"] == ["blank", "digits", "moving_digits", "moving_digits_two_camera", "photo_patches", "photos", "shapes"]
    # the hook that raised registered nothing: all or nothing per hook call
    assert "half" not in report["methods"] and "rotnet" in report["methods"]
    errors = report["errors"]
    assert set(errors) == {"broken", "raising", "clash"}
    assert "ModuleNotFoundError" in errors["broken"] and "module_that_does_not_exist" in errors["broken"]
    assert "registration exploded" in errors["raising"]
    assert "'rotation'" in errors["clash"] and "'clash'" in errors["clash"] and "selfsup.pretext.rotation" in errors["clash"]
    assert "selfsup plugin 'broken' was not loaded" in result.stderr


def test_plugin_task_works_end_to_end(site: Path):
    code = """
    import numpy as np
    from selfsup import plugins
    task = plugins.get("pretext_tasks", "flip")()
    images = np.arange(2 * 3 * 3 * 1, dtype=np.uint8).reshape(2, 3, 3, 1)
    batch = task(images, seed=0)
    assert (batch.inputs[1] == images[1, ::-1, ::-1]).all() and batch.targets.tolist() == [2, 2]
    print("ok")
    """
    result = run_python(code, site)
    assert result.stdout.strip() == "ok", result.stderr


def test_selfsup_plugins_env_var(site: Path):
    none = json.loads(run_python(REPORT, site, env_plugins="none").stdout)
    assert "upside_down" not in none["tasks"] and none["errors"] == {}
    only = json.loads(run_python(REPORT, site, env_plugins="good").stdout)
    assert "upside_down" in only["tasks"] and only["errors"] == {}


def test_cli_lists_plugins_and_errors(site: Path):
    import os

    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-m", "selfsup", "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "good  [goodpkg 0.1]  ok" in result.stdout
    assert "pretext_tasks:upside_down" in result.stdout
    assert "broken  [brokenpkg 0.1]  FAILED" in result.stdout
    assert "error: ModuleNotFoundError" in result.stdout


def test_register_needs_a_name():
    registry = plugins.Registry()
    registry.plugins["p"] = plugins.PluginInfo("p", "test")
    entry = plugins.Registration("methods", "a", object(), "p", ("b",))
    registry.add_batch("p", [entry])
    registry.plugins["q"] = plugins.PluginInfo("q", "test")
    with pytest.raises(ValueError, match="name 'b' of plugin 'q' clashes with the one registered by plugin 'p'"):
        registry.add_batch("q", [plugins.Registration("methods", "b", object(), "q")])
    assert registry.names("methods") == ["a"]


def test_builtin_tasks_follow_the_ops():
    images = np.random.default_rng(0).integers(0, 256, (3, 255, 255, 3), dtype=np.uint8)
    rotation = plugins.get("pretext_tasks", "rotation")()
    batch = rotation(images, seed=0)
    assert batch.inputs.shape == (12, 255, 255, 3)
    np.testing.assert_array_equal(batch.inputs[5], np.rot90(images[1], 1, axes=(0, 1)))
    jigsaw = plugins.get("pretext_tasks", "jigsaw")(permutations=10)
    puzzle = jigsaw(images, seed=1)
    assert puzzle.inputs.shape == (3, 9, 64, 64, 3) and puzzle.inputs.dtype == np.float32
    assert puzzle.targets.max() < 10 and jigsaw.num_classes == 10
    relative = plugins.get("pretext_tasks", "context_prediction")(patch=20, gap=5, jitter=2)
    pairs = relative(images, seed=2)
    assert pairs.inputs.shape == (3, 2, 20, 20, 3) and set(pairs.targets.tolist()) <= set(range(8))


EXITS = "import sys\nsys.exit(3)\n"

MISSPELLED = '''
from selfsup.hookspecs import hookimpl

@hookimpl
def selfsup_register_method(register):
    register(object(), name="never")
'''


def test_a_plugin_that_exits_at_import_is_reported_and_the_rest_load(tmp_path: Path):
    install_plugin(tmp_path, "exitpkg", "exits", EXITS)
    install_plugin(tmp_path, "goodpkg", "good", GOOD)
    result = run_python(REPORT, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == {"exits": "SystemExit: 3"} and "upside_down" in report["tasks"]
    import os

    listing = subprocess.run([sys.executable, "-m", "selfsup", "methods"], env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "rotnet" in listing.stdout and "'exits' was not loaded" in listing.stderr


def test_a_dist_info_in_the_working_directory_is_not_a_plugin(tmp_path: Path):
    marker = tmp_path / "imported"
    install_plugin(tmp_path, "strangerpkg", "stranger", f"open({str(marker)!r}, 'w').close()\n")
    import os

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("SELFSUP_PLUGINS", None)
    result = subprocess.run([sys.executable, "-m", "selfsup", "plugins"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stranger" not in result.stdout and not marker.exists()


def test_misspelled_hooks_and_plugin_names_are_warned_about(tmp_path: Path):
    install_plugin(tmp_path, "typopkg", "typo", MISSPELLED)
    result = run_python(REPORT, tmp_path)
    assert "never" not in json.loads(result.stdout)["methods"]
    assert "defines selfsup_register_method, which is not a selfsup hook; did you mean selfsup_register_methods?" in result.stderr
    picked = run_python(REPORT, tmp_path, env_plugins="typ")
    assert "SELFSUP_PLUGINS names 'typ', which no installed plugin is called; did you mean 'typo'?" in picked.stderr
