"""A line chart of accuracy vs labels per class, drawn with Pillow (no plotting dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def accuracy_plot(
    series: dict[str, dict[str, float]], path: Path, title: str = "held-out linear probe", errors: dict[str, dict[str, float]] | None = None,
) -> Path:
    """``series[name][shot] = accuracy`` for shots like "1", "5", "10", "all" (evenly spaced), with
    ``errors[name][shot]`` (the std over seeds) drawn as ± bars where given."""
    width, height, left, right, top, bottom = 640, 420, 60, 170, 40, 50
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    shots = list(next(iter(series.values())).keys())
    spread = errors or {}
    values = [v + sign * spread.get(n, {}).get(k, 0.0) for n, s in series.items() for k, v in s.items() for sign in (-1, 1)]
    lo = max(0.0, min(values) - 0.05)
    hi = min(1.0, max(values) + 0.02)
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / max(1, len(shots) - 1))
        y = top + plot_h * (1 - (v - lo) / max(hi - lo, 1e-9))
        return x, y

    pen.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        _, y = xy(0, v)
        pen.line([left - 4, y, left, y], fill="black")
        pen.text((8, y - 6), f"{v:.2f}", fill="black")
    for i, shot in enumerate(shots):
        x, _ = xy(i, lo)
        pen.text((x - 8, top + plot_h + 8), shot, fill="black")
    pen.text((left + plot_w // 2 - 50, height - 22), "labels per class", fill="black")
    pen.text((8, top - 20), "held-out accuracy", fill="black")
    pen.text((left, 4), title, fill="black")
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        coords = [xy(i, points[s]) for i, s in enumerate(shots)]
        pen.line(coords, fill=colour, width=3)
        for (x, y), shot in zip(coords, shots):
            pen.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
            std = spread.get(name, {}).get(shot, 0.0)
            if std > 0:
                _, y_lo = xy(0, points[shot] - std)
                _, y_hi = xy(0, points[shot] + std)
                pen.line([x, y_lo, x, y_hi], fill=colour, width=1)
                pen.line([x - 5, y_lo, x + 5, y_lo], fill=colour, width=1)
                pen.line([x - 5, y_hi, x + 5, y_hi], fill=colour, width=1)
        pen.line([width - right + 15, top + 20 * n + 8, width - right + 40, top + 20 * n + 8], fill=colour, width=3)
        pen.text((width - right + 45, top + 20 * n + 2), name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def probe_plot(rows: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """:func:`accuracy_plot` of probe tables (:func:`selfsup.eval.protocol.probe_table`): each
    row's mean linear-probe accuracy per labels per class, its std over label seeds as error bars."""
    series = {name: {shot: cell["mean"] for shot, cell in table["linear"].items()} for name, table in rows.items()}
    errors = {name: {shot: cell["std"] for shot, cell in table["linear"].items()} for name, table in rows.items()}
    return accuracy_plot(series, path, title=title, errors=errors)
