"""Training progress on stderr: a bar with ETA on a terminal, plain periodic lines elsewhere.

On a terminal the bar is redrawn in place (carriage return) at most ten times a second. When
stderr is not a terminal (CI, ``nohup``, SLURM logs) carriage returns would pile up in one line,
so a plain line is printed every ``every`` steps and at the last step instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def duration(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Reports steps ``start + 1 .. total`` of a run named ``name``."""

    def __init__(
        self, name: str, total: int, *, start: int = 0, stream: TextIO | None = None, interactive: bool | None = None, every: int | None = None
    ) -> None:
        self.name, self.total, self.start_step = name, total, start
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty()) if interactive is None else interactive
        self.every = every if every is not None else max(1, (total - start) // 20)
        self.began = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = False

    def eta(self, step: int) -> float:
        done = step - self.start_step
        if done <= 0:
            return float("nan")
        return (time.perf_counter() - self.began) / done * (self.total - step)

    def line(self, step: int, loss: float, images_per_s: float) -> str:
        eta = self.eta(step)
        eta_text = duration(eta) if eta == eta else "?"
        return f"{self.name} {step}/{self.total} loss {loss:.4f} {images_per_s:.0f} img/s ETA {eta_text}"

    def update(self, step: int, loss: float, images_per_s: float) -> None:
        if self.interactive:
            now = time.perf_counter()
            if now - self.last_draw < 0.1 and step < self.total:
                return
            self.last_draw = now
            filled = int(20 * step / max(1, self.total))
            bar = "#" * filled + "-" * (20 - filled)
            text = self.line(step, loss, images_per_s).replace(f"{self.name} ", f"{self.name} [{bar}] ", 1)
            print(f"\r{text}\x1b[K", end="", file=self.stream, flush=True)
            self.drawn = True
        elif (step - self.start_step) % self.every == 0 or step == self.total:
            print(self.line(step, loss, images_per_s), file=self.stream, flush=True)

    def close(self, summary: str) -> None:
        """Ends the bar's line and prints ``summary``."""
        if self.drawn:
            print(file=self.stream)
        print(summary, file=self.stream, flush=True)
