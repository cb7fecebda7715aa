"""Importing the generators' heavy libraries in the background, right after the window is shown.

A C extension's first import holds Python's GIL for a while (torch: ~2 s, diffusers: ~5 s on two cores), which
would freeze the window if it happened when someone first presses Generate. Doing it up front, on a worker
thread, with its progress in the status bar, puts that one hiccup where nobody is typing yet.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class Preloader(QObject):
    """Imports modules on its own thread, then (torch loaded) probes the devices. Signals: ``started_module(name)``,
    ``finished(seconds, failures, devices)`` — devices empty when torch is not loaded."""

    started_module = Signal(str)
    finished = Signal(float, object, object)

    def __init__(self, modules: list[str]) -> None:
        super().__init__()
        self.modules = modules

    @Slot()
    def run(self) -> None:
        start = time.perf_counter()
        failures = []
        for name in self.modules:
            if not _installed(name.split(".")[0]):
                continue
            self.started_module.emit(name)
            try:
                importlib.import_module(name)
            except Exception as exc:  # a broken install fails the jobs that need it, with the reason
                log.warning("preloading %s failed: %s", name, exc)
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        devices: list[str] = []
        if "torch" in sys.modules:
            from desktop.engine.devices import available_devices

            devices = list(available_devices())
        self.finished.emit(time.perf_counter() - start, failures, devices)


def start_preload(modules: list[str], parent: QObject) -> tuple[Preloader, QThread]:
    """Start importing ``modules`` (in order, duplicates dropped) on a new thread; returns the worker and thread."""
    worker = Preloader(list(dict.fromkeys(modules)))
    thread = QThread(parent)
    thread.setObjectName("preload")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    thread.start()
    return worker, thread
