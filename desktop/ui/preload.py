"""Importing the generators' heavy libraries in the background, right after the window is shown.

A C extension's first import holds Python's GIL for a while (torch: ~2 s, diffusers: ~5 s on two cores), which
would freeze the window if it happened when someone first presses Generate. Doing it up front, on a task
(:mod:`desktop.ui.tasks`), with its progress in the status bar, puts that one hiccup where nobody is typing yet.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass
from functools import partial

from PySide6.QtCore import QObject

from desktop.ui.tasks import Task, TaskGroup, TaskState

log = logging.getLogger(__name__)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Preloaded:
    """What a preload did: how long it took, the imports that failed (messages), the devices torch sees (empty
    when torch is not loaded)."""

    seconds: float
    failures: list[str]
    devices: list[str]


def import_modules(modules: list[str], state: TaskState) -> Preloaded:
    """Import ``modules`` in order (those not installed are skipped), reporting each name as it starts; then, torch
    loaded, probe the devices. Runs on a task's thread."""
    start = time.perf_counter()
    failures = []
    for name in modules:
        if not _installed(name.split(".")[0]):
            continue
        state.report(name)
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken install fails the jobs that need it, with the reason
            log.warning("preloading %s failed: %s", name, exc, exc_info=True)  # the import chain, for a report
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    devices: list[str] = []
    if "torch" in sys.modules:
        from desktop.engine.devices import available_devices

        devices = list(available_devices())
    return Preloaded(time.perf_counter() - start, failures, devices)


def start_preload(modules: list[str], owner: QObject) -> Task:
    """Start importing ``modules`` (in order, duplicates dropped) on the ``preload`` pool. The task's ``reported``
    signal gives each module's name as its import starts, ``finished`` a :class:`Preloaded`. An import cannot be
    interrupted: a task still running at quit is not waited for (:func:`desktop.ui.tasks.exit_if_tasks_outlive`)."""
    task = TaskGroup("preload", owner=owner).run(partial(import_modules, list(dict.fromkeys(modules))), name="preload")
    assert task is not None  # a new group is never shut down
    return task
