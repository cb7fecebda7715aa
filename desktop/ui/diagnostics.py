"""Recent errors and the "copy diagnostics" report: versions, device, plugins, loaded models, last errors."""

from __future__ import annotations

import collections
import platform
import sys
import time
from importlib import metadata
from typing import Any

from desktop import __version__
from desktop.engine.memory import human_bytes, process_rss, total_ram

MAX_ERRORS = 50


class ErrorLog:
    """The last errors and warnings shown to the user (for the status bar and the diagnostics)."""

    def __init__(self) -> None:
        self.entries: collections.deque[str] = collections.deque(maxlen=MAX_ERRORS)

    def add(self, text: str) -> None:
        self.entries.append(f"{time.strftime('%H:%M:%S')} {text.strip()}")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def report(window) -> str:
    """A plain-text report for bug reports (no secrets: the Hugging Face token is never included)."""
    import PySide6

    engine, plugins = window.engine, window.plugins
    torch = sys.modules.get("torch")
    lines = [
        f"Studiolo {__version__}",
        f"Python {platform.python_version()} on {platform.platform()}",
        f"PySide6 {PySide6.__version__}, Qt {PySide6.QtCore.qVersion()}",
        "torch " + (torch.__version__ if torch is not None else f"{_version('torch')} (not loaded yet)"),
        f"diffusers {_version('diffusers')}, transformers {_version('transformers')}, "
        f"huggingface_hub {_version('huggingface_hub')}",
        f"Device setting: {engine.settings.device}; devices found: {window.devices_text()}",
        f"Memory: Studiolo uses {human_bytes(process_rss() or 0)} of {human_bytes(total_ram() or 0)}",
        "",
        "Plugins:",
    ]
    for record in plugins.plugins.values():
        lines.append(f"  {record.name} {record.version or '?'} — {record.status}"
                     + (f": {record.error}" if record.error else "")
                     + (f" [{', '.join(record.generators)}]" if record.generators else ""))
    lines += ["", "Loaded models:"]
    lines += [f"  {m.key.generator_id}: {m.key.model or '(none)'} on {m.key.device}, {human_bytes(m.size)}"
              for m in engine.cache.loaded()] or ["  none"]
    lines += ["", "Worker processes:"]
    lines += _worker_lines(engine) or ["  none started"]
    lines += ["", "Recent errors:"]
    lines += [f"  {entry}" for entry in window.errors.entries] or ["  none"]
    lines += log_lines()
    return "\n".join(lines) + "\n"


def log_lines() -> list[str]:
    """The log files (Studiolo's and its worker processes') and the last library warnings written there."""
    from desktop.logs import log_files, recent_warnings

    lines = ["", "Log files:"] + ([f"  {path}" for path in log_files()] or ["  none yet"])
    lines += ["", "Recent warnings in the logs (libraries' included):"]
    return lines + ([f"  {line}" for line in recent_warnings()] or ["  none"])


def _worker_lines(engine: Any) -> list[str]:
    """One line per generator that has run: where it runs, and its worker process's pid and memory."""
    lines = []
    for gid, pid in sorted(engine.worker_processes().items()):
        if pid is not None:
            lines.append(f"  {gid}: pid {pid}, {human_bytes(process_rss(pid) or 0)}")
        else:
            lines.append(f"  {gid}: " + ("runs in Studiolo's process" if engine.runner(gid).in_process
                                         else "not running (it starts with the next job)"))
    return lines
