"""The ``selfsup`` command line (also ``python -m selfsup``).

Every command has ``--help``. Bad option values, unknown names and unreadable inputs end with a
one-line error and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn


class UsageError(Exception):
    """A bad option value: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``selfsup CMD: error: ...``), exit status 2,
    with a pointer to ``--help`` instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Help text with each flag's default, where it has one and the text does not give it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and action.default not in (None, argparse.SUPPRESS, False, [], "") and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _parsed(kind: Callable[[str], Any], expected: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` when ``ok`` holds for it, else "expected ``expected``"."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive = _parsed(int, "a positive integer", lambda v: v >= 1)
_non_negative = _parsed(int, "an integer >= 0", lambda v: v >= 0)
_positive_float = _parsed(float, "a positive number", lambda v: v > 0 and math.isfinite(v))
_finite_float = _parsed(float, "a finite number", math.isfinite)
_fraction = _parsed(float, "a fraction between 0 and 1", lambda v: 0 < v < 1)


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integer seeds, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integer seeds, got {text!r}")
    return seeds


SEMI_METHODS = ("supervised", "fixmatch", "uda", "mixmatch", "s4l", "sla", "simclr>supervised", "simclr>fixmatch")
"""The rows of ``compare-semi`` (:data:`selfsup.experiments.semi.METHODS`, without importing torch)."""


def _dataset_list(text: str) -> str:
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = ("digits", "photo_patches", "shapes")
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected comma-separated names among {', '.join(known)}, got {text!r}")
    return ",".join(names)


def cmd_show_pretext(args: argparse.Namespace) -> int:
    from selfsup.data import PHOTO_NAMES
    from selfsup.viz.pretext import show_pretext

    if args.photo not in PHOTO_NAMES:
        raise UsageError(f"--photo: unknown photo {args.photo!r}; choose from {', '.join(PHOTO_NAMES)}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out: expected a .png path, got {args.out!r}")
    path = show_pretext(out, seed=args.seed, photo=args.photo, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from selfsup.eval.protocol import format_table
    from selfsup.experiments.demo import run_demo
    from selfsup.viz.pretext import show_pretext

    out = Path(args.out)
    show_pretext(out / "pretext.png", progress=not args.quiet)
    report = run_demo(out, progress=not args.quiet, device=_device(args))
    print(format_table(report["results"]))
    print(f"wrote {out / 'report.json'}, {out / 'probe.png'} and {out / 'pretext.png'}")
    return 0


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as int, float, true/false, or left a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    from selfsup.run.config import parse_value

    key, raw = text.split("=", 1)
    return key.strip().replace("-", "_"), parse_value(raw)


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings given on the command line (flags left out are absent, not defaults)."""
    from selfsup.run.config import KINDS

    given = {key: value for key, value in vars(args).items() if key in KINDS}
    for table, pairs in (("options", "option"), ("backbone_options", "backbone_option")):
        if getattr(args, pairs, None):
            given[table] = dict(getattr(args, pairs))
    if getattr(args, "width", None) is not None:
        given.setdefault("backbone_options", {})["width"] = args.width
    return given


def _resolved_run(args: argparse.Namespace) -> Any:
    from selfsup import plugins
    from selfsup.run.build import resolve_run
    from selfsup.run.config import load_settings, merge_settings

    file_settings = load_settings(args.config) if args.config else {}
    try:
        return resolve_run(merge_settings(file_settings, _train_settings(args)), source=f"config {args.config}" if args.config else "train")
    except plugins.UnknownNameError as error:
        raise UsageError(f"--method: {error}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from selfsup import plugins
    from selfsup.run.build import build_trainer

    run = _resolved_run(args)
    if args.print_config:
        print(run.to_toml(), end="")
        return 0
    try:
        trainer = build_trainer(run, progress=not args.quiet)
    except plugins.UnknownNameError as error:
        raise UsageError(str(error)) from None
    if args.resume:
        if trainer.resume(allow_changes=args.allow_changes):
            if trainer.rank == 0:
                print(f"resumed from step {trainer.step}", file=sys.stderr)
        elif trainer.rank == 0:
            print(f"--resume: no checkpoint in {run.out}; starting from step 0", file=sys.stderr)
    trainer.fit()
    if trainer.rank == 0:
        print(f"wrote {trainer.checkpoint_path} and {Path(run.out) / 'config.toml'}")
    return 0


def _checkpoint_backbone(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from selfsup.run.restore import backbone_from_state
    from selfsup.training import load_checkpoint

    state = load_checkpoint(args.checkpoint)
    return backbone_from_state(state, args.checkpoint), state


def _device(args: argparse.Namespace) -> str:
    from selfsup.run.build import resolve_device

    return resolve_device(args.device)


def _eval_data(args: argparse.Namespace, state: dict[str, Any]) -> Any:
    from selfsup.data.labelled import load_labelled

    size = args.image_size or int(state.get("metadata", {}).get("image_size") or 64)
    return load_labelled(args.data, image_size=size, test=args.test_data, test_fraction=args.test_fraction, seed=args.split_seed)


def cmd_show(args: argparse.Namespace) -> int:
    from selfsup.run.restore import load_method
    from selfsup.viz.predictions import show_predictions

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out: expected a .png path, got {args.out!r}")
    method, state = load_method(args.checkpoint)
    data = _eval_data(args, state)
    path = show_predictions(method.to(_device(args)), data.splits.test.images[: args.count], out, seed=args.seed)
    print(f"wrote {path} ({args.count} held-out images of {data.name})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from selfsup.run.export import export_backbone
    from selfsup.run.restore import backbone_spec

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"--out: {out} exists; pass --force to overwrite")
    backbone, state = _checkpoint_backbone(args)
    spec = backbone_spec(state, args.checkpoint)
    metadata = state.get("metadata", {})
    channels = int(spec["options"].get("in_channels", 3))
    try:
        export_backbone(
            backbone, spec, out, fmt=args.format, method=str(state.get("method", "")), image_size=int(metadata.get("image_size") or 32),
            in_channels=channels,
        )
    except ValueError as error:
        raise UsageError(f"--{error}") from None
    count = sum(t.numel() for t in backbone.state_dict().values())
    print(f"wrote {out} ({args.format}: {spec['name']}, {count} values)")
    return 0


def _classifier_accuracy(checkpoint: str, images: Any, labels: Any, classes: int, device: str) -> tuple[float, bool] | None:
    """A semi-supervised run's own classifier on the held-out split (EMA weights where it kept
    them) and whether they were the EMA's; None for other methods or another number of classes."""
    import numpy as np

    from selfsup import plugins
    from selfsup.run.restore import load_method
    from selfsup.training.checkpoint import load_checkpoint

    name = load_checkpoint(checkpoint).get("method")
    found = plugins.registry().find("methods", str(name))
    if found is None or not getattr(found.obj, "semi_supervised", False):
        return None
    method, _ = load_method(checkpoint)
    if getattr(method, "classes", None) != classes:
        print(f"the run's own classifier has {getattr(method, 'classes', None)} classes and the data {classes}: not scored")
        return None
    predicted = method.to(device).predict(images)  # type: ignore[operator]
    return float(np.mean(predicted == labels)), getattr(method, "ema", None) is not None


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from selfsup.eval.protocol import extract_features, format_table, probe_table
    from selfsup.run.restore import random_init_backbone
    from selfsup.viz.plot import probe_plot

    backbone, state = _checkpoint_backbone(args)
    data = _eval_data(args, state)
    device = _device(args)
    train, test = data.splits
    rows: dict[str, Any] = {}
    for name, module in (("random init", random_init_backbone(state, args.checkpoint)), (Path(args.checkpoint).parent.name or args.checkpoint, backbone)):
        module = module.to(device)
        rows[name] = probe_table(extract_features(module, train.images), train.labels, extract_features(module, test.images), test.labels)
    print(f"held-out linear probe (mean ± std over 3 label seeds) and kNN on {data.name}: {len(train.labels)} train / {len(test.labels)} test images, {len(data.classes)} classes")
    print(format_table(rows))
    classifier = _classifier_accuracy(args.checkpoint, test.images, test.labels, len(data.classes), device)
    if classifier is not None:
        print(f"the run's own classifier{' (its EMA)' if classifier[1] else ''}: held-out accuracy {classifier[0]:.3f}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"checkpoint": str(args.checkpoint), "data": data.name, "train": len(train.labels), "test": len(test.labels), "results": rows}
        if classifier is not None:
            report["classifier_accuracy"] = classifier[0]
        (out / "report.json").write_text(json.dumps(report, indent=2))
        probe_plot(rows, out / "probe.png", title=f"held-out linear probe on {data.name}")
        print(f"wrote {out / 'report.json'} and {out / 'probe.png'}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import torch

    from selfsup.eval import labeled_subset
    from selfsup.eval.finetune import FineTuneConfig, accuracy, finetune, train_from_scratch
    from selfsup.run.restore import random_init_backbone

    backbone, state = _checkpoint_backbone(args)
    device = _device(args)
    data = _eval_data(args, state)
    train, test = data.splits
    classes = len(data.classes)
    per_class = None if args.labels_per_class == "all" else int(args.labels_per_class)
    chosen = labeled_subset(train.labels, per_class, args.seed)
    images, labels = train.images[chosen], train.labels[chosen]
    config = FineTuneConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)
    scratch_backbone = random_init_backbone(state, args.checkpoint).to(device)
    torch.manual_seed(args.seed)
    model, _ = finetune(backbone.to(device), images, labels, classes, config)
    torch.manual_seed(args.seed)
    scratch, _ = train_from_scratch(scratch_backbone, images, labels, classes, config)
    print(f"{data.name}: {len(chosen)} labels, {args.epochs} epochs, accuracy on {len(test.labels)} held-out images:")
    print(f"  fine-tuned (gradual unfreezing, discriminative lr, one-cycle): {accuracy(model, test.images, test.labels):.3f}")
    print(f"  same architecture from scratch, same labels and budget:        {accuracy(scratch, test.images, test.labels):.3f}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from selfsup import plugins
    from selfsup.experiments.compare import CompareConfig, compare, markdown_table, method_of

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    config = CompareConfig(
        steps=args.steps, batch_size=args.batch_size, width=args.width, seed=args.seed, dataset=args.dataset, validation=args.validation,
        device=args.device,
    )
    for name in methods or []:
        try:
            plugins.get("methods", method_of(name))
        except plugins.UnknownNameError as error:
            raise UsageError(f"--methods: {error}") from None
    if args.seeds is not None:
        from selfsup.experiments.seeds import compare_seeds, seeds_table

        summary = compare_seeds(Path(args.out), methods, config, args.seeds, progress=not args.quiet)
        print(seeds_table(summary))
        print(f"wrote {Path(args.out) / 'seeds.md'}, {Path(args.out) / 'seeds.json'} and one seed-S folder per seed")
        return 0
    report = compare(Path(args.out), methods, config, progress=not args.quiet)
    print(markdown_table(report))
    print(f"wrote {Path(args.out) / 'compare.md'} and {Path(args.out) / 'compare.json'}")
    return 0


def cmd_compare_semi(args: argparse.Namespace) -> int:
    from selfsup import plugins
    from selfsup.experiments.semi import SemiConfig, run

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    for spec in methods:
        for name in spec.split(">"):
            try:
                plugins.get("methods", name)
            except plugins.UnknownNameError as error:
                raise UsageError(f"--methods: {error}") from None
        if not getattr(plugins.get("methods", spec.rpartition(">")[2]), "semi_supervised", False):
            raise UsageError(f"--methods: {spec} does not end in a semi-supervised method (supervised, fixmatch, uda, ...)")
    config = SemiConfig(
        out=Path(args.out), datasets=tuple(args.datasets.split(",")), methods=methods, seeds=tuple(args.seeds), steps=args.steps,
        batch_size=args.batch_size, mu=args.mu, width=args.width, device=_device(args),
    )
    print(run(config))
    print(f"wrote {Path(args.out) / 'report.md'}, {Path(args.out) / 'results.jsonl'} and a PNG per dataset")
    return 0


def cmd_shard(args: argparse.Namespace) -> int:
    from selfsup.data import open_source, write_shards

    try:
        source = open_source(args.data)
        paths = write_shards(source, args.out, args.shard_size, prefix=args.prefix, progress=not args.quiet)
    except (ValueError, OSError) as error:
        raise UsageError(f"--{'out' if isinstance(error, FileExistsError) else 'data'}: {str(error).split(': ', 1)[-1]}") from None
    pattern = f"{args.out}/{args.prefix}-{{000000..{len(paths) - 1:06d}}}.tar"
    print(f"wrote {len(paths)} shards of {len(source)} images{' with labels' if source.labeled else ''}: {pattern}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from selfsup import plugins

    if args.details:
        from selfsup.run.describe import describe_method

        try:
            print(describe_method(args.details))
        except plugins.UnknownNameError as error:
            raise UsageError(f"--details: {error}") from None
        return 0
    registry = plugins.registry()
    for kind in plugins.KINDS:
        print(f"{kind}:")
        for entry in registry.registrations(kind):
            aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
            target = f" -> {entry.obj.method}" if kind == "recipes" and entry.obj.method != entry.name else ""
            print(f"  {entry.name}{target}{aliases}  [{entry.plugin}]")
    print("backbones also: torchvision:NAME (any torchvision classification model), timm:NAME (with selfsup[timm])")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from selfsup import plugins

    registry = plugins.registry()
    failed = 0
    for info in registry.plugins.values():
        status = "ok" if info.error is None else "FAILED"
        print(f"{info.name}  [{info.source}]  {status}")
        for item in info.registered:
            print(f"    {item}")
        if info.error is not None:
            failed += 1
            print(f"    error: {info.error}")
    return 1 if failed else 0


def _add_train_flags(train: argparse.ArgumentParser) -> None:
    """One flag per :class:`~selfsup.run.config.RunConfig` key. Defaults are left out of the
    namespace (``SUPPRESS``) so that only the flags given override the recipe and config file."""
    from selfsup.run.config import KINDS, RECIPE_KEYS, default_of, help_of
    from selfsup.run.recipe import OPTIMIZERS, SCHEDULES

    choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "amp": ("none", "bf16", "fp16")}
    types: dict[str, Callable[[str], Any]] = {"pos": _positive, "int": int, "int?": _non_negative, "float": _finite_float, "str": str}
    for key, kind in KINDS.items():
        flag = "--" + key.replace("_", "-")
        if key in RECIPE_KEYS:
            default = "the method's recipe"
        elif kind in ("table", "list") or default_of(key) is None:
            default = ""
        else:
            default = str(default_of(key)).lower() if kind == "bool" else str(default_of(key))
        text = help_of(key) + (f" (default: {default})" if default else "")
        if kind == "table":
            singular = "option" if key == "options" else "backbone-option"
            train.add_argument(f"--{singular}", type=_option, action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE",
                               dest=singular.replace("-", "_"), help=text + "; repeatable")
        elif kind == "list":
            train.add_argument(flag, action="append", choices=("tensorboard",), default=argparse.SUPPRESS, help=text + "; repeatable")
        elif kind == "bool":
            train.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        else:
            train.add_argument(flag, type=types[kind], choices=choices.get(key), default=argparse.SUPPRESS, help=text,
                               required=False, metavar=None if key in choices else key.upper())
    train.add_argument("--width", type=_positive, default=None, help="shorthand for --backbone-option width=N (small_resnet; default: 16)")
    train.add_argument("--config", default=None, metavar="FILE.toml",
                       help="a run file (every key of --print-config); flags given here override it")
    train.add_argument("--print-config", action="store_true", help="print the resolved run as TOML and exit without training")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    train.add_argument("--allow-changes", action="store_true",
                       help="with --resume: accept settings that differ from the checkpoint's run (no exact resume; the changes are listed)")
    train.add_argument("--quiet", action="store_true", help="no progress bar or lines")


def _add_device_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:K")


def _add_eval_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--checkpoint", required=True, help="checkpoint.pt written by selfsup train")
    command.add_argument("--data", default="digits", metavar="NAME|DIR|LIST",
                         help="labelled data: digits or photo_patches (fixed held-out split), a folder with one sub-folder per class, "
                         "a .csv of path,label or labelled shards")
    command.add_argument("--test-data", default=None, metavar="DIR|LIST",
                         help="held-out labelled data with the same classes (default: a stratified --test-fraction of --data)")
    command.add_argument("--test-fraction", type=_fraction, default=0.2, help="held-out share of each class when there is no --test-data")
    command.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split")
    command.add_argument("--image-size", type=_positive, default=None, help="side images are brought to (default: the run's image size)")
    _add_device_flag(command)


def build_parser() -> argparse.ArgumentParser:
    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, formatter_class=HelpFormatter, **kwargs)
        return sub

    parser = Parser(prog="selfsup", description="Self-supervised learning for computer vision.", formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"selfsup {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    demo = command(
        "demo",
        help="pretrain on the embedded digits and probe against random init (a few minutes on a CPU)",
        description="Pretrain SimCLR and RotNet on the embedded scikit-learn digits, then fit the same linear probe on "
        "1, 5, 10 and all labels per class (3 seeds) for each pretrained and the random-init backbone; "
        "print the table and write report.json, probe.png and pretext.png.",
    )
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_device_flag(demo)
    demo.set_defaults(run=cmd_demo)

    show = command(
        "show-pretext",
        help="render what each pretext task sees on a sample photo into one PNG",
        description="Render the inputs and targets of every pretext task for a scikit-image sample photo.",
    )
    show.add_argument("--out", default="runs/pretext.png", help="PNG file to write")
    show.add_argument("--seed", type=int, default=0, help="random seed")
    show.add_argument("--photo", default="astronaut", help="sample photo name")
    show.add_argument("--quiet", action="store_true", help="no progress line")
    show.set_defaults(run=cmd_show_pretext)

    train = command(
        "train", help="pretrain a method on a dataset",
        description="Pretrain a registered method. The run is resolved from the method's registered recipe, then --config, then "
        "the flags given; it is saved as OUT/config.toml and in the checkpoint (selfsup train --config OUT/config.toml trains it again).",
    )
    _add_train_flags(train)
    train.set_defaults(run=cmd_train)

    evaluate = command(
        "eval", help="probe a checkpoint's backbone against random init on labelled data (and score a semi-supervised run's classifier)",
        description="Held-out linear probe (1, 5, 10, all labels per class, 3 label seeds) and weighted kNN of the checkpoint's "
        "frozen backbone and of the same architecture at random init.",
    )
    _add_eval_flags(evaluate)
    evaluate.add_argument("--out", default=None, help="folder for report.json and probe.png (default: print only)")
    evaluate.set_defaults(run=cmd_eval)

    show_cmd = command(
        "show",
        help="render what a trained method predicts on held-out images (rotations, puzzles, reconstructions, samples)",
        description="Load a checkpoint written by `selfsup train` and render its predictions on held-out images into one PNG.",
    )
    _add_eval_flags(show_cmd)
    show_cmd.add_argument("--out", default="runs/show.png", help="PNG file to write")
    show_cmd.add_argument("--count", type=_positive, default=8, help="images to show")
    show_cmd.add_argument("--seed", type=int, default=0, help="random seed of the pretext inputs")
    show_cmd.set_defaults(run=cmd_show)

    export = command("export", help="write a checkpoint's backbone (state dict or ONNX)",
                     description="Export the trained backbone: selfsup, torchvision or timm state dicts that name their architecture, or ONNX.")
    export.add_argument("--checkpoint", required=True, help="checkpoint.pt written by selfsup train")
    export.add_argument("--out", required=True, help="file to write")
    export.add_argument("--format", default="selfsup", choices=("selfsup", "torchvision", "timm", "onnx"),
                        help="selfsup (load with selfsup.load_backbone), torchvision/timm (load into the zoo's model), onnx")
    export.add_argument("--force", action="store_true", help="overwrite --out")
    export.set_defaults(run=cmd_export)

    tune = command(
        "finetune",
        help="fine-tune a checkpoint's backbone on few labels, ULMFiT-style, against training from scratch",
        description="Gradual unfreezing, discriminative learning rates (factor 2.6) and one-cycle on a labeled "
        "subset; the same architecture trained from scratch with the same labels and budget is the baseline.",
    )
    _add_eval_flags(tune)
    tune.add_argument("--labels-per-class", default="10", choices=["1", "5", "10", "all"], help="labelled images per class")
    tune.add_argument("--epochs", type=_positive, default=8, help="fine-tuning epochs")
    tune.add_argument("--lr", type=_positive_float, default=1e-2, help="peak learning rate of the head")
    tune.add_argument("--seed", type=int, default=0, help="seed of the labelled subset and the training")
    tune.set_defaults(run=cmd_finetune)

    comparison = command(
        "compare",
        help="pretrain every pretext method on one budget and probe each against random init",
        description="Pretrain each method at its registered recipe (same small_resnet init, steps and batch size) on an embedded labelled "
        "set, then fit the held-out linear probe with 10 and all labels per class (3 seeds) and kNN for each backbone and "
        "for random init; print a markdown table and write compare.md and compare.json.",
    )
    comparison.add_argument("--out", default="runs/compare", help="output folder")
    comparison.add_argument(
        "--dataset", default="digits", choices=("digits", "photo_patches", "shapes"),
        help="labelled set with a held-out split: the grey digits, colour patches of 7 photographs, or generated colour shapes",
    )
    comparison.add_argument("--methods", default=None,
                            help="comma-separated method or recipe names such as mocov1 (default: every pretext method)")
    comparison.add_argument("--steps", type=_positive, default=50, help="optimizer steps per method")
    comparison.add_argument("--batch-size", type=_positive, default=32, help="images per step")
    comparison.add_argument("--width", type=_positive, default=16, help="small_resnet width")
    comparison.add_argument("--seed", type=int, default=0, help="initialisation and data-order seed")
    comparison.add_argument(
        "--seeds", type=_seed_list, default=None, metavar="S,S,...",
        help="run the comparison once per pretraining seed and summarise each row's gain across them (overrides --seed)",
    )
    comparison.add_argument(
        "--validation", type=_positive, default=0, metavar="N",
        help="choose recipes without the held-out split: probe on N training images held out of pretraining instead",
    )
    _add_device_flag(comparison)
    comparison.add_argument("--quiet", action="store_true", help="no progress lines")
    comparison.set_defaults(run=cmd_compare)

    semi = command(
        "compare-semi",
        help="semi-supervised methods against labelled-only training at 1, 5, 10 and all labels per class",
        description="Train each semi-supervised method (and labelled-only training) at its registered recipe on one shared budget, "
        "the labels drawn per class with each seed and the whole training split as the unlabelled pool, and score its "
        "classifier on the held-out split; finished rows are kept in results.jsonl and not trained again.",
    )
    semi.add_argument("--out", default="runs/semi", help="output folder")
    semi.add_argument("--datasets", default="digits,photo_patches", type=_dataset_list, help="comma-separated: digits, photo_patches, shapes")
    semi.add_argument("--methods", default=",".join(SEMI_METHODS),
                      help="comma-separated semi-supervised methods; PRE>METHOD starts METHOD from a PRE run on the images")
    semi.add_argument("--seeds", type=_seed_list, default=[0, 1, 2], metavar="S,S,...", help="label seeds")
    semi.add_argument("--steps", type=_positive, default=200, help="optimizer steps per run")
    semi.add_argument("--batch-size", type=_positive, default=16, help="labelled images per step")
    semi.add_argument("--mu", type=_positive, default=3, help="largest number of unlabelled images per labelled one")
    semi.add_argument("--width", type=_positive, default=16, help="small_resnet width")
    _add_device_flag(semi)
    semi.set_defaults(run=cmd_compare_semi)

    shard = command(
        "shard",
        help="write an image folder or file list as WebDataset tar shards",
        description="Copy the image files of a folder (class sub-folders give .cls labels) or file list, unchanged, into "
        "WebDataset-format tar shards PREFIX-000000.tar, ... that `selfsup train --data` (and webdataset, open_clip, timm) read.",
    )
    shard.add_argument("--data", required=True, help="image folder or file list (.txt or .csv)")
    shard.add_argument("--out", required=True, help="folder for the shards")
    shard.add_argument("--shard-size", type=_positive, default=1000, help="images per shard")
    shard.add_argument("--prefix", default="train", help="shard file name prefix")
    shard.add_argument("--quiet", action="store_true", help="no progress line")
    shard.set_defaults(run=cmd_shard)

    methods = command("methods", help="list registered methods, recipes, pretext tasks, backbones and datasets",
                      description="List what the loaded plugins registered; --details NAME describes one method or recipe.")
    methods.add_argument("--details", default=None, metavar="NAME", help="a method's paper, options with defaults, and its recipes")
    methods.set_defaults(run=cmd_methods)

    listing = command(
        "plugins",
        help="list loaded plugins, what each registered, and the errors of those that failed",
        description="List the built-in and installed plugins (entry-point group 'selfsup'). "
        "Exit status 1 when a plugin failed to load. SELFSUP_PLUGINS=none|all|name,... selects them.",
    )
    listing.set_defaults(run=cmd_plugins)
    return parser


def _unrecognized(parser: argparse.ArgumentParser, command: str, extra: list[str]) -> NoReturn:
    """One line for arguments the command does not take, with the closest flag it does take."""
    import difflib

    sub = next(
        (choice for action in parser._actions if isinstance(action, argparse._SubParsersAction) for name, choice in action.choices.items() if name == command),
        parser,
    )
    flags = [flag for action in sub._actions for flag in action.option_strings if flag.startswith("--")]
    first = extra[0].split("=", 1)[0]
    close = difflib.get_close_matches(first, flags, n=1, cutoff=0.6) if first.startswith("-") else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    sub.error(f"unrecognized argument{'s' if len(extra) > 1 else ''} {' '.join(extra)}{hint}")
    raise SystemExit(2)  # error() exits; this line is for the type checker


def _flag_message(message: str) -> str:
    """``key: ...`` of a run setting as ``--flag: ...``, the flag that sets it."""
    from selfsup.run.config import KINDS

    key, sep, rest = message.partition(": ")
    flags = {"options": "option", "backbone_options": "backbone-option"}
    if sep and key in KINDS:
        return f"--{flags.get(key, key.replace('_', '-'))}: {rest}"
    return message


def _version() -> str:
    from selfsup import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unrecognized(parser, args.command, extra)
    try:
        return int(args.run(args))
    except (UsageError, ValueError, TypeError, OSError) as error:
        message = _flag_message(str(error)) if args.command == "train" else str(error)
        print(f"selfsup {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
