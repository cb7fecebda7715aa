"""A progress bar on stderr: redrawn in place on a terminal, a line every 10% otherwise (logs, CI)."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_decile = -1
        self._drawn = False

    def update(self, done: int, total: int | None, message: str = "") -> None:
        if total:
            fraction = max(0.0, min(1.0, done / total))
            bar = "#" * int(fraction * self.width)
            text = f"{self.label} [{bar:<{self.width}}] {done}/{total}"
            decile = int(fraction * 10)
        else:
            text, decile = f"{self.label} {done}", self._last_decile + 1
        if message:
            text += f"  {message}"
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._drawn = True
        elif decile != self._last_decile:
            self.stream.write(text + "\n")
        self._last_decile = decile
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = False
