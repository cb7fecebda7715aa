"""Ctrl+C while ``studiolo generate`` runs a job.

The first Ctrl+C cancels the job and says so: a generator that checks for cancel stops at its next step and what
it made is kept, marked partial (exit status 130). A generator (or a model load) that never checks keeps running;
a second Ctrl+C then ends the process at once with status 130, after letting a save under way finish
(``Engine.halt``), so no half-written file and no temporary file is left behind. A third Ctrl+C does not wait even
for that.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from desktop.cli.generate_cmd import EXIT_CANCELLED
from desktop.exiting import exit_now

HALT_TIMEOUT_S = 10.0


class CtrlC:
    """Installs the handler for the ``with`` block (restoring the previous one after), with a Qt timer that lets
    Python run it while Qt's event loop waits. ``before_message`` runs before anything is printed (ending a
    progress bar's line)."""

    def __init__(self, engine: Any, before_message: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.before_message = before_message
        self.job_id: str | None = None
        self.presses = 0
        self._previous: Any = None
        self._wake: Any = None

    def __enter__(self) -> CtrlC:
        from PySide6.QtCore import QTimer

        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._wake = QTimer()
        self._wake.timeout.connect(lambda: None)  # Python code runs, so a pending signal handler runs too
        self._wake.start(100)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._wake.stop()
        signal.signal(signal.SIGINT, self._previous)

    @property
    def pressed(self) -> bool:
        return self.presses > 0

    def _on_sigint(self, *_args: object) -> None:
        # Python runs this between two bytecodes of the main thread, possibly inside the engine's own code with
        # one of its locks held: the cancel itself runs from the event loop, and a halt takes no engine lock.
        from PySide6.QtCore import QTimer

        self.presses += 1
        if self.presses == 1:
            QTimer.singleShot(0, self._cancel)
            return
        if self.presses == 2:
            print("\nStopping now; nothing more is saved.", file=sys.stderr, flush=True)
            self.engine.halt(HALT_TIMEOUT_S)  # a third Ctrl+C interrupts this wait and ends at once
        _exit_now()

    def _cancel(self) -> None:
        if self.job_id is not None:  # first: the message means the cancel is already asked for
            self.engine.cancel(self.job_id)
        self.before_message()
        print("Cancelling… (press Ctrl+C again to stop at once)", file=sys.stderr, flush=True)


def _exit_now() -> None:
    """End the process without running another line of Python or Qt (the workers may be stuck in a plugin)."""
    exit_now(EXIT_CANCELLED, flush_logs=False)  # from the signal handler
