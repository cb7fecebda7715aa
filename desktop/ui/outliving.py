"""Work threads that outlive the widget that started them.

A ``QThread`` destroyed while it runs aborts the whole process ("QThread: Destroyed while thread is still
running"). Work that cannot be interrupted (a library's import, one download step) may still be running when its
window or page closes: :func:`keep_until_finished` takes the thread (and its worker) away from its parent and keeps
them referenced until the thread ends. When the event loop has ended and such threads still run,
:func:`exit_if_threads_outlive` ends the process without tearing Qt down around them.
"""

from __future__ import annotations

import logging
import os
import sys

from PySide6.QtCore import QThread

log = logging.getLogger(__name__)

_KEPT: list[tuple[QThread, tuple[object, ...]]] = []


def keep_until_finished(thread: QThread, *objects: object) -> None:
    """Detach ``thread`` from its parent and keep it (and ``objects``, e.g. its worker) alive until it finishes."""
    thread.setParent(None)
    entry = (thread, objects)
    _KEPT.append(entry)
    thread.finished.connect(lambda: _KEPT.remove(entry) if entry in _KEPT else None)


def still_running() -> list[str]:
    """The names of the kept threads that have not finished yet."""
    return [thread.objectName() or "worker" for thread, _ in _KEPT if thread.isRunning()]


def exit_if_threads_outlive(code: int) -> None:
    """After the event loop: if kept threads still run, flush the logs and streams and end the process with
    ``code`` at once (their work is an import or a step whose result nobody waits for any more)."""
    running = still_running()
    if not running:
        return
    log.info("quitting while %s still runs; it is not waited for", ", ".join(running))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
