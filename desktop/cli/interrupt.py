"""Ctrl+C while ``studiolo generate`` runs a job.

The first Ctrl+C cancels the job and says so: a generator that checks for cancel stops at its next step and what
it made is kept, marked partial (exit status 130). A generator (or a model load) that never checks keeps running
until the grace period of Settings is over, when its worker process is ended (``cancel_grace_seconds``).

A second Ctrl+C does not wait for that. The generator runs in a worker process (the default): the hard cancel the
grace period would have done happens now (``Engine.cancel(job_id, hard=True)``): the worker process is ended, the
job ends cancelled with the partial output that had arrived, which is saved and printed like any cancelled job's,
and the engine shuts down (status 130). The generator runs in this process (``runs_in_process``, or
``STUDIOLO_IN_PROCESS=1``): nothing can stop it but ending this process, so the process ends at once with status
130, after letting a save under way finish (``Engine.halt``), so no half-written file and no temporary file is left
behind. A third Ctrl+C does not wait for anything (a worker process still running is killed first).

The signal handler only counts and schedules: Python runs it between two bytecodes of the main thread, possibly
inside the engine's own code with one of its locks held, so the cancels run from Qt's event loop
(``QTimer.singleShot(0, …)``), and nothing the handler does takes an engine lock.
"""

from __future__ import annotations

import os
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
    progress bar's line). :meth:`follow` names the job (until then a Ctrl+C cancels nothing)."""

    def __init__(self, engine: Any, before_message: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.before_message = before_message
        self.job_id: str | None = None
        self.process: Any = None  # the job's generator's WorkerProcess; None when it runs in this process
        self.presses = 0
        self._previous: Any = None
        self._wake: Any = None

    def follow(self, job_id: str, generator_id: str) -> None:
        """The job a Ctrl+C cancels, and where its generator runs (which decides what a second Ctrl+C does)."""
        runner = self.engine.runner(generator_id)
        self.process = None if runner.in_process else runner.process
        self.job_id = job_id

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
        # one of its locks held: the cancels run from the event loop, and a halt takes no engine lock.
        from PySide6.QtCore import QTimer

        self.presses += 1
        if self.presses == 1:
            QTimer.singleShot(0, self._cancel)
            return
        if self.presses == 2 and self.process is not None:
            QTimer.singleShot(0, self._hard_cancel)
            return
        if self.presses == 2:
            print("\nStopping now; nothing more is saved.", file=sys.stderr, flush=True)
            self.engine.halt(HALT_TIMEOUT_S)  # a third Ctrl+C interrupts this wait and ends at once
        elif self.process is not None:
            _kill(self.process.pid)  # the worker process would notice this one is gone; sooner is better
        _exit_now()

    def _cancel(self) -> None:
        if self.job_id is not None:  # first: the message means the cancel is already asked for
            self.engine.cancel(self.job_id)
        self.before_message()
        print("Cancelling… (press Ctrl+C again to stop at once)", file=sys.stderr, flush=True)

    def _hard_cancel(self) -> None:
        if self.job_id is not None:
            self.engine.cancel(self.job_id, hard=True)  # the job ends cancelled: the event loop then quits
        self.before_message()
        print("Stopping the generator now… (press Ctrl+C again to quit without saving)", file=sys.stderr,
              flush=True)


class RunCtrlC(CtrlC):
    """Ctrl+C while a run of many jobs goes on (a grid, an interpolation, a batch: anything with ``cancel(hard=)``):
    the first cancels the run (what is done stays), a second stops its jobs at once (``hard``), a third ends the
    process. ``what`` names the run in the messages ("the grid", "the batch")."""

    def __init__(self, engine: Any, what: str, before_message: Callable[[], None] = lambda: None) -> None:
        super().__init__(engine, before_message)
        self.what = what
        self.run: Any = None

    def follow_run(self, run: Any, generator_id: str) -> None:
        """The run a Ctrl+C cancels, and where its generator runs (which decides what a second Ctrl+C does)."""
        runner = self.engine.runner(generator_id)
        self.process = None if runner.in_process else runner.process
        self.run = run

    def _cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()
        self.before_message()
        print(f"Cancelling {self.what}… (press Ctrl+C again to stop at once)", file=sys.stderr, flush=True)

    def _hard_cancel(self) -> None:
        if self.run is not None:
            self.run.cancel(hard=True)
        self.before_message()
        print("Stopping the generator now…", file=sys.stderr, flush=True)


class TrainCtrlC(CtrlC):
    """Ctrl+C while ``studiolo train`` runs: the first pauses the training (a checkpoint after the current step,
    then it stops: ``--resume`` continues it), a second stops it at once (the last checkpoint is kept), a third
    ends the process."""

    def _cancel(self) -> None:
        if self.job_id is not None:
            self.engine.pause(self.job_id)
        self.before_message()
        print("Pausing after this step's checkpoint… (press Ctrl+C again to stop at once; the last checkpoint is "
              "kept)", file=sys.stderr, flush=True)


def _kill(pid: int | None) -> None:
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # already gone
            pass


def _exit_now() -> None:
    """End the process without running another line of Python or Qt (the workers may be stuck in a plugin)."""
    exit_now(EXIT_CANCELLED, flush_logs=False)  # from the signal handler
