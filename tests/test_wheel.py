"""The release wheel: one abi3 manylinux2014 wheel that installs into a fresh virtual environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheels(out: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run(
        ["maturin", "build", "--release", "--zig", "--compatibility", "manylinux2014", "-o", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=1800,
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT / "kernels")],
        check=True, capture_output=True, timeout=600,
    )


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("SELFSUP_WHEEL_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheels")
    if shutil.which("maturin", path=str(Path(sys.executable).parent)) is None and shutil.which("maturin") is None:
        pytest.fail("maturin is needed to build the wheel (pip install -e '.[test]')")
    build_wheels(out)
    return out


def test_one_abi3_manylinux_wheel(wheel_dir: Path) -> None:
    wheels = sorted(p.name for p in wheel_dir.glob("selfsup-*.whl"))
    assert len(wheels) == 1, wheels
    name = wheels[0]
    assert "-cp310-abi3-" in name, name
    assert "manylinux2014_x86_64" in name or "manylinux_2_17_x86_64" in name, name
    with zipfile.ZipFile(wheel_dir / name) as archive:
        files = set(archive.namelist())
    for required in ("selfsup/_native.abi3.so", "selfsup/_native.pyi", "selfsup/py.typed", "selfsup/__init__.py"):
        assert required in files, f"{required} missing from {name}"
    kernels = list(wheel_dir.glob("selfsup_kernels-*-py3-none-any.whl"))
    assert len(kernels) == 1, kernels


def test_wheels_install_into_a_fresh_environment(wheel_dir: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    wheels = [str(p) for p in wheel_dir.glob("selfsup*.whl")]
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["--no-deps", *wheels], check=True, capture_output=True, timeout=600)
    # numpy is the only dependency the native path needs; torch stays out of this environment
    subprocess.run(pip + ["numpy"], check=True, capture_output=True, timeout=600)
    probe = (
        "import numpy as np, importlib.metadata as md, selfsup, selfsup._native as native\n"
        "x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1)\n"
        "out = selfsup.ops.rotations(x, k=[1, 2])\n"
        "assert (out.images[0, ..., 0] == np.rot90(x[0, ..., 0])).all()\n"
        "assert md.version('selfsup-kernels') == md.version('selfsup') == native.__version__\n"
        "print(native.__file__)\n"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(env_dir) in result.stdout


def test_the_kernels_distribution_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(ROOT / "kernels")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "BuildBackendWarning" not in output and "SetuptoolsDeprecationWarning" not in output, output[-3000:]
