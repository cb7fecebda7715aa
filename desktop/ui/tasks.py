"""The one way the UI runs blocking work (disk scans, library queries, imports, pip, downloads) off the GUI thread.

A view hands a function to a :class:`TaskGroup` (its tasks in one named pool, optionally tied to an owner object)::

    self.tasks = TaskGroup("library", owner=self)
    self.tasks.run(lambda state: library.query(...), on_done=self.show_rows, on_failed=self.show_error)

The function runs on a pool thread and gets a :class:`TaskState`: ``state.cancelled`` (cooperative cancellation,
also ``state.cancel_event`` for code that takes a :class:`threading.Event`), ``state.progress(*values)`` and
``state.report(value)`` (partial results or a stream, such as pip's log lines). Everything comes back on the GUI
thread, as the :class:`Task`'s signals and as the callbacks given to :meth:`TaskGroup.run`: ``started``,
``progressed(values)``, ``reported(value)``, then exactly one of ``finished(result)``, ``failed(error)`` and
``cancelled()`` (the function raised :class:`Cancelled`, or the task was cancelled before it started), then ``ended``.

Lifetimes, the cause of most crashes of the old hand-rolled helpers, are handled here only:

* A pool thread never holds a Qt object: it holds a task's number; the results cross through one relay object made
  on the GUI thread and kept for the whole process; the function and its result are let go on the GUI thread.
* Every task is referenced by this module until it has ended, whatever happens to the view that asked for it.
* A group whose owner is deleted (or that is shut down) drops its tasks' callbacks: stale results never reach a
  deleted object. :meth:`TaskGroup.shutdown` also cancels, drops what has not started and waits, with a bound.
* At the application's exit, :func:`exit_if_tasks_outlive` ends the process without tearing Qt down around work
  still running (an import or a download step nobody waits for any more).

Pools (:data:`POOL_THREADS`) are named and shared: ``library`` has one thread, so a write then a query sees the write;
``thumbnails`` runs the newest request first (``priority``); ``engine`` is Qt's global pool, which the engine waits
for when it shuts down.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from desktop.exiting import exit_now

log = logging.getLogger(__name__)

__all__ = ["Cancelled", "POOL_THREADS", "Task", "TaskGroup", "TaskState", "exit_if_tasks_outlive", "pool",
           "running_tasks"]

POOL_THREADS: dict[str, int] = {
    "library": 1,  # gallery reads and writes, in the order they were asked for
    "reconcile": 1,  # tidying the library at start-up
    "plugins": 1,  # third-party plugin imports, one after the other
    "preload": 1,  # the generators' heavy libraries
    "thumbnails": 2,
    "scans": 2,  # model lists of the generator pages
    "models": 8,  # the Models page: downloads (hours), imports, removals, scans
    "pip": 4,  # plugin installs: each runs pip as a subprocess
    "first-run": 1,
}
"""The named pools and their thread counts; ``engine`` (Qt's global pool) is not listed."""


class Cancelled(Exception):  # reads as what happened, like JobCancelled
    """Raised by a task's function (see :meth:`TaskState.raise_if_cancelled`) to end as ``cancelled``."""


_pools: dict[str, QThreadPool] = {}


def pool(name: str, threads: int | None = None) -> QThreadPool:
    """The pool called ``name``, made on first use with ``threads`` threads (default: :data:`POOL_THREADS`, else 2;
    later calls may only raise the count). Pools live as long as the process: a pool destroyed with work running
    waits for it, which can deadlock on the GIL."""
    if name == "engine":
        return QThreadPool.globalInstance()
    found = _pools.get(name)
    if found is None:
        found = _pools[name] = QThreadPool()
        found.setObjectName(f"studiolo-{name}")
        found.setMaxThreadCount(max(1, threads or POOL_THREADS.get(name, 2)))
    elif threads is not None and threads > found.maxThreadCount():
        found.setMaxThreadCount(threads)
    return found


class TaskState:
    """What a task's function gets (on its pool thread): cancellation and ways to send things to the GUI thread."""

    def __init__(self, number: int) -> None:
        self._number = number
        self.cancel_event = threading.Event()

    @property
    def cancelled(self) -> bool:
        """Whether the task was asked to stop (the function decides how soon)."""
        return self.cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the task was asked to stop: the task then ends ``cancelled``."""
        if self.cancel_event.is_set():
            raise Cancelled()

    def progress(self, *values: Any) -> None:
        """Send ``values`` to the task's ``progressed`` signal and ``on_progress(*values)`` callback."""
        _emit(_relay().progressed, self._number, values)

    def report(self, value: Any) -> None:
        """Send a partial result (a log line, the module being imported…) to ``reported`` and ``on_report``."""
        _emit(_relay().reported, self._number, value)


def _emit(signal: Any, number: int, value: Any) -> None:
    try:
        signal.emit(number, value)
    except RuntimeError:  # the relay is gone: the process is ending
        pass


@dataclass
class _Job:
    """A task's parts that a pool thread reads (through :data:`_JOBS`, never through a reference it keeps)."""

    function: Callable[[TaskState], Any] | None
    state: TaskState
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    dropped: bool = False  # cancelled or shut down before it started: the pool thread skips it
    outcome: tuple[str, Any] = ("cancelled", None)
    done: threading.Event = field(default_factory=threading.Event)


_JOBS: dict[int, _Job] = {}
_RUNNING: dict[int, Task] = {}  # every task until it has ended: the keep-alive
_numbers = itertools.count(1)


class _Runnable(QRunnable):
    """Runs one job on a pool thread. Holds only the job's number."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number

    def run(self) -> None:
        number = self.number
        job = _JOBS.get(number)
        if job is None:
            return
        with job.lock:
            skip = job.dropped
            job.started = not skip
        if not skip:
            relay = _relay()
            _emit(relay.started, number, None)
            try:
                assert job.function is not None
                job.outcome = ("finished", job.function(job.state))
            except Cancelled:
                job.outcome = ("cancelled", None)
            except BaseException as exc:  # handed to the GUI thread, which reports it
                job.outcome = ("failed", exc)
        done = job.done
        del job  # the function and its result are let go on the GUI thread, with the task
        _emit(_relay().ended, number, None)
        done.set()


class _Relay(QObject):
    """Carries every task's news from the pool threads to the GUI thread (queued: it lives on the GUI thread).
    Made once and kept for the whole process."""

    started = Signal(int, object)
    progressed = Signal(int, object)
    reported = Signal(int, object)
    ended = Signal(int, object)

    @Slot(int, object)
    def on_started(self, number: int, _value: object) -> None:
        task = _RUNNING.get(number)
        if task is not None:
            task._deliver("started", None)

    @Slot(int, object)
    def on_progressed(self, number: int, values: object) -> None:
        task = _RUNNING.get(number)
        if task is not None:
            task._deliver("progressed", values)

    @Slot(int, object)
    def on_reported(self, number: int, value: object) -> None:
        task = _RUNNING.get(number)
        if task is not None:
            task._deliver("reported", value)

    @Slot(int, object)
    def on_ended(self, number: int, _value: object) -> None:
        task = _RUNNING.pop(number, None)
        job = _JOBS.pop(number, None)
        if task is not None and job is not None:
            task._end(job)


_the_relay: _Relay | None = None


def _alive(ref: weakref.ref[QObject]) -> bool:
    owner = ref()
    return owner is not None and shiboken6.isValid(owner)


def _relay() -> _Relay:
    global _the_relay
    if _the_relay is None:
        _the_relay = _Relay()
        for name in ("started", "progressed", "reported", "ended"):
            getattr(_the_relay, name).connect(getattr(_the_relay, f"on_{name}"))
    return _the_relay


class Task(QObject):
    """One piece of work, as the GUI thread sees it. Its signals are emitted on the GUI thread (see the module doc);
    :meth:`cancel` asks it to stop."""

    started = Signal()
    progressed = Signal(object)  # the tuple given to TaskState.progress
    reported = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    ended = Signal()

    def __init__(self, number: int, job: _Job, name: str, callbacks: dict[str, Callable[..., Any] | None],
                 group: TaskGroup, owner: QObject | None = None) -> None:
        super().__init__()
        self.number, self.name = number, name
        self._owner = weakref.ref(owner) if owner is not None else None
        self.state = job.state
        self._job: _Job | None = job
        self._callbacks = callbacks
        self._group: TaskGroup | None = group
        self.detached = False
        self.is_ended = False

    def cancel(self) -> None:
        """Ask the function to stop (``state.cancelled``); a task that has not started yet never starts."""
        self.state.cancel_event.set()
        job = self._job
        if job is not None:
            with job.lock:
                if not job.started:
                    job.dropped = True

    def is_cancelling(self) -> bool:
        return self.state.cancelled

    def detach(self) -> None:
        """Deliver nothing more from this task (its owner is gone or shut down); it still runs to its end."""
        self.detached = True
        self._callbacks = {}

    def wait(self, timeout_ms: int) -> bool:
        """Block (at most ``timeout_ms``) until the function has returned. True when it has, or will never start."""
        job = self._job
        if job is None:
            return True
        with job.lock:
            if job.dropped and not job.started:
                return True  # its pool thread only skips it
        return job.done.wait(max(0, timeout_ms) / 1000)

    def owner_alive(self) -> bool:
        """Whether whoever asked for the task (its own owner, else its group's) still exists."""
        if self._owner is not None:
            return _alive(self._owner)
        group = self._group
        return group is None or group.owner_alive()

    def _deliver(self, kind: str, value: Any) -> None:
        if self.detached:
            return
        if not self.owner_alive():
            self.detach()
            return
        callback = self._callbacks.get(kind)
        if kind == "started":
            self.started.emit()
            if callback is not None:
                callback()
        elif kind == "progressed":
            self.progressed.emit(value)
            if callback is not None:
                callback(*value)
        elif kind == "reported":
            self.reported.emit(value)
            if callback is not None:
                callback(value)

    def _end(self, job: _Job) -> None:
        self._job = None
        alive = self.owner_alive()
        group, self._group = self._group, None
        if group is not None:
            group._forget(self)
        self.is_ended = True
        kind, value = job.outcome
        job.function = None  # on the GUI thread: whatever the function held goes here
        if self.detached or not alive:
            self.detach()
            return
        callbacks, self._callbacks = self._callbacks, {}
        if kind == "failed" and callbacks.get("failed") is None:
            log.warning("task %s failed: %s", self.name, value, exc_info=value)
        if kind == "finished":
            self.finished.emit(value)
        elif kind == "failed":
            self.failed.emit(value)
        else:
            self.cancelled.emit()
        callback = callbacks.get(kind)
        if callback is not None and kind == "cancelled":
            callback()
        elif callback is not None:
            callback(value)
        self.ended.emit()


class TaskGroup:
    """The tasks a view (``owner``) runs in one named pool: run them, count them, cancel them, shut them down.

    Callbacks run on the GUI thread, and only while the owner exists and the group has not been shut down.
    """

    def __init__(self, pool_name: str, owner: QObject | None = None, *, threads: int | None = None) -> None:
        self.pool_name = pool_name
        self._owner = weakref.ref(owner) if owner is not None else None  # the group never keeps its owner alive
        self._threads = threads
        self._tasks: dict[int, Task] = {}
        self.stopped = False

    def owner_alive(self) -> bool:
        """Whether the owner (if any) still exists, its Qt object included."""
        return self._owner is None or _alive(self._owner)

    def run(self, function: Callable[[TaskState], Any], *, on_done: Callable[[Any], None] | None = None,
            on_failed: Callable[[BaseException], None] | None = None,
            on_progress: Callable[..., None] | None = None, on_report: Callable[[Any], None] | None = None,
            on_cancelled: Callable[[], None] | None = None, on_started: Callable[[], None] | None = None,
            priority: int = 0, name: str = "", owner: QObject | None = None) -> Task | None:
        """Run ``function(state)`` on a thread of the group's pool; None (nothing runs) once shut down. ``owner``
        (instead of the group's) is the object whose deletion drops the callbacks."""
        if self.stopped:
            return None
        app = QCoreApplication.instance()
        if app is not None and QThread.currentThread() is not app.thread():
            raise RuntimeError("tasks are started from the GUI thread")
        number = next(_numbers)
        job = _Job(function, TaskState(number))
        callbacks = {"finished": on_done, "failed": on_failed, "progressed": on_progress, "reported": on_report,
                     "cancelled": on_cancelled, "started": on_started}
        task = Task(number, job, name or self.pool_name, callbacks, self, owner)
        _relay()  # made here, on the GUI thread
        _JOBS[number] = job
        _RUNNING[number] = task
        self._tasks[number] = task
        pool(self.pool_name, self._threads).start(_Runnable(number), priority)
        return task

    def submit(self, work: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> int:
        """:meth:`run` for work that needs no :class:`TaskState`: ``work()``, then ``on_done(result)`` or
        ``on_error(exception)`` on the GUI thread. Returns the task's number; -1 (nothing runs) once shut down."""
        task = self.run(lambda _state: work(), on_done=on_done, on_failed=on_error)
        return task.number if task is not None else -1

    def tasks(self) -> list[Task]:
        """The group's tasks that have not ended yet (queued or running), oldest first."""
        return list(self._tasks.values())

    def pending(self) -> int:
        """How many of the group's tasks have not ended yet."""
        return len(self._tasks)

    def running(self) -> int:
        """How many of the group's tasks are running their function now."""
        count = 0
        for task in self._tasks.values():
            job = task._job
            if job is not None and job.started and not job.done.is_set():
                count += 1
        return count

    def cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    def wait(self, timeout_ms: int) -> bool:
        """Wait (at most ``timeout_ms`` in all) for the group's running functions to return. True when they have."""
        deadline = time.monotonic() + max(0, timeout_ms) / 1000
        for task in list(self._tasks.values()):
            if not task.wait(int(max(0.0, deadline - time.monotonic()) * 1000)):
                return False
        return True

    def shutdown(self, timeout_ms: int = 10_000, *, cancel: bool = True) -> bool:
        """Take no more work, drop what has not started, ask the rest to stop (``cancel``) and wait at most
        ``timeout_ms`` for it, delivering nothing more. True when nothing of the group is left running; what still
        runs is kept (by this module) until it ends."""
        self.stopped = True
        for task in list(self._tasks.values()):
            if cancel:
                task.cancel()
            else:
                job = task._job
                if job is not None:
                    with job.lock:
                        job.dropped = job.dropped or not job.started
            task.detach()
        finished = self.wait(timeout_ms)
        for task in list(self._tasks.values()):  # what will never run or has returned is no longer pending
            job = task._job
            if job is None or (job.dropped and not job.started) or job.done.is_set():
                self._tasks.pop(task.number, None)
        return finished

    def _forget(self, task: Task) -> None:
        self._tasks.pop(task.number, None)


def running_tasks() -> list[str]:
    """The names of the tasks whose function is still running (any group, any owner)."""
    names = []
    for number, task in list(_RUNNING.items()):
        job = _JOBS.get(number)
        if job is not None and job.started and not job.done.is_set():
            names.append(task.name)
    return names


def exit_if_tasks_outlive(code: int) -> None:
    """After the event loop: if tasks still run, flush the logs and streams and end the process with ``code`` at
    once (their work is an import or a step whose result nobody waits for any more; Qt is not torn down around
    them, which would abort the process)."""
    running = running_tasks()
    if not running:
        return
    log.info("quitting while %s still runs; it is not waited for", ", ".join(running))
    exit_now(code)
