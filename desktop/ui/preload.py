"""Importing the generators' heavy libraries in the background, right after the window is shown.

A generator that runs in a worker process (the default) has its worker process started and its libraries imported
there (:meth:`desktop.engine.engine.Engine.preload`): the window's process never imports torch, diffusers or
transformers, and the first job of the generator finds a warm process. The few generators that run in this
process (``runs_in_process``, or an engine made to run everything here) have their ``preload_modules`` imported
here instead: a C extension's first import holds Python's GIL for a while, which would freeze the window if it
happened when someone first presses Generate. Either way it runs on a task (:mod:`desktop.ui.tasks`), with its
progress in the status bar.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from PySide6.QtCore import QObject

from desktop.api import Generator, StudioloError
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


@dataclass(frozen=True)
class WorkerLibraries:
    """A generator whose libraries are imported in its worker process: its id, its name (shown while it loads)
    and its ``preload_modules``."""

    generator_id: str
    name: str
    modules: tuple[str, ...]


def plan_preload(engine: Any, generators: Mapping[str, Generator]) -> tuple[list[str], list[WorkerLibraries]]:
    """Split the ``generators``' ``preload_modules`` between this process (those of generators the engine runs
    here, duplicates dropped) and their worker processes (one :class:`WorkerLibraries` each). Cheap: call it on the
    GUI thread (no process starts)."""
    here: list[str] = []
    workers: list[WorkerLibraries] = []
    for generator_id, generator in generators.items():
        if not generator.preload_modules:
            continue
        if engine.runner(generator_id).in_process:
            here.extend(generator.preload_modules)
        else:
            workers.append(WorkerLibraries(generator_id, generator.name or generator_id,
                                           tuple(generator.preload_modules)))
    return list(dict.fromkeys(here)), workers


def preload(engine: Any, modules: list[str], workers: list[WorkerLibraries], state: TaskState) -> Preloaded:
    """Import ``modules`` here (:func:`import_modules`), then start each of ``workers``' processes and import their
    modules there, one after the other, reporting each generator's name as it starts. A failure (an import, or a
    process that would not start) is one message of the result; the devices are those seen here or in any worker
    process. Stops between two generators once the task is cancelled (the window is closing). Runs on a task's
    thread."""
    start = time.perf_counter()
    done = import_modules(modules, state) if modules else Preloaded(0.0, [], [])
    failures, devices = list(done.failures), list(done.devices)
    for worker in workers:
        if state.cancelled:
            break
        state.report(worker.name)
        try:
            result = engine.preload(worker.generator_id, list(worker.modules))
            if state.cancelled:  # closed while it started: the engine may have ended its processes before this one
                engine.runner(worker.generator_id).stop()
        except Exception as exc:  # the generator's jobs will say the same, each with the reason
            log.warning("preloading %s in its worker process failed: %s", worker.generator_id, exc,
                        exc_info=not isinstance(exc, StudioloError))
            reason = str(exc) if isinstance(exc, StudioloError) else f"{type(exc).__name__}: {exc}"
            failures.append(f"{worker.name}: {reason}")
            continue
        failures += [f"{worker.name}: {failure}" for failure in result.get("failures", [])]
        devices += [d for d in result.get("devices", []) if d not in devices]
    return Preloaded(time.perf_counter() - start, failures, devices)


def start_preload(modules: list[str], owner: QObject, *, engine: Any = None,
                  workers: list[WorkerLibraries] | tuple[()] = ()) -> Task:
    """Start importing ``modules`` here (in order, duplicates dropped), then ``workers``' libraries in their
    processes through ``engine`` (:func:`preload`), on the ``preload`` pool. The task's ``reported`` signal gives
    each module's or generator's name as its import starts, ``finished`` a :class:`Preloaded`. An import here cannot
    be interrupted: a task still running at quit is not waited for (:func:`desktop.ui.tasks.exit_if_tasks_outlive`);
    cancel the task before the engine shuts down, so that it starts no process after."""
    task = TaskGroup("preload", owner=owner).run(
        partial(preload, engine, list(dict.fromkeys(modules)), list(workers)), name="preload")
    assert task is not None  # a new group is never shut down
    return task
