"""A run as one value: registered recipes, config files, the one-call API, backbones by name,
exports (torchvision, timm, ONNX), evaluation on the user's data, progress output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import selfsup
from selfsup import cli, plugins
from selfsup.data.labelled import load_labelled, stratified_split
from selfsup.run.build import method_and_recipe, resolve_run
from selfsup.run.config import ConfigError, RunConfig, dumps_toml, load_settings
from selfsup.run.recipe import Recipe
from selfsup.training.progress import Progress

TINY = {"steps": 2, "batch_size": 8, "backbone_options": {"width": 4}, "log_every": 1}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "selfsup", *args], capture_output=True, text=True, timeout=600)


# ------------------------------------------------------------------ recipes


def test_every_builtin_method_has_a_registered_recipe():
    registry = plugins.registry()
    for name in registry.names("methods"):
        cls, recipe = method_and_recipe(name)
        assert recipe.method == name and cls is registry.get("methods", name)
        assert registry.find("recipes", name) is not None, f"{name} has no recipe"


def test_named_recipes_select_their_method_and_options():
    cls, recipe = method_and_recipe("mocov1")
    assert cls.name == "moco" and recipe.options["version"] == 1 and recipe.optimizer == "sgd"
    assert method_and_recipe("mocov3")[1].options == {"version": 3}
    assert method_and_recipe("MoCoV2")[1] is method_and_recipe("moco")[1]  # alias of the method, any case
    with pytest.raises(plugins.UnknownNameError, match=r"unknown method 'simclar' \(did you mean 'simclr'\?\)"):
        method_and_recipe("simclar")


def test_recipe_changes_and_dataset_entries_merge_tables_and_refuse_unknown_fields():
    recipe = Recipe("corruption", {"a": 1, "b": 2}, lr=0.1, datasets={"digits": {"options": {"a": 5}, "lr": 0.2}})
    assert recipe.on("digits").options == {"a": 5, "b": 2} and recipe.on("digits").lr == 0.2
    assert recipe.on("photos") == Recipe("corruption", {"a": 1, "b": 2}, lr=0.1)
    changed = recipe.changed(options={"b": 3}, lr=0.3)
    assert changed.options == {"a": 1, "b": 3} and changed.lr == 0.3 and changed.datasets == recipe.datasets
    assert changed.on("digits").options == {"a": 5, "b": 3}
    with pytest.raises(ValueError, match="lr: expected a positive"):
        recipe.changed(lr=-1.0)
    with pytest.raises(ValueError, match="datasets: the entry for 'digits' changes unknown fields \\['learning_rate'\\]"):
        Recipe("x", datasets={"digits": {"learning_rate": 1}})
    for bad, match in (({"optimizer": "adam"}, "optimizer"), ({"lr": 0.0}, "lr"), ({"weight_decay": -1.0}, "weight_decay")):
        with pytest.raises(ValueError, match=match):
            Recipe("x", **bad)


def test_a_plugin_recipe_registers_through_the_hook():
    registry = plugins.Registry()
    manager = plugins.make_manager()

    class Plugin:
        @plugins.hookspecs.hookimpl
        def selfsup_register_recipes(self, register):
            register(Recipe("simclr", lr=0.7), name="simclr_fast")

    registry.plugins["fast"] = plugins.PluginInfo("fast", "test")
    manager.register(Plugin(), name="fast")
    plugins._call_hooks(manager, registry, "fast")
    assert registry.get("recipes", "simclr_fast").lr == 0.7

    class Broken:
        @plugins.hookspecs.hookimpl
        def selfsup_register_recipes(self, register):
            register({"lr": 1}, name="nope")

    registry.plugins["broken"] = plugins.PluginInfo("broken", "test")
    manager.register(Broken(), name="broken")
    with pytest.raises(TypeError, match="expected a selfsup.run.recipe.Recipe"):
        plugins._call_hooks(manager, registry, "broken")


# ------------------------------------------------------------------ resolution and files


def test_layers_override_in_order_and_tables_merge():
    recipe = method_and_recipe("byol")[1]
    run = resolve_run({"method": "byol"})
    assert (run.optimizer, run.lr, run.options) == (recipe.optimizer, recipe.lr, dict(recipe.options))
    assert run.steps == RunConfig.steps and run.backbone_options == {"width": 16}
    file_layer = {"method": "byol", "lr": 1.0, "options": {"base_momentum": 0.99}}
    cli_layer = {"options": {"hidden_dim": 64}, "steps": 7}
    from selfsup.run.config import merge_settings

    run = resolve_run(merge_settings(file_layer, cli_layer))
    assert run.lr == 1.0 and run.steps == 7 and run.optimizer == "lars"
    assert run.options == {**recipe.options, "base_momentum": 0.99, "hidden_dim": 64}
    # the recipe's backbone options belong to its backbone
    assert resolve_run({"method": "mae"}).backbone == "vit_tiny"
    assert resolve_run({"method": "mae", "backbone": "small_resnet"}).backbone_options == {"width": 16}
    # a dataset entry of the recipe applies on that dataset only
    assert resolve_run({"method": "corruption", "data": "digits"}).options["mask_weight"] == 100.0
    assert "mask_weight" not in resolve_run({"method": "corruption", "data": "photo_patches"}).options
    # colorization's backbone takes the L channel
    assert resolve_run({"method": "colorization"}).backbone_options["in_channels"] == 1


def test_toml_round_trip_gives_the_same_run(tmp_path: Path):
    settings = {
        "method": "cmc", "data": "dir with \"quotes\" and ü", "options": {"views": ["L", "gradient"], "nested": {"a": 1.5}},
        "log": ["tensorboard"], "warmup_steps": 3, "sync_bn": True, "lr": 0.25,
    }
    run = resolve_run(settings)
    path = tmp_path / "run.toml"
    path.write_text(run.to_toml())
    assert tomllib.loads(path.read_text())["options"]["nested"] == {"a": 1.5}
    assert resolve_run(load_settings(path)) == run
    assert "warmup_steps" not in dumps_toml({"warmup_steps": None, "steps": 1})


@pytest.mark.parametrize(
    "text, message",
    [
        ('method = "rotnet"\nlearning_rate = 0.1\n', "unknown key 'learning_rate' (did you mean 'lr'?)"),
        ('method = "rotnet"\nbatchsize = 3\n', "unknown key 'batchsize' (did you mean 'batch_size'?)"),
        ('method = "rotnet"\nsteps = "100"\n', "key 'steps' expects a positive integer, got \"100\""),
        ('method = "rotnet"\nsync_bn = 1\n', "key 'sync_bn' expects true or false"),
        ('method = "rotnet"\noptions = 3\n', "key 'options' expects a table"),
        ('method = "rotnet"\nsteps = 1\nsteps = 2\n', "is not valid TOML"),
        ('method = "rotnet"\nweight_decay = -0.1\n', "weight_decay: expected a number >= 0"),
        ('method = "rotnet"\nwarmup_steps = 500\nsteps = 100\n', "warmup_steps: expected 0 to steps (100), got 500"),
        ('method = "rotnet"\ndevice = "gpu"\n', "device: expected auto, cpu, cuda or cuda:K"),
        ('data = "digits"\n', "method: expected a registered method"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path: Path, text: str, message: str):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        resolve_run(load_settings(path))
    assert message in str(raised.value) and "\n" not in str(raised.value)
    result = run_cli("train", "--config", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and message.split(" (")[0].split(": ")[-1][:20] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_saved_config_trains_the_same_run_again(tmp_path: Path):
    first = tmp_path / "first"
    args = ["train", "--method", "simclr", "--steps", "2", "--batch-size", "8", "--width", "4", "--option", "temperature=0.2", "--quiet"]
    assert cli.main([*args, "--out", str(first)]) == 0
    saved = tomllib.loads((first / "config.toml").read_text())
    assert saved["options"]["temperature"] == 0.2 and saved["lr"] == method_and_recipe("simclr")[1].lr
    again = tmp_path / "again"
    assert cli.main(["train", "--config", str(first / "config.toml"), "--out", str(again), "--quiet"]) == 0
    a = torch.load(first / "checkpoint.pt", weights_only=True)
    b = torch.load(again / "checkpoint.pt", weights_only=True)
    assert a["metadata"]["run"] == {**b["metadata"]["run"], "out": str(first)}
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_print_config_and_unknown_flags(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["train", "--method", "MoCoV1", "--steps", "5", "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["method"] == "mocov1" and printed["steps"] == 5 and printed["options"] == {"version": 1, "queue_size": 1024}
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train", "--method", "rotnet", "--stepz", "3"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unrecognized argument" in err[0] and "did you mean --steps?" in err[0]


def test_help_gives_every_default():
    result = run_cli("train", "--help")
    text = " ".join(result.stdout.split())
    for fragment in ("--steps STEPS optimizer steps (default: 300)", "(default: the method's recipe)", "--device DEVICE", "(default: auto)"):
        assert fragment in text, fragment
    details = run_cli("methods", "--details", "moco")
    assert details.returncode == 0
    assert "queue_size = " in details.stdout and "mocov1: optimizer=sgd" in details.stdout and "version" in details.stdout


# ------------------------------------------------------------------ the Python API


def test_train_returns_the_run_and_load_backbone_restores_it(tmp_path: Path):
    run = selfsup.train("rotnet", "digits", tmp_path / "rot", progress=False, **TINY)
    assert run.checkpoint.exists() and run.config.method == "rotnet" and [row["step"] for row in run.metrics] == [1, 2]
    loaded = selfsup.load_backbone(run.checkpoint)
    for key, value in run.backbone.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    with pytest.raises(ConfigError, match="unknown key 'stepz' \\(did you mean 'steps'\\?\\)"):
        selfsup.train("rotnet", "digits", tmp_path / "bad", stepz=3)


def test_train_accepts_an_array_and_the_users_own_module(tmp_path: Path):
    class Tiny(nn.Module):  # no out_dim: measured from a forward pass
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3)
            self.bn = nn.BatchNorm2d(6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(x)).mean(dim=(2, 3))

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    module = Tiny()
    run = selfsup.train("rotnet", images, tmp_path / "own", backbone=module, progress=False, steps=2, batch_size=8)
    assert run.backbone is module and module.out_dim == 6
    assert run.config.backbone == "module:test_train_accepts_an_array_and_the_users_own_module.<locals>.Tiny"
    with pytest.raises(ValueError, match="pass an instance as backbone="):
        selfsup.load_backbone(run.checkpoint)
    restored = selfsup.load_backbone(run.checkpoint, backbone=Tiny())
    assert torch.equal(restored.conv.weight, module.conv.weight)

    class Spatial(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(ValueError, match="expected an nn.Module returning \\(N, D\\) features"):
        selfsup.train("rotnet", images, tmp_path / "bad", backbone=Spatial(), progress=False, steps=1, batch_size=8)


def test_device_auto_picks_the_cpu_here_and_cuda_is_checked(tmp_path: Path):
    from selfsup.run.build import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device: cuda:1 asked for, but torch sees no CUDA GPU"):
            resolve_device("cuda:1")


# ------------------------------------------------------------------ backbones and exports


def test_torchvision_models_by_name():
    import torchvision

    from selfsup.run.build import build_backbone

    for name, width in (("mobilenet_v3_small", 1024), ("efficientnet_b0", 1280), ("resnet18", 512)):
        model = build_backbone(f"torchvision:{name}", {})
        reference = torchvision.models.get_model(name, weights=None)
        assert model.out_dim == width
        model.eval()
        features = model(torch.randn(2, 3, 64, 64))
        assert features.shape == (2, width)
        missing, unexpected = reference.load_state_dict(model.state_dict(), strict=False)
        assert unexpected == [] and {k.rsplit(".", 1)[0] for k in missing} == {model.classifier_key}
    with pytest.raises(ValueError, match="is not a torchvision classification model; did you mean resnet18"):
        build_backbone("torchvision:resnet81", {})
    with pytest.raises(ValueError, match="has no nn.Linear classifier"):
        build_backbone("torchvision:squeezenet1_0", {})


def test_export_torchvision_timm_and_onnx(tmp_path: Path):
    timm = pytest.importorskip("timm")
    ort = pytest.importorskip("onnxruntime")
    run = selfsup.train("simclr", "digits", tmp_path / "run", backbone="timm:resnet10t", progress=False, steps=1, batch_size=8)
    assert run.config.backbone == "timm:resnet10t"
    assert cli.main(["export", "--checkpoint", str(run.checkpoint), "--out", str(tmp_path / "t.pt"), "--format", "timm"]) == 0
    exported = torch.load(tmp_path / "t.pt", weights_only=True)
    assert exported["architecture"]["name"] == "timm:resnet10t"
    plain = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    plain.load_state_dict(exported["state_dict"])  # strict
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(plain.eval()(x), run.backbone.eval()(x))
    assert cli.main(["export", "--checkpoint", str(run.checkpoint), "--out", str(tmp_path / "tv.pt"), "--format", "torchvision"]) == 2
    # ONNX: the same features in onnxruntime, any batch size
    assert cli.main(["export", "--checkpoint", str(run.checkpoint), "--out", str(tmp_path / "b.onnx"), "--format", "onnx"]) == 0
    session = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = torch.randn(batch, 3, 32, 32)
        (features,) = session.run(None, {"images": x.numpy()})
        np.testing.assert_allclose(features, run.backbone.eval()(x).detach().numpy(), rtol=1e-4, atol=1e-4)
    # an exported selfsup file says its architecture and loads back
    assert cli.main(["export", "--checkpoint", str(run.checkpoint), "--out", str(tmp_path / "s.pt")]) == 0
    again = selfsup.load_backbone(tmp_path / "s.pt")
    torch.testing.assert_close(again(x), run.backbone.eval()(x))


# ------------------------------------------------------------------ evaluation on the user's data


def test_stratified_split_holds_out_a_share_of_every_class():
    labels = np.repeat(np.arange(4), [10, 5, 2, 1])
    train, test = stratified_split(labels, 0.2, seed=3)
    assert np.bincount(labels[test], minlength=4).tolist() == [2, 1, 1, 1]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    assert np.array_equal(stratified_split(labels, 0.2, seed=3)[1], test)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.0, 0)


def labelled_folder(root: Path, per_class: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        (root / f"class_{label}").mkdir(parents=True)
        for i in range(per_class):
            image = np.clip(rng.normal(colour, 40, (20 + i, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / f"class_{label}" / f"{i}.png")
    return root


def test_eval_and_finetune_on_a_labelled_folder(tmp_path: Path):
    folder = labelled_folder(tmp_path / "photos")
    data = load_labelled(str(folder), image_size=16, test_fraction=0.25)
    assert data.classes == ["class_0", "class_1", "class_2"] and len(data.splits.test.labels) == 9
    assert data.splits.train.images.shape == (27, 16, 16, 3)
    run = selfsup.train("rotnet", "digits", tmp_path / "run", progress=False, **TINY)
    result = run_cli("eval", "--checkpoint", str(run.checkpoint), "--data", str(folder), "--image-size", "16", "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert f"on {folder} (held out: 20%" in result.stdout and "30 train / 6 test images, 3 classes" in result.stdout
    assert "random init" in result.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report["results"]) == {"random init", "run"} and str(folder) in report["data"]
    assert (tmp_path / "report" / "probe.png").exists()
    tune = run_cli("finetune", "--checkpoint", str(run.checkpoint), "--data", str(folder), "--image-size", "16", "--epochs", "1")
    assert tune.returncode == 0, tune.stderr
    assert str(folder) in tune.stdout
    flat = tmp_path / "flat"
    flat.mkdir()
    (folder / "class_0" / "0.png").rename(flat / "0.png")
    missing = run_cli("eval", "--checkpoint", str(run.checkpoint), "--data", str(flat))
    assert missing.returncode == 2 and "has no labels" in missing.stderr


# ------------------------------------------------------------------ progress and logs


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere():
    stream = io.StringIO()
    progress = Progress("rotnet", 40, stream=stream, interactive=False)
    for step in range(1, 41):
        progress.update(step, 1.0 / step, 100.0)
    progress.close("done")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 21 and lines[-1] == "done"
    assert lines[0].startswith("rotnet 2/40 loss 0.5000 100 img/s ETA ")
    tty = io.StringIO()
    bar = Progress("rotnet", 3, stream=tty, interactive=True)
    for step in (1, 2, 3):
        bar.update(step, 0.5, 10.0)
    bar.close("done")
    assert tty.getvalue().startswith("\rrotnet [") and tty.getvalue().endswith("\ndone\n")


def test_tensorboard_scalars_once_per_step_across_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("tensorboard")
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from selfsup.training import Trainer

    out = tmp_path / "tb"
    save = Trainer.save

    def keep_step_2(self: Trainer) -> Path | None:
        path = save(self)
        if self.step == 2:
            shutil.copy(self.checkpoint_path, tmp_path / "step2.pt")
        return path

    monkeypatch.setattr(Trainer, "save", keep_step_2)
    settings = {**TINY, "steps": 4, "checkpoint_every": 2, "log": ["tensorboard"]}
    selfsup.train("rotnet", "digits", out, progress=False, **settings)
    # a run killed after logging steps 3 and 4 but before their checkpoint: resumes from step 2
    shutil.copy(tmp_path / "step2.pt", out / "checkpoint.pt")
    selfsup.train("rotnet", "digits", out, progress=False, resume=True, **settings)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("loss")] == [1, 2, 3, 4]
    metrics = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [1, 2, 3, 4]


# ------------------------------------------------------------------ the README's commands


def readme_commands() -> list[list[str]]:
    import re
    import shlex

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("selfsup "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_every_readme_command_parses_and_names_what_exists():
    from selfsup.run.build import build_backbone

    commands = readme_commands()
    assert len(commands) > 15
    parser = cli.build_parser()
    for argv in commands:
        args, extra = parser.parse_known_args(argv)
        assert extra == [], (argv, extra)
        if getattr(args, "method", None):
            method_and_recipe(args.method)
        for spec in (getattr(args, "methods", None) or "").split(","):
            for name in spec.split(">"):  # compare-semi: PRE>METHOD
                if name:
                    method_and_recipe(name)
        backbone = getattr(args, "backbone", None)
        if backbone:
            assert isinstance(build_backbone(backbone, {}), nn.Module), backbone


def test_recipe_check_candidates_change_the_registered_recipe():
    from selfsup.experiments.compare import recipe_for
    from selfsup.experiments.recipe_check import CANDIDATES, candidate_recipe

    for name, setting in CANDIDATES.items():
        candidate, registered = candidate_recipe(name), recipe_for(name.split("@")[0])
        assert candidate.method == registered.method
        if isinstance(setting, Recipe):
            assert candidate is setting
            continue
        for key in ("options", "backbone_options"):
            assert dict(getattr(candidate, key)) == {**getattr(registered, key), **setting.get(key, {})}, (name, key)
        for key in ("backbone", "optimizer", "lr", "weight_decay", "schedule", "batch_size", "datasets"):
            assert getattr(candidate, key) == setting.get(key, getattr(registered, key)), (name, key)
    swav = candidate_recipe("swav@prototypes30")
    assert swav.options["prototypes"] == 30 and swav.options["epsilon"] == recipe_for("swav").options["epsilon"]


def test_recipe_check_reports_each_rows_gain_per_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from selfsup.experiments import recipe_check

    monkeypatch.setattr(recipe_check, "VALIDATION", {"digits": 100, "photo_patches": 70, "shapes": 60})
    candidate = {"rotnet@lr0.01": Recipe("rotnet", optimizer="sgd", lr=0.01)}
    gains = recipe_check.check(
        tmp_path, ["rotnet"], candidate, steps=1, batch_size=8, seed=0, progress=False, shots=(10,), label_seeds=(0,), width=4, warmup_steps=0
    )
    assert set(gains) == {"rotnet", "rotnet@lr0.01"} and all(set(row) == {"digits", "photo_patches", "shapes"} for row in gains.values())
    assert all(set(cell) == {"10"} for row in gains.values() for cell in row.values())
    report = json.loads((tmp_path / "shapes" / "compare.json").read_text())
    assert report["dataset"]["test_split"].startswith("validation") and report["dataset"]["test"] == 60
    assert report["results"]["rotnet@lr0.01"]["pretraining"]["lr"] == 0.01
    table = recipe_check.gains_table({"a": {"digits": {"10": 0.1, "all": 0.0}, "photo_patches": {"10": -0.2, "all": 0.1}, "shapes": {"10": 0.05, "all": 0.2}}})
    assert "| recipe | Δ digits, 10/class | Δ digits, all |" in table
    assert "| a | +0.100 | +0.000 | -0.200 | +0.100 | +0.050 | +0.200 | +0.042 | 4 of 6 |" in table


def test_hostile_config_and_export_files_are_refused(tmp_path: Path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"method = \"rotnet\"\n\xff\xfe\x00junk")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(binary)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(folder)
    from selfsup.training import save_checkpoint

    for envelope, message in (
        ({"format": "selfsup-backbone", "state_dict": {}}, "an export without its architecture"),
        ({"format": "selfsup-backbone", "architecture": {"name": "small_resnet", "options": {"width": 4}}, "state_dict": [1, 2]}, "without its state_dict"),
        ({"format": "selfsup-backbone", "architecture": {"name": "small_resnet", "options": {"width": 4}}, "state_dict": {"x": torch.zeros(1)}}, "do not fit small_resnet"),
        ({"something": 1}, "neither a selfsup checkpoint nor an exported backbone"),
    ):
        save_checkpoint(envelope, tmp_path / "e.pt")
        with pytest.raises(ValueError, match=message):
            selfsup.load_backbone(tmp_path / "e.pt")
