"""The command line: train → export → eval, one-line errors with exit status 2, show-pretext."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def selfsup(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "selfsup", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_train_export_eval(tmp_path: Path):
    run = tmp_path / "run"
    result = selfsup("train", "--method", "rotnet", "--steps", "4", "--batch-size", "16", "--width", "4", "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert (run / "checkpoint.pt").exists() and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    longer = ("train", "--method", "rotnet", "--steps", "6", "--batch-size", "16", "--width", "4", "--out", str(run), "--resume", "--quiet")
    refused = selfsup(*longer)
    assert refused.returncode == 2 and "other settings (steps 4 -> 6)" in refused.stderr
    resumed = selfsup(*longer, "--allow-changes")
    assert resumed.returncode == 0 and "resumed from step 4" in resumed.stderr and "changed settings: steps 4 -> 6" in resumed.stderr
    export = selfsup("export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "backbone.pt"))
    assert export.returncode == 0, export.stderr
    from selfsup.models import small_resnet

    backbone = small_resnet(width=4)
    exported = torch.load(tmp_path / "backbone.pt")
    assert exported["architecture"] == {"name": "small_resnet", "options": {"width": 4}}
    backbone.load_state_dict(exported["state_dict"])
    state = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    torch.testing.assert_close(backbone.stem[0].weight, state["backbone.stem.0.weight"])
    again = selfsup("export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "backbone.pt"))
    assert again.returncode == 2 and "--force" in again.stderr
    # the backbone of a method whose plugin is gone still loads
    from selfsup import load_backbone
    from selfsup.training import load_checkpoint, save_checkpoint

    orphan = load_checkpoint(run / "checkpoint.pt")
    orphan["method"] = "uninstalled_method"
    save_checkpoint(orphan, tmp_path / "orphan.pt")
    loaded = load_backbone(tmp_path / "orphan.pt")
    torch.testing.assert_close(loaded.stem[0].weight, state["backbone.stem.0.weight"])
    evaluate = selfsup("eval", "--checkpoint", str(run / "checkpoint.pt"))
    assert evaluate.returncode == 0, evaluate.stderr
    assert "kNN all" in evaluate.stdout
    shown = selfsup("show", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "show.png"), "--count", "2", "--device", "cpu")
    assert shown.returncode == 0, shown.stderr
    assert np.asarray(Image.open(tmp_path / "show.png")).std() > 10
    tune = selfsup("finetune", "--checkpoint", str(run / "checkpoint.pt"), "--epochs", "1", "--labels-per-class", "1")
    assert tune.returncode == 0, tune.stderr
    assert "10 labels, 1 epochs" in tune.stdout and "from scratch" in tune.stdout


def test_export_loads_into_torchvision(tmp_path: Path):
    torchvision = pytest.importorskip("torchvision")
    run = tmp_path / "run"
    result = selfsup("train", "--method", "rotnet", "--backbone", "resnet18", "--steps", "1", "--batch-size", "4", "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    export = selfsup("export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "r18.pt"), "--format", "torchvision")
    assert export.returncode == 0, export.stderr
    exported = torch.load(tmp_path / "r18.pt")
    assert exported["architecture"]["name"] == "torchvision:resnet18"
    model = torchvision.models.resnet18(weights=None)
    missing, unexpected = model.load_state_dict(exported["state_dict"], strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and unexpected == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--method", "nope"], "unknown method 'nope'"),
        (["train", "--method", "rotnet", "--data", "nowhere"], "--data: unknown dataset 'nowhere'"),
        (["train", "--method", "rotnet", "--steps", "0"], "--steps: expected a positive integer"),
        (["train", "--method", "rotnet", "--lr", "-1"], "--lr: expected a positive learning rate"),
        (["eval", "--checkpoint", "/nonexistent/c.pt"], "checkpoint: no file at /nonexistent/c.pt"),
        (["show-pretext", "--out", "x.jpg"], "--out: expected a .png path"),
        (["show-pretext", "--photo", "moon"], "--photo: unknown photo 'moon'"),
        (["train", "--method", "rotnet", "--option", "bogus=1"], "--option:"),
        (["train", "--method", "rotnet", "--option", "novalue"], "expected key=value"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str):
    result = selfsup(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_show_pretext_writes_a_png(tmp_path: Path):
    out = tmp_path / "sheet.png"
    result = selfsup("show-pretext", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(out))
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert image.std() > 20  # not blank


def test_methods_lists_builtins():
    result = selfsup("methods")
    assert result.returncode == 0
    assert "rotnet (aliases: rotation)  [selfsup.methods.rotnet]" in result.stdout
    assert "small_resnet" in result.stdout and "digits" in result.stdout


def test_train_simclr_on_an_image_folder(tmp_path: Path):
    from selfsup.data import write_photo_folder

    folder = tmp_path / "photos"
    write_photo_folder(folder, count=12, size=48, classes=2, image_format="PNG")
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(folder / "class_0" / "wide.png")
    (folder / "class_1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    run = tmp_path / "run"
    result = selfsup("train", "--method", "simclr", "--data", str(folder), "--image-size", "24", "--steps", "2",
                     "--batch-size", "14", "--width", "4", "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 unreadable images, each replaced in its batch: " + str(folder / "class_1" / "broken.png") in result.stderr
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["skipped"] == 1
    assert torch.load(run / "checkpoint.pt", weights_only=False)["metadata"]["image_size"] == 24


def test_folder_array_is_the_centre_square_resized(tmp_path: Path):
    from selfsup.data.folder import load_folder_array

    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    Image.fromarray(wide).save(tmp_path / "a.png")
    images, folder = load_folder_array(tmp_path, 15)
    assert images.shape == (1, 15, 15, 3) and images.dtype == np.uint8 and folder.num_skipped == 0
    square = torch.from_numpy(wide[:, 10:40]).permute(2, 0, 1)
    from torchvision.transforms.v2 import functional as TF

    expected = TF.resize(square, [15, 15], antialias=True).permute(1, 2, 0).numpy()
    assert np.abs(images[0].astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda root: None, "is neither a folder, a file list nor tar shards"),
        (lambda root: root.mkdir(), "--data: root: no file ending in"),
    ],
)
def test_unusable_folders_are_one_line_errors(tmp_path: Path, make, pattern: str):
    root = tmp_path / "images"
    make(root)
    result = selfsup("train", "--method", "simclr", "--data", str(root), "--steps", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert pattern in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
