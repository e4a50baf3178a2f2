"""The ``selfsup`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


class UsageError(Exception):
    """A bad option value: reported in one line, exit code 2."""


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

    show = commands.add_parser(
        "show-pretext",
        help="render what each pretext task sees on a sample photo into one PNG",
        description="Render the inputs and targets of every pretext task (jigsaw, relative patches, "
        "rotations, colour, inpainting masks, corruptions) for a scikit-image sample photo.",
    )
    show.add_argument("--out", default="runs/pretext.png", help="PNG file to write (default: runs/pretext.png)")
    show.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    show.add_argument("--photo", default="astronaut", help="sample photo name (default: astronaut)")
    show.add_argument("--quiet", action="store_true", help="no progress line")
    show.set_defaults(run=cmd_show_pretext)

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
    except UsageError as error:
        print(f"selfsup {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as error:
        print(f"selfsup {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
