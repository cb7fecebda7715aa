"""Importing one plugin so that it cannot take Studiolo down: journaled, on its own thread, bounded, timed, quiet.

* **Journaled** — the import is recorded in the :class:`~desktop.plugin_journal.LoadJournal` before it starts and
  the mark removed when it returns, so a plugin that ends the process (``os._exit``) or never returns is known at
  the next start.
* **Its own thread** — ``ep.load()`` runs on a daemon thread; whoever waits for it waits at most ``timeout``
  seconds. A Python thread cannot be stopped: a hung import goes on in the background (its mark noted with the
  reason), the caller carries on without the plugin, and the process can still exit (daemon thread).
* **Anything it raises** — ``SystemExit`` and ``KeyboardInterrupt`` included — is a failure with its traceback.
* **Timed** — the seconds the import took (the clock is injectable, for tests).
* **Quiet** — what the import prints to ``sys.stdout`` goes to ``sys.stderr``, so ``--json`` output stays JSON.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from desktop.plugin_journal import LoadJournal, Mark

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class PluginImport:
    """One entry point's import. :meth:`start` it, then :meth:`wait`; afterwards ``plugin`` (the imported object)
    or ``error`` and ``traceback`` are set, and ``seconds``. ``finished`` is False when the wait ended first.
    ``heavy`` lists the modules of ``heavy_modules`` that were first imported during the import."""

    def __init__(self, ep: metadata.EntryPoint, name: str, journal: LoadJournal | None, *,
                 clock: Clock = time.monotonic, heavy_modules: tuple[str, ...] = ()) -> None:
        self.ep, self.name, self.journal, self.clock = ep, name, journal, clock
        self.heavy_modules = heavy_modules
        self.plugin: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.seconds: float | None = None
        self.heavy: list[str] = []
        self.finished = False
        self.abandoned = False
        self._mark: Mark | None = None
        self._started = 0.0
        self._settled = threading.Event()  # set when the import returns, or when the caller lets it go

    def start(self) -> PluginImport:
        self._mark = self.journal.begin(self.name, self.ep.value) if self.journal is not None else None
        self._started = self.clock()
        threading.Thread(target=self._run, name=f"studiolo-import-{self.name}", daemon=True).start()
        return self

    def _run(self) -> None:
        before = {m for m in self.heavy_modules if m in sys.modules}
        try:
            with plugin_output_to_stderr():
                self.plugin = self.ep.load()
        except BaseException as exc:  # noqa: B036 - SystemExit and KeyboardInterrupt from a plugin are failures too
            self.error = f"import failed: {one_line(exc)}"
            self.traceback = traceback.format_exc()
        finally:
            self.seconds = self.clock() - self._started
            self.heavy = sorted(m for m in self.heavy_modules if m in sys.modules and m not in before)
            if self.journal is not None:
                self.journal.end(self._mark)
            self.finished = True
            self._settled.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait for the import to return, at most ``timeout`` seconds (None: as long as it takes). True when it
        returned. On False, ``error`` says it is still importing and the mark is noted with that reason: if the
        process ends before the import does, the next start skips the plugin."""
        try:
            self._settled.wait(timeout)
        except BaseException:  # the user's Ctrl+C while waiting: not the plugin's fault, so no mark is left
            self.let_go()
            raise
        if self.finished:
            return True
        if not self.abandoned:
            self.seconds = self.clock() - self._started
            self.error = f"still importing after {timeout:g} s; skipped (Studiolo does not wait longer for a plugin)"
            if self.journal is not None:
                self._mark = self.journal.note(self._mark, f"its import was still running after {timeout:g} s")
            log.error("plugin %s is still importing after %g s; skipped", self.name, timeout)
        return False

    def let_go(self) -> None:
        """Stop waiting without blaming the plugin (the window closes, the user pressed Ctrl+C): its mark is
        removed, and :meth:`wait` returns at once."""
        self.abandoned = True
        if self.journal is not None:
            self.journal.end(self._mark)
        self._settled.set()


@contextmanager
def plugin_output_to_stderr() -> Iterator[None]:
    """While the calling thread runs plugin code (an import, a hook), what it prints goes to stderr; other threads
    still print to stdout. (``contextlib.redirect_stdout`` would move every thread's output, and a hung import
    would keep it moved.)"""
    thread = threading.current_thread()
    _ROUTER.enter(thread)
    try:
        yield
    finally:
        _ROUTER.leave(thread)


class _StdoutRouter:
    """While plugin code runs, ``sys.stdout`` is a stand-in that sends what those threads write to ``sys.stderr``
    and everything else to the real stdout. Installed with the first and taken out with the last (it stays while a
    hung import lives)."""

    def __init__(self) -> None:
        self.plugin_threads: dict[threading.Thread, int] = {}
        self._guard = threading.Lock()
        self._stand_in: _RoutedStdout | None = None

    def enter(self, thread: threading.Thread) -> None:
        with self._guard:
            self.plugin_threads[thread] = self.plugin_threads.get(thread, 0) + 1
            if self._stand_in is None:
                self._stand_in = _RoutedStdout(sys.stdout, self)
                sys.stdout = self._stand_in

    def leave(self, thread: threading.Thread) -> None:
        with self._guard:
            depth = self.plugin_threads.pop(thread, 1) - 1
            if depth:
                self.plugin_threads[thread] = depth
            if not self.plugin_threads and self._stand_in is not None:
                if sys.stdout is self._stand_in:  # someone else may have replaced it since: theirs stays
                    sys.stdout = self._stand_in.real
                self._stand_in = None


class _RoutedStdout:
    def __init__(self, real: Any, router: _StdoutRouter) -> None:
        self.real, self._router = real, router

    def _target(self) -> Any:
        return sys.stderr if threading.current_thread() in self._router.plugin_threads else self.real

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


_ROUTER = _StdoutRouter()


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (or the type alone)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
