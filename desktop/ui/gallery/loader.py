"""``GalleryLoader``: runs the gallery's blocking work (library queries and writes, file reads) off the GUI thread.

The GUI thread hands it a function; a :class:`QRunnable` on the loader's own single-thread :class:`QThreadPool`
calls it, and the result (or the exception) comes back through a queued signal to the callback given with it.
One thread means the work runs in the order it was submitted — a write, then a query, sees the write — and the
GUI thread never waits for any of it, except in :meth:`GalleryLoader.shutdown` when the window closes (a pool
rather than a bare QThread: the piece running finishes and its result is dropped; nothing is aborted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

__all__ = ["GalleryLoader"]

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class _Relay(QObject):
    """Carries results from the pool thread to the loader (a queued connection). Parentless and held by every
    task, so a result emitted after the loader is gone goes nowhere instead of into a deleted object."""

    finished = Signal(int, object, object)  # ticket, result, exception (None when it worked)


class _Task(QRunnable):
    def __init__(self, relay: _Relay, ticket: int, work: Callable[[], Any]) -> None:
        super().__init__()
        self._relay, self._ticket, self._work = relay, ticket, work

    def run(self) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = self._work()
        except Exception as exc:  # noqa: BLE001 — reported to whoever asked; the pool thread lives on
            error = exc
        try:
            self._relay.finished.emit(self._ticket, result, error)
        except RuntimeError:  # the application is closing
            pass


class GalleryLoader(QObject):
    """Submit blocking work with :meth:`submit`; its callbacks run later on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tickets = 0
        self._callbacks: dict[int, tuple[Done | None, Failed | None]] = {}
        self._stopped = False
        self._pool = QThreadPool(self)
        self._pool.setObjectName("studiolo-gallery-loader")
        self._pool.setMaxThreadCount(1)
        self._relay = _Relay()
        self._relay.finished.connect(self._on_finished)

    def submit(self, work: Callable[[], Any], on_done: Done | None = None, on_error: Failed | None = None) -> int:
        """Run ``work()`` on the loader thread; then ``on_done(result)`` or ``on_error(exception)`` here.

        Returns the ticket of this piece of work. After :meth:`shutdown` nothing runs and -1 is returned.
        """
        if self._stopped:
            return -1
        self._tickets += 1
        ticket = self._tickets
        self._callbacks[ticket] = (on_done, on_error)
        self._pool.start(_Task(self._relay, ticket, work))
        return ticket

    def pending(self) -> int:
        """How many submitted pieces of work have not reported back yet."""
        return len(self._callbacks)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Take no more work, drop what has not started and wait (at most ``timeout_ms``) for the piece running,
        its result ignored. True when nothing is left running.

        (The pool must not be destroyed with work running: its destructor waits, possibly holding the GIL, for
        work that needs the GIL. ``waitForDone`` called from Python releases it.)
        """
        if not self._stopped:
            self._stopped = True
            self._pool.clear()
            self._callbacks.clear()
            try:
                self._relay.finished.disconnect(self._on_finished)
            except (RuntimeError, TypeError):
                pass
        return self._pool.waitForDone(timeout_ms)

    @Slot(int, object, object)
    def _on_finished(self, ticket: int, result: Any, error: BaseException | None) -> None:
        if ticket not in self._callbacks:
            return
        on_done, on_error = self._callbacks.pop(ticket)
        if error is None:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            log.warning("gallery work failed: %s", error, exc_info=error)
