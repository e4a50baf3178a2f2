"""Does a recipe hold beyond one data set? Each row pretrains at its recipe on every embedded
labelled set (:data:`~selfsup.data.labelled.HELD_OUT_SETS`: grey digits, photograph patches,
generated shapes) and is probed on that set's *validation* split (training images held out of
pretraining, never the held-out test split), paired with the random init of its architecture.

``python -m selfsup.experiments.recipe_check --out runs/recipes`` checks the registered recipes of
:data:`ROWS` and the candidate settings of :data:`CANDIDATES` and writes ``recipes.md`` (the gain
per data set) and one ``compare`` report per data set. docs/recipes.md has the table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selfsup.data.labelled import HELD_OUT_SETS
from selfsup.eval.protocol import shot_name
from selfsup.experiments.compare import CompareConfig, compare, paired_differences, recipe_for, row_baseline
from selfsup.run.recipe import Recipe

ROWS: tuple[str, ...] = ("rotnet", "simclr", "byol", "barlow_twins")
"""Registered recipes checked by default."""

CANDIDATES: dict[str, Recipe | Mapping[str, Any]] = {
    "simclr@adamw2e-3,t0.2": Recipe("simclr", {"temperature": 0.2}, lr=2e-3),
    "byol@adamw1e-3": Recipe("byol"),
    "barlow_twins@lars0.2": {"optimizer": "lars", "lr": 0.2},
    "relative_position@adamw1e-3,colours": {"options": {"drop_colors": False}, "optimizer": "adamw", "lr": 1e-3},
    "relative_position@colours": {"options": {"drop_colors": False}},
    "moco@sgd0.3": {"optimizer": "sgd", "lr": 0.3},
    "swav@adamw1e-3": {"optimizer": "adamw", "lr": 1e-3},
    "swav@lars0.3": {"lr": 0.3},
    "swav@prototypes30": {"options": {"prototypes": 30}},
    "mae@adamw1.5e-3": {"lr": 1.5e-3},
}
"""Settings tried against the registered ones, by ``row@setting``: a :class:`Recipe` trains as it
is, a mapping is the change to the row's registered recipe (:meth:`Recipe.changed`). LightlySSL's
SimCLR (AdamW 2·10⁻³, τ = 0.2; SimCLR's recipe now) and plain BYOL (AdamW 10⁻³, its own views);
relative position keeping the colours, with its SGD or the joint methods' AdamW; MoCo v2's earlier
recipe, SGD at 0.3; SwAV with AdamW, at half its LARS rate, or with 30 prototypes; MAE at 3× its
rate."""


def candidate_recipe(name: str) -> Recipe:
    """The recipe candidate ``name`` of :data:`CANDIDATES` trains with."""
    setting = CANDIDATES[name]
    return setting if isinstance(setting, Recipe) else recipe_for(name.split("@")[0]).changed(**setting)


VALIDATION: dict[str, int] = {"digits": 297, "photo_patches": 294, "shapes": 300}
"""Training images held out as each set's validation split."""


def check(
    out: Path, rows: Sequence[str], candidates: Mapping[str, Recipe], *, steps: int, batch_size: int, seed: int, progress: bool,
    **compare_options: Any,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per row, data set and shot (``"10"`` and ``"all"`` labels per class), the gain of the
    linear probe over random init, paired by label seed (``compare_options``: further
    :class:`~selfsup.experiments.compare.CompareConfig` fields)."""
    gains: dict[str, dict[str, dict[str, float]]] = {}
    for dataset in HELD_OUT_SETS:
        config = CompareConfig(
            steps=steps, batch_size=batch_size, seed=seed, dataset=dataset, validation=VALIDATION[dataset], **compare_options
        )
        report = compare(out / dataset, [*rows, *candidates], config, progress=progress, recipes=candidates)
        shots = [shot_name(s) for s in config.shots]
        for name, table in report["results"].items():
            baseline = row_baseline(report["results"], table)
            if baseline is not None:
                gains.setdefault(name, {})[dataset] = {shot: float(paired_differences(table, baseline, shot).mean()) for shot in shots}
    return gains


def gains_table(gains: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Markdown: per row, the gain at each data set and shot, their mean and how many are gains."""
    datasets = list(HELD_OUT_SETS)
    shots = list(next(iter(next(iter(gains.values())).values())))
    columns = [f"Δ {d}, {s if s == 'all' else s + '/class'}" for d in datasets for s in shots]
    lines = ["| recipe | " + " | ".join(columns) + " | mean | gains |", "|---" * (len(columns) + 3) + "|"]
    for name, row in gains.items():
        values = [row[d][s] for d in datasets for s in shots]
        wins = sum(v > 0 for v in values)
        cells = " | ".join(f"{v:+.3f}" for v in values)
        lines.append(f"| {name} | {cells} | {sum(values) / len(values):+.3f} | {wins} of {len(values)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selfsup.experiments.recipe_check", description=__doc__)
    parser.add_argument("--out", default="runs/recipes")
    parser.add_argument("--rows", default=",".join(ROWS), help="registered recipes to check")
    parser.add_argument("--candidates", action=argparse.BooleanOptionalAction, default=True, help="also the candidate settings")
    parser.add_argument("--candidate-names", default=None, help="comma-separated: only these candidates (default: all of them)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = [r for r in args.rows.split(",") if r]
    names = list(CANDIDATES) if args.candidates else []
    if args.candidate_names is not None:
        names = [n for n in args.candidate_names.split(",") if n]
        unknown = sorted(set(names) - set(CANDIDATES))
        if unknown:
            parser.error(f"--candidate-names: unknown {', '.join(unknown)}; choose from {', '.join(CANDIDATES)}")
    candidates = {n: candidate_recipe(n) for n in names}
    gains = check(out, rows, candidates, steps=args.steps, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet)
    table = gains_table(gains)
    (out / "recipes.md").write_text(table + "\n")
    (out / "recipes.json").write_text(json.dumps(gains, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["CANDIDATES", "ROWS", "candidate_recipe", "check", "gains_table", "main"]
