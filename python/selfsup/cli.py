"""The ``selfsup`` command line (also ``python -m selfsup``).

Every command has ``--help``. Bad option values, unknown names and unreadable inputs end with a
one-line error and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """A bad option value: reported in one line, exit code 2."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integer seeds, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integer seeds, got {text!r}")
    return seeds


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


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
    from selfsup.demo import format_table, run_demo
    from selfsup.viz.pretext import show_pretext

    out = Path(args.out)
    show_pretext(out / "pretext.png", progress=not args.quiet)
    report = run_demo(out, progress=not args.quiet)
    print(format_table(report["results"]))
    print(f"wrote {out / 'report.json'}, {out / 'probe.png'} and {out / 'pretext.png'}")
    return 0


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as int, float, true/false, or left a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    value: Any = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
    return key.strip().replace("-", "_"), value


def _dataset(name: str) -> Any:
    """The source ``--data`` names: a registered dataset (an in-memory
    :class:`~selfsup.data.ArraySource`), an image folder, a file list or tar shards (decoded per
    batch from the original files)."""
    from selfsup import plugins
    from selfsup.data import ArraySource, open_source

    if os.sep in name or Path(name).exists() or name.endswith((".tar", ".txt", ".csv")):
        try:
            return open_source(name)
        except (ValueError, OSError) as error:
            raise UsageError(f"--data: {str(error).removeprefix('data: ')}") from None
    try:
        factory = plugins.get("datasets", name)
    except plugins.UnknownNameError as error:
        raise UsageError(f"--data: {error}") from None
    data = factory()
    return ArraySource(getattr(data, "images", data), getattr(data, "labels", None))


def _takes(cls: Any, option: str) -> bool:
    import inspect

    try:
        return option in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from selfsup import plugins
    from selfsup.train import TrainConfig, Trainer

    try:
        method_cls = plugins.get("methods", args.method)
        backbone_factory = plugins.get("backbones", args.backbone)
    except plugins.UnknownNameError as error:
        raise UsageError(str(error)) from None
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, optimizer=args.optimizer,
        schedule=args.schedule, warmup_steps=args.warmup_steps if args.warmup_steps is not None else min(10, args.steps // 10), accumulate=args.accumulate, amp=args.amp, seed=args.seed,
        checkpoint_every=args.checkpoint_every, progress=not args.quiet, sync_bn=args.sync_bn,
        workers=args.workers, prefetch=args.prefetch,
    )
    try:
        config.validate()
    except ValueError as error:
        raise UsageError(f"--{str(error).split(':')[0].replace('_', '-')}: {str(error).split(': ', 1)[1]}") from None
    source = _dataset(args.data)
    if method_cls.uses_labels and not source.labeled:
        raise UsageError(
            f"--data: method {args.method} trains on class labels and {args.data} has none"
            " (an image folder needs one sub-folder per class)"
        )
    torch.manual_seed(args.seed)
    backbone_options = {"width": args.width} if args.backbone == "small_resnet" else {}
    if args.backbone == "small_resnet" and hasattr(method_cls, "in_channels"):
        backbone_options["in_channels"] = method_cls.in_channels
    method_options = dict(args.option)
    from_files = not hasattr(source, "images")
    if from_files and method_cls.takes_originals and _takes(method_cls, "image_size"):
        method_options.setdefault("image_size", args.image_size)
    try:
        method = method_cls(backbone_factory(**backbone_options), **method_options)
    except TypeError as error:
        raise UsageError(f"--option: {error}") from None
    metadata = {
        "backbone": {"name": args.backbone, "options": backbone_options},
        "method_options": method_options,
        "data": args.data,
        "image_size": args.image_size if from_files else int(source.images.shape[1]),
    }
    trainer = Trainer(method, source, config, Path(args.out), metadata=metadata, image_size=args.image_size if from_files else None)
    if args.resume:
        if trainer.resume(allow_changes=args.allow_changes):
            print(f"resumed from step {trainer.step}", file=sys.stderr)
        else:
            print(f"--resume: no checkpoint in {args.out}; starting from step 0", file=sys.stderr)
    trainer.fit()
    print(f"wrote {trainer.checkpoint_path}")
    return 0


def _load_backbone(checkpoint: str) -> tuple[Any, dict[str, Any]]:
    import torch

    from selfsup import plugins
    from selfsup.train import load_checkpoint

    state = load_checkpoint(checkpoint)
    spec = state.get("metadata", {}).get("backbone")
    if spec is None:
        raise UsageError(f"--checkpoint: {checkpoint} does not say which backbone it trained")
    backbone = plugins.get("backbones", spec["name"])(**spec["options"])
    try:
        method_cls = plugins.get("methods", state["method"]) if "method" in state else None
    except plugins.UnknownNameError:
        method_cls = None  # the backbone alone still exports without the plugin that trained it
    prepare = getattr(method_cls, "prepare_backbone", None)
    if prepare is not None:
        backbone = prepare(backbone, **state["metadata"].get("method_options", {}))
    weights = {k[len("backbone.") :]: v for k, v in state["model"].items() if k.startswith("backbone.")}
    backbone.load_state_dict(weights)
    assert isinstance(backbone, torch.nn.Module)
    return backbone, state


def _load_method(checkpoint: str) -> Any:
    from selfsup import plugins

    backbone, state = _load_backbone(checkpoint)
    method = plugins.get("methods", state["method"])(backbone, **state["metadata"].get("method_options", {}))
    if "dataset_size" in state["metadata"]:
        method.bind_dataset(int(state["metadata"]["dataset_size"]))
    method.load_state_dict(state["model"])
    return method


def cmd_show(args: argparse.Namespace) -> int:
    from selfsup.data import load_digits
    from selfsup.viz.predictions import show_predictions

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out: expected a .png path, got {args.out!r}")
    method = _load_method(args.checkpoint)
    print(f"wrote {show_predictions(method, load_digits().test.images[: args.count], out, seed=args.seed)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from selfsup.train import save_checkpoint

    backbone, _ = _load_backbone(args.checkpoint)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"--out: {out} exists; pass --force to overwrite")
    save_checkpoint(backbone.state_dict(), out)
    print(f"wrote {out} ({sum(t.numel() for t in backbone.state_dict().values() if isinstance(t, torch.Tensor))} values)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from selfsup.data import load_digits
    from selfsup.demo import format_table
    from selfsup.eval.protocol import extract_features, probe_table

    backbone, _ = _load_backbone(args.checkpoint)
    data = load_digits()
    table = probe_table(
        extract_features(backbone, data.train.images), data.train.labels, extract_features(backbone, data.test.images), data.test.labels
    )
    print(format_table({Path(args.checkpoint).name: table}))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import copy

    import torch

    from selfsup.data import load_digits
    from selfsup.eval import labeled_subset
    from selfsup.eval.finetune import FineTuneConfig, accuracy, finetune, train_from_scratch

    backbone, _ = _load_backbone(args.checkpoint)
    data = load_digits()
    per_class = None if args.labels_per_class == "all" else int(args.labels_per_class)
    chosen = labeled_subset(data.train.labels, per_class, args.seed)
    images, labels = data.train.images[chosen], data.train.labels[chosen]
    config = FineTuneConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)
    scratch_backbone = copy.deepcopy(backbone)
    for module in scratch_backbone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    torch.manual_seed(args.seed)
    model, _ = finetune(backbone, images, labels, 10, config)
    torch.manual_seed(args.seed)
    scratch, _ = train_from_scratch(scratch_backbone, images, labels, 10, config)
    print(f"{len(chosen)} labels, {args.epochs} epochs, held-out accuracy:")
    print(f"  fine-tuned (gradual unfreezing, discriminative lr, one-cycle): {accuracy(model, data.test.images, data.test.labels):.3f}")
    print(f"  same architecture from scratch, same labels and budget:        {accuracy(scratch, data.test.images, data.test.labels):.3f}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from selfsup import plugins
    from selfsup.eval.compare import CompareConfig, compare, markdown_table, method_of

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    config = CompareConfig(
        steps=args.steps, batch_size=args.batch_size, width=args.width, seed=args.seed, dataset=args.dataset, validation=args.validation,
    )
    for name in methods or []:
        try:
            plugins.get("methods", method_of(name))
        except plugins.UnknownNameError as error:
            raise UsageError(f"--methods: {error}") from None
    if args.seeds is not None:
        from selfsup.eval.seeds import compare_seeds, seeds_table

        summary = compare_seeds(Path(args.out), methods, config, args.seeds, progress=not args.quiet)
        print(seeds_table(summary))
        print(f"wrote {Path(args.out) / 'seeds.md'}, {Path(args.out) / 'seeds.json'} and one seed-S folder per seed")
        return 0
    report = compare(Path(args.out), methods, config, progress=not args.quiet)
    print(markdown_table(report))
    print(f"wrote {Path(args.out) / 'compare.md'} and {Path(args.out) / 'compare.json'}")
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

    registry = plugins.registry()
    for kind in plugins.KINDS:
        print(f"{kind}:")
        for entry in registry.registrations(kind):
            aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
            print(f"  {entry.name}{aliases}  [{entry.plugin}]")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfsup", description="Self-supervised learning for computer vision.")
    parser.add_argument("--version", action="version", version=f"selfsup {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="pretrain on the embedded digits and probe against random init (a few minutes on a CPU)",
        description="Pretrain SimCLR and RotNet on the embedded scikit-learn digits, then fit the same linear probe on "
        "1, 5, 10 and all labels per class (3 seeds) for each pretrained and the random-init backbone; "
        "print the table and write report.json, probe.png and pretext.png.",
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(run=cmd_demo)

    show = commands.add_parser(
        "show-pretext",
        help="render what each pretext task sees on a sample photo into one PNG",
        description="Render the inputs and targets of every pretext task for a scikit-image sample photo.",
    )
    show.add_argument("--out", default="runs/pretext.png", help="PNG file to write (default: runs/pretext.png)")
    show.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    show.add_argument("--photo", default="astronaut", help="sample photo name (default: astronaut)")
    show.add_argument("--quiet", action="store_true", help="no progress line")
    show.set_defaults(run=cmd_show_pretext)

    train = commands.add_parser("train", help="pretrain a method on a dataset", description="Pretrain a registered method.")
    train.add_argument("--method", required=True, help="method name (see `selfsup methods`)")
    train.add_argument("--data", default="digits", metavar="NAME|DIR|SHARDS|LIST",
                       help="a registered dataset, an image folder (class sub-folders or flat), WebDataset tar shards "
                       "(dir/train-{000000..000127}.tar) or a file list (.txt paths, .csv path,label) (default: digits)")
    train.add_argument("--image-size", type=_positive, default=64,
                       help="with files: the crop side of view-based methods, and the side of the centre squares other "
                       "methods see (default: 64)")
    train.add_argument("--workers", type=int, default=0,
                       help="forked loader processes; 0 builds batches in the main process on every core (default: 0)")
    train.add_argument("--prefetch", type=_positive, default=2, help="batches built ahead of the step, per worker (default: 2)")
    train.add_argument("--backbone", default="small_resnet", help="registered backbone (default: small_resnet)")
    train.add_argument("--width", type=_positive, default=16, help="small_resnet width (default: 16)")
    train.add_argument("--out", default="runs/train", help="run folder for checkpoint.pt and metrics.jsonl")
    train.add_argument("--steps", type=_positive, default=300)
    train.add_argument("--batch-size", type=_positive, default=64)
    train.add_argument("--lr", type=_positive_float, default=0.05)
    train.add_argument("--weight-decay", type=float, default=5e-4)
    train.add_argument("--optimizer", choices=["sgd", "adamw", "lars"], default="sgd")
    train.add_argument("--schedule", choices=["cosine", "onecycle"], default="cosine")
    train.add_argument("--warmup-steps", type=int, default=None, help="default: a tenth of --steps, at most 10")
    train.add_argument("--accumulate", type=_positive, default=1)
    train.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=_positive, default=50)
    train.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="method option, repeatable (e.g. --option cell=10 --option patch=8)")
    train.add_argument("--sync-bn", action="store_true",
                       help="under torchrun, BatchNorm statistics over the global batch (SyncBatchNorm)")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    train.add_argument("--allow-changes", action="store_true",
                       help="with --resume: accept settings that differ from the checkpoint's run (no exact resume; the changes are listed)")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("eval", help="probe a checkpoint's backbone on the digits", description="Linear probe and kNN.")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.set_defaults(run=cmd_eval)

    show_cmd = commands.add_parser(
        "show",
        help="render what a trained method predicts on held-out digits (rotations, puzzles, reconstructions, samples)",
        description="Load a checkpoint written by `selfsup train` and render its predictions into one PNG.",
    )
    show_cmd.add_argument("--checkpoint", required=True)
    show_cmd.add_argument("--out", default="runs/show.png")
    show_cmd.add_argument("--count", type=_positive, default=8, help="images to show (default: 8)")
    show_cmd.add_argument("--seed", type=int, default=0)
    show_cmd.set_defaults(run=cmd_show)

    export = commands.add_parser("export", help="write a checkpoint's backbone state_dict", description="Export the backbone.")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--out", required=True, help="file to write")
    export.add_argument("--force", action="store_true", help="overwrite --out")
    export.set_defaults(run=cmd_export)

    tune = commands.add_parser(
        "finetune",
        help="fine-tune a checkpoint's backbone on few digits labels, ULMFiT-style, against training from scratch",
        description="Gradual unfreezing, discriminative learning rates (factor 2.6) and one-cycle on a labeled "
        "subset of the digits; the same architecture trained from scratch with the same labels and budget is the baseline.",
    )
    tune.add_argument("--checkpoint", required=True)
    tune.add_argument("--labels-per-class", default="10", choices=["1", "5", "10", "all"])
    tune.add_argument("--epochs", type=_positive, default=8)
    tune.add_argument("--lr", type=_positive_float, default=1e-2)
    tune.add_argument("--seed", type=int, default=0)
    tune.set_defaults(run=cmd_finetune)

    comparison = commands.add_parser(
        "compare",
        help="pretrain every pretext method on one budget and probe each against random init",
        description="Pretrain each pretext method (same small_resnet init, steps and batch size) on an embedded labelled set, "
        "then fit the held-out linear probe with 10 and all labels per class (3 seeds) and kNN for each backbone and "
        "for random init; print a markdown table and write compare.md and compare.json.",
    )
    comparison.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    comparison.add_argument(
        "--dataset", default="digits", choices=("digits", "photo_patches"),
        help="labelled set with a held-out split: the grey digits or colour patches of 7 photographs (default: digits)",
    )
    comparison.add_argument("--methods", default=None,
                            help="comma-separated method names or recipe rows such as mocov1 (default: every pretext method)")
    comparison.add_argument("--steps", type=_positive, default=50)
    comparison.add_argument("--batch-size", type=_positive, default=32)
    comparison.add_argument("--width", type=_positive, default=16, help="small_resnet width (default: 16)")
    comparison.add_argument("--seed", type=int, default=0)
    comparison.add_argument(
        "--seeds", type=_seed_list, default=None, metavar="S,S,...",
        help="run the comparison once per pretraining seed and summarise each row's gain across them (overrides --seed)",
    )
    comparison.add_argument(
        "--validation", type=_positive, default=0, metavar="N",
        help="choose recipes without the held-out split: probe on N training images held out of pretraining instead",
    )
    comparison.add_argument("--quiet", action="store_true")
    comparison.set_defaults(run=cmd_compare)

    shard = commands.add_parser(
        "shard",
        help="write an image folder or file list as WebDataset tar shards",
        description="Copy the image files of a folder (class sub-folders give .cls labels) or file list, unchanged, into "
        "WebDataset-format tar shards PREFIX-000000.tar, ... that `selfsup train --data` (and webdataset, open_clip, timm) read.",
    )
    shard.add_argument("--data", required=True, help="image folder or file list (.txt or .csv)")
    shard.add_argument("--out", required=True, help="folder for the shards")
    shard.add_argument("--shard-size", type=_positive, default=1000, help="images per shard (default: 1000)")
    shard.add_argument("--prefix", default="train", help="shard file name prefix (default: train)")
    shard.add_argument("--quiet", action="store_true")
    shard.set_defaults(run=cmd_shard)

    methods = commands.add_parser("methods", help="list registered methods, pretext tasks, backbones and datasets")
    methods.set_defaults(run=cmd_methods)

    listing = commands.add_parser(
        "plugins",
        help="list loaded plugins, what each registered, and the errors of those that failed",
        description="List the built-in and installed plugins (entry-point group 'selfsup'). "
        "Exit status 1 when a plugin failed to load. SELFSUP_PLUGINS=none|all|name,... selects them.",
    )
    listing.set_defaults(run=cmd_plugins)
    return parser


def _version() -> str:
    from selfsup import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (UsageError, ValueError, TypeError, OSError) as error:
        print(f"selfsup {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
