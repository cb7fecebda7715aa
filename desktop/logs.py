"""Studiolo's log: a rotating file in the data folder. Tracebacks go there; people see short messages.

Libraries' chatter goes to the log too, never onto the user's terminal unless ``--verbose`` (``STUDIOLO_VERBOSE=1``,
which worker processes inherit): in Studiolo's process, Python warnings and every logger without a handler of its own
(records reach the root logger) are written to ``studiolo.log``; a worker process (:func:`setup_worker_logging`)
sends all it writes on stdout and stderr — warnings, library loggers, progress bars, native libraries' messages — to
a file of its own, ``worker-<generator id>.log`` in the same folder. A file per worker, rather than records forwarded
to this process or one file shared by all: it catches what bypasses ``logging`` (tqdm bars, C code writing to file
descriptor 2) and needs no cross-process rotation.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

from desktop import paths

VERBOSE_ENV = "STUDIOLO_VERBOSE"
"""Set to 1 (by ``--verbose``) to show libraries' warnings and progress on the terminal, in worker processes too."""
MAX_LOG_BYTES = 2_000_000
LIBRARY_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_handler: logging.Handler | None = None


def log_path() -> Path:
    return paths.data_dir() / "logs" / "studiolo.log"


def worker_log_path(generator_id: str) -> Path:
    """The log file of the worker process of ``generator_id``, next to Studiolo's."""
    return log_path().with_name(f"worker-{re.sub(r'[^A-Za-z0-9._-]', '_', generator_id)}.log")


def log_files() -> list[Path]:
    """Studiolo's log files that exist: its own, then the worker processes' (for the diagnostics)."""
    folder = log_path().parent
    return [p for p in [log_path(), *sorted(folder.glob("worker-*.log"))] if p.is_file()]


def recent_warnings(limit: int = 10, tail_bytes: int = 32_768) -> list[str]:
    """The last ``limit`` lines naming a warning in each log file's last ``tail_bytes`` (libraries' warnings
    included), each prefixed with its file's name: for the diagnostics."""
    found: list[str] = []
    for path in log_files():
        try:
            with open(path, "rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - tail_bytes))
                text = file.read().decode("utf-8", "replace")
        except OSError:
            continue
        found += [f"{path.name}: {line.strip()}" for line in text.splitlines() if "warning" in line.lower()]
    return found[-limit:]


def is_verbose() -> bool:
    """Whether libraries' output goes to the terminal (``--verbose``, or ``STUDIOLO_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def setup_logging(level: int = logging.INFO, verbose: bool | None = None) -> Path | None:
    """Send Studiolo's log records to the log file (once per process), and libraries' warnings with them (on the
    terminal as well when ``verbose``, by default :func:`is_verbose`). Returns the file's path, or None when it
    cannot be written (then records go nowhere rather than onto the user's terminal)."""
    global _handler
    root = logging.getLogger("desktop")
    if _handler is not None:
        return log_path()
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _handler = _QuietFileHandler(path, maxBytes=MAX_LOG_BYTES, backupCount=3, encoding="utf-8")
    except OSError:
        _handler = logging.NullHandler()
        path = None
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(_handler)
    root.setLevel(level)
    root.propagate = False
    _route_library_records(_handler, is_verbose() if verbose is None else verbose)
    return path


def _route_library_records(handler: logging.Handler, verbose: bool) -> None:
    """Python warnings and the records of loggers without a handler of their own (they reach the root logger) go
    to ``handler`` — not to logging's last resort, stderr — and also to stderr when ``verbose``."""
    logging.captureWarnings(True)
    top = logging.getLogger()
    top.addHandler(handler)
    if verbose:
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setFormatter(logging.Formatter(LIBRARY_FORMAT))
        top.addHandler(terminal)


def setup_worker_logging(generator_id: str) -> Path | None:
    """A worker process's logging: records and Python warnings go to its stderr, and — unless verbose — its stdout
    and stderr (file descriptors 1 and 2 and Python's streams) go to :func:`worker_log_path`. Returns that path, or
    None when verbose or when the file cannot be written (then the output is dropped, never shown)."""
    path = None if is_verbose() else _redirect_output(worker_log_path(generator_id))
    logging.captureWarnings(True)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s [worker {generator_id}] %(name)s: %(message)s")
    return path


def _redirect_output(path: Path) -> Path | None:
    """Point file descriptors 1 and 2 at ``path`` (appended to; rotated once past MAX_LOG_BYTES), or at the null
    device when it cannot be opened; Python's stdout and stderr write there and never raise (a full disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size > MAX_LOG_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        fd, path = os.open(os.devnull, os.O_WRONLY), None
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = sys.stderr = _LogStream(2)
    return path


class _LogStream(io.TextIOBase):
    """Python's stdout and stderr in a worker process: text to a file descriptor, a write that fails (a full disk)
    dropped — a library's progress bar must not fail the job."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._out = open(fd, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)

    @property
    def encoding(self) -> str:
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        try:
            return self._out.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._out.flush()
        except (OSError, ValueError):
            pass


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """The log file's handler: a record that cannot be written (a full disk) is dropped, never printed with a
    traceback on the user's terminal (logging's default)."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass
