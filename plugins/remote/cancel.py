"""A cancel that lands at once, even while a job waits on a silent server.

A remote job spends its time blocked in a read: the server is thinking (a long prompt, an image being made). The
generator checks ``ctx.cancelled`` at every piece of the answer, but a piece may be long in coming. While the job
talks to the server, :class:`CancelWatch` looks at ``ctx.cancelled`` from a second thread and, the moment it is
set, aborts the job's connections (:meth:`plugins.remote.client.RemoteClient.abort`): the blocked read returns, the
generator ends the job cancelled with what it has, and the server sees the client go (a Studiolo server cancels its
job then; llama.cpp stops writing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["CancelWatch"]

POLL_S = 0.05
"""How often the watcher looks at the job's cancel flag (the API offers a flag, not a callback)."""


class CancelWatch:
    """``with CancelWatch(lambda: ctx.cancelled, client.abort):`` — call ``abort`` once, on a helper thread, as
    soon as ``cancelled()`` is true while the block runs. ``fired`` says whether it did."""

    def __init__(self, cancelled: Callable[[], bool], abort: Callable[[], None]) -> None:
        self._cancelled = cancelled
        self._abort = abort
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="remote-cancel-watch", daemon=True)
        self.fired = False

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            if self._cancelled():
                self.fired = True
                self._abort()
                return

    def __enter__(self) -> CancelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
