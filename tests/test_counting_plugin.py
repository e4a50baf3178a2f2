"""The selfsup-counting distribution, installed with pip like any third-party plugin, then used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(ROOT / "plugins" / "selfsup-counting")],
        check=True, capture_output=True, timeout=600,
    )
    return site


def selfsup(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("SELFSUP_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "selfsup", *args], env=env, capture_output=True, text=True, timeout=600)


def test_installed_plugin_is_listed(plugin_site: Path):
    result = selfsup(plugin_site, "methods")
    assert result.returncode == 0, result.stderr
    assert "counting  [counting]" in result.stdout and "counting_tiles  [counting]" in result.stdout
    plugins = selfsup(plugin_site, "plugins")
    assert "counting  [selfsup-counting 0.1.0]  ok" in plugins.stdout


def test_installed_plugin_trains(plugin_site: Path, tmp_path: Path):
    result = selfsup(plugin_site, "train", "--method", "counting", "--steps", "3", "--batch-size", "8", "--width", "4", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "checkpoint.pt").exists()
    # the plugin's own recipe (registered through selfsup_register_recipes) set the optimizer
    import tomllib

    run = tomllib.loads((tmp_path / "config.toml").read_text())
    assert run["method"] == "counting" and run["optimizer"] == "sgd" and run["lr"] == 0.05


@pytest.fixture
def counting(plugin_site: Path):
    sys.path.insert(0, str(plugin_site))
    try:
        import selfsup_counting

        yield selfsup_counting
    finally:
        sys.path.remove(str(plugin_site))


def test_tiles_and_downsampling_match_numpy(counting):
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    batch = counting.CountingTiles()(images, seed=0)
    np.testing.assert_array_equal(batch.inputs[1, 3], images[1, 4:, 4:])
    np.testing.assert_array_equal(batch.inputs[2, 1], images[2, :4, 4:])
    expected = np.floor(images.astype(float).reshape(3, 4, 2, 4, 2, 3).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(batch.targets, expected.astype(np.uint8))
    with pytest.raises(ValueError, match="images"):
        counting.CountingTiles()(images[:, :7], seed=0)


def test_loss_matches_the_paper_formula(counting):
    torch.manual_seed(0)
    whole, tiles = torch.rand(5, 7), torch.rand(5, 4, 7) / 4
    expected = 0.0
    for i in range(5):
        s = tiles[i].sum(0)
        expected += ((whole[i] - s) ** 2).sum() + max(0.0, 10 - float(((whole[(i + 1) % 5] - s) ** 2).sum()))
    torch.testing.assert_close(counting.counting_loss(whole, tiles), expected / 5)
    with pytest.raises(ValueError, match="tiles"):
        counting.counting_loss(whole, tiles[:, :3])


def test_a_few_steps_reduce_the_loss(counting, tmp_path: Path):
    from selfsup.data import load_digits
    from selfsup.models import small_resnet
    from selfsup.training import TrainConfig, Trainer

    torch.manual_seed(0)
    method = counting.Counting(small_resnet(width=8), counts=64)
    log = Trainer(method, load_digits().train.images[:256], TrainConfig(steps=40, batch_size=32, lr=1e-3, optimizer="adamw", log_every=5, progress=False), tmp_path).fit()
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
