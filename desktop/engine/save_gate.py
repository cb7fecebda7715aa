"""The gate every save of an output goes through, so that a process stopping at once leaves no half-written file.

Workers save inside :meth:`SaveGate.saving`. :meth:`SaveGate.close` (the CLI's second Ctrl+C, through
``Engine.halt``) lets no new save start and waits for the ones under way to finish: their files are then whole (and
indexed), and the process may exit without running another line of the workers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from desktop.api import JobCancelled


class SaveGate:
    """Counts the saves under way; once closed, a save that would start raises :class:`JobCancelled` instead."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = 0
        self._closed = False

    @contextmanager
    def saving(self) -> Iterator[None]:
        """Hold the gate for one save (the file and its library row)."""
        with self._cond:
            if self._closed:
                raise JobCancelled(message="Studiolo is stopping: the output was not saved.")
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Let no save start from now on, and wait at most ``timeout`` seconds for those under way. Returns
        whether none is still running."""
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    @property
    def closed(self) -> bool:
        return self._closed
