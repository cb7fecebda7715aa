"""Studiolo's log: a rotating file in the data folder. Tracebacks go there; people see short messages."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from desktop import paths

_handler: logging.Handler | None = None


def log_path() -> Path:
    return paths.data_dir() / "logs" / "studiolo.log"


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Send Studiolo's log records to the log file (once per process). Returns its path, or None when the file
    cannot be written (then records go nowhere rather than onto the user's terminal)."""
    global _handler
    root = logging.getLogger("desktop")
    if _handler is not None:
        return log_path()
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _handler = _QuietFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        _handler = logging.NullHandler()
        path = None
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(_handler)
    root.setLevel(level)
    root.propagate = False
    return path


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """The log file's handler: a record that cannot be written (a full disk) is dropped, never printed with a
    traceback on the user's terminal (logging's default)."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass
