"""A contact sheet: titled rows of captioned thumbnails, written as one PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

THUMB = 128
PAD = 8
CAPTION = 14
TITLE_WIDTH = 150


@dataclass
class Row:
    title: str
    cells: list[tuple[npt.NDArray[np.uint8], str]] = field(default_factory=list)

    def add(self, image: npt.NDArray[np.generic], caption: str = "") -> None:
        self.cells.append((to_rgb(image), caption))


def to_rgb(image: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` of uint8, or float in [0, 1], as uint8 RGB."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def mosaic(tiles: npt.NDArray[np.uint8], rows: int, cols: int, gap: int = 4) -> npt.NDArray[np.uint8]:
    """Tiles ``(rows·cols, P, P, C)`` laid out row-major with white gaps."""
    p = tiles.shape[1]
    out = np.full((rows * p + (rows - 1) * gap, cols * p + (cols - 1) * gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, q = divmod(k, cols)
        out[r * (p + gap) : r * (p + gap) + p, q * (p + gap) : q * (p + gap) + p] = to_rgb(tile)
    return out


def draw_boxes(image: npt.NDArray[np.uint8], boxes: list[tuple[int, int, int, int, str]]) -> npt.NDArray[np.uint8]:
    """Outlines ``(y, x, h, w, colour)`` boxes on a copy of ``image``."""
    canvas = Image.fromarray(to_rgb(image))
    pen = ImageDraw.Draw(canvas)
    for y, x, h, w, colour in boxes:
        pen.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=3)
    return np.asarray(canvas)


def render(rows: list[Row], path: Path) -> Path:
    """Writes the rows as one PNG; each thumbnail fits in a ``THUMB``-px square."""
    width = TITLE_WIDTH + max(len(r.cells) for r in rows) * (THUMB + PAD) + PAD
    height = len(rows) * (THUMB + CAPTION + 2 * PAD) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        top = PAD + i * (THUMB + CAPTION + 2 * PAD)
        pen.text((PAD, top + THUMB // 2 - 6), row.title, fill="black")
        for j, (image, caption) in enumerate(row.cells):
            thumb = Image.fromarray(image)
            if max(thumb.size) < THUMB:
                scale = THUMB // max(thumb.size)
                thumb = thumb.resize((thumb.width * scale, thumb.height * scale), Image.Resampling.NEAREST)
            thumb.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
            left = TITLE_WIDTH + j * (THUMB + PAD)
            sheet.paste(thumb, (left + (THUMB - thumb.width) // 2, top + (THUMB - thumb.height) // 2))
            pen.text((left, top + THUMB + 2), caption[:22], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(path)
    return path
