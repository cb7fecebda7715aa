"""The GUI process's side of a generator's worker process.

A :class:`WorkerProcess` starts the process on first use (:meth:`~WorkerProcess.session`), sends it requests and
hands each request's answers to whoever waits for them through a queue (a :class:`Call`); a reader thread receives
everything the process sends. A process that ends without being asked (a segfault, ``os._exit``, the out-of-memory
killer) puts a ``died`` answer, saying how it ended, into every call still waiting; the next request starts a fresh
process. Each started process is one :class:`Incarnation`: model handles and calls belong to the incarnation they
were made in, so nothing of a dead process is ever used again.

POSIX only (a socket pair's end is passed to the child by its file descriptor); elsewhere the engine runs
generators in its own process.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from desktop.api import StudioloError
from desktop.engine.process import transfer

log = logging.getLogger(__name__)

SUPPORTED = os.name == "posix"
"""Whether generators can run in worker processes on this system."""

START_TIMEOUT_S = 60.0  # the plugin's import in the worker process, answered with "ready"
REQUEST_TIMEOUT_S = 300.0  # a device probe or a preload (imports torch: seconds, more on a slow disk)
UNLOAD_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0  # how long a process asked to quit is given before it is killed


class WorkerStartError(StudioloError):
    """The worker process could not start the generator: its plugin failed to import there, or it did not answer."""

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.detail = detail


def describe_exit(returncode: int | None) -> str:
    """How a process ended, for a person: ``exit status 3`` or ``signal 11, SIGSEGV``."""
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        try:
            return f"signal {-returncode}, {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class PluginEntry:
    """Where the worker process finds the generator: the plugin's entry point and the generator's id."""

    name: str
    value: str
    group: str
    generator_id: str


class Call:
    """One request's answers, in order: ``(kind, payload)`` pairs from the reader thread (``died`` last when the
    process ended first). Whoever waits may put its own events in too (a cancel)."""

    def __init__(self, incarnation: Incarnation, request: int) -> None:
        self.incarnation = incarnation
        self.request = request
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()


@dataclass(eq=False)
class Incarnation:
    """One started worker process."""

    process: subprocess.Popen
    conn: Connection
    calls: dict[int, Call] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)  # tokens of the models loaded in it
    dead: bool = False
    stopping: bool = False  # asked to end (quit or killed by this side): its end is no surprise
    ended: str | None = None  # how it ended (describe_exit), once it has
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerProcess:
    """The worker process of one generator, started on demand and started again after it ended.

    ``on_death(incarnation)`` is called (on the reader thread) when a started process has ended, however it ended:
    the models it held are gone.
    ``clock`` times idleness (:meth:`stop_if_idle`).
    """

    def __init__(self, entry: PluginEntry, *, start_timeout: float = START_TIMEOUT_S,
                 on_death: Callable[[Incarnation], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.entry = entry
        self.start_timeout = start_timeout
        self.on_death = on_death
        self.clock = clock
        self._lock = threading.Lock()  # guards the fields below; never held while waiting for the process
        self._current: Incarnation | None = None
        self._busy = 0
        self._last_active = clock()
        self._requests = itertools.count(1)
        self.starts = 0  # processes started so far (tests and the benchmark read it)

    # -- life ------------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        current = self._current
        return current.pid if current is not None and not current.dead else None

    @contextmanager
    def session(self) -> Iterator[Incarnation]:
        """A running process (started if there is none), kept for the ``with`` block (:meth:`stop_if_idle` leaves
        it alone)."""
        with self._lock:
            self._busy += 1
        try:
            yield self._running()
        finally:
            with self._lock:
                self._busy -= 1
                self._last_active = self.clock()

    def _running(self) -> Incarnation:
        with self._lock:
            current = self._current
            if current is not None and not current.dead and not current.stopping:
                return current
        incarnation = self._start()  # outside the lock: a start takes a while, and may fail
        with self._lock:
            if self._current is not None and not self._current.dead and not self._current.stopping:
                winner = self._current  # another thread started one meanwhile: use it, end ours
                self._end(incarnation)
                return winner
            self._current = incarnation
            return incarnation

    def _start(self) -> Incarnation:
        host_end, child_end = socket.socketpair()
        env = dict(os.environ)
        env["STUDIOLO_WORKER"] = self.entry.generator_id
        root = str(Path(__file__).resolve().parents[3])  # the folder holding the desktop package
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "desktop.engine.process.child", str(child_end.fileno())],
                pass_fds=[child_end.fileno()], env=env, stdin=subprocess.DEVNULL)
        finally:
            child_end.close()
        self.starts += 1
        incarnation = Incarnation(process, Connection(host_end.detach()))
        log.info("started the worker process of %s (pid %d)", self.entry.generator_id, process.pid)
        try:
            self._handshake(incarnation)
        except BaseException:
            self._end(incarnation, kill=True)
            raise
        incarnation.reader = threading.Thread(target=self._read, args=(incarnation,), daemon=True,
                                               name=f"studiolo-reader:{self.entry.generator_id}")
        incarnation.reader.start()
        return incarnation

    def _handshake(self, incarnation: Incarnation) -> None:
        entry = self.entry
        self._send(incarnation, "start", 0, {"sys_path": list(sys.path), "generator_id": entry.generator_id,
                                             "entry_point": (entry.name, entry.value, entry.group)})
        name = f"the worker process of {entry.generator_id}"
        try:
            ready = incarnation.conn.poll(self.start_timeout)
            kind, _rid, payload = transfer.unpack(incarnation.conn.recv_bytes()) if ready else ("timeout", 0, b"")
        except (EOFError, OSError):
            incarnation.process.wait()
            raise WorkerStartError(f"{name} ended as it started ({describe_exit(incarnation.process.returncode)}).",
                                   hint="Check the plugin's installation; the details are in the log.") from None
        if kind == "timeout":
            raise WorkerStartError(
                f"{name} did not answer within {self.start_timeout:.0f} s of starting; it was stopped.",
                hint="Its plugin may hang while it is imported. Try again; if it keeps happening, disable the "
                     "plugin and report it to its author.")
        if kind == "start_failed":
            failure = transfer.loads(payload, host=True)
            raise WorkerStartError(
                f"The plugin of {entry.generator_id} could not be imported in its worker process: "
                f"{failure['text']}", hint="The plugin may be broken or need a library that is missing; "
                "reinstall it, or disable it in Plugins.", detail=failure.get("detail"))
        if kind != "ready":
            raise WorkerStartError(f"{name} answered {kind!r} instead of ready")

    def _read(self, incarnation: Incarnation) -> None:
        """The reader thread of one process: routes each message to its call, then reports the process's end."""
        while True:
            try:
                kind, request, payload = transfer.unpack(incarnation.conn.recv_bytes())
            except (EOFError, OSError):
                break
            except Exception:  # a malformed message: the line cannot be trusted any more
                log.exception("%s: unreadable message from the worker process", self.entry.generator_id)
                incarnation.process.kill()
                break
            call = incarnation.calls.get(request)
            if call is None:  # an answer nobody waits for any more (given up on): its segments are removed still
                try:
                    transfer.loads(payload, host=True)
                except Exception:  # nobody is told: nobody asked
                    pass
                continue
            try:
                value = transfer.loads(payload, host=True)
            except Exception as exc:  # refused (a torch object) or broken: the request fails, the process goes on
                kind, value = "failed", {"kind": "unreceivable", "text": f"{type(exc).__name__}: {exc}",
                                         "detail": None}
            call.events.put((kind, value))
        self._died(incarnation)

    def _died(self, incarnation: Incarnation) -> None:
        try:
            incarnation.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # it closed its line but lingers: it is of no use any more
            incarnation.process.kill()
            incarnation.process.wait()
        incarnation.ended = describe_exit(incarnation.process.returncode)
        with self._lock:
            incarnation.dead = True
            calls, incarnation.calls = list(incarnation.calls.values()), {}
            expected = incarnation.stopping
        incarnation.conn.close()
        transfer.remove_leftover_segments(incarnation.pid)
        for call in calls:
            call.events.put(("died", incarnation.ended))
        if not expected:
            log.warning("the worker process of %s (pid %d) ended: %s", self.entry.generator_id, incarnation.pid,
                        incarnation.ended)
        if self.on_death is not None:  # whatever ended it, the models it held are gone
            self.on_death(incarnation)

    # -- requests ------------------------------------------------------------------------------------------

    def _send(self, incarnation: Incarnation, kind: str, request: int, payload: Any) -> None:
        data = transfer.pack(kind, request, payload)
        with incarnation.send_lock:
            incarnation.conn.send_bytes(data)

    def call(self, incarnation: Incarnation, kind: str, payload: Any) -> Call:
        """Send a request to ``incarnation``; its answers arrive in the returned call's queue (``died`` at once
        when the process has already ended)."""
        call = Call(incarnation, next(self._requests))
        with self._lock:
            dead = incarnation.dead
            if not dead:
                incarnation.calls[call.request] = call
        if dead:
            call.events.put(("died", incarnation.ended))
            return call
        try:
            self._send(incarnation, kind, call.request, payload)
        except (OSError, ValueError):  # the process is going: the reader thread reports how it ended
            pass
        return call

    def tell(self, incarnation: Incarnation, kind: str, payload: Any = None) -> None:
        """Send a message that has no answer (``cancel``); nothing happens if the process has ended."""
        if not incarnation.dead:
            try:
                self._send(incarnation, kind, 0, payload)
            except (OSError, ValueError):
                pass

    def finish(self, call: Call) -> None:
        """The caller is done with ``call`` (answered, or given up on)."""
        with self._lock:
            call.incarnation.calls.pop(call.request, None)

    def request(self, kind: str, payload: Any, *, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """Send a request to the running process (started if needed) and wait for its answer. A process that does
        not answer within ``timeout`` seconds is killed; raises :class:`WorkerStartError` then, and when it
        ended; the request's own failure comes back as ``("failed", description)`` for the caller to raise."""
        with self.session() as incarnation:
            call = self.call(incarnation, kind, payload)
            try:
                kind, value = call.events.get(timeout=timeout)
            except queue.Empty:
                self.kill(incarnation)
                raise WorkerStartError(f"the worker process of {self.entry.generator_id} did not answer a {kind} "
                                       f"request within {timeout:.0f} s; it was stopped.",
                                       hint="Try again; a fresh process starts.") from None
            finally:
                self.finish(call)
        if kind == "died":
            raise WorkerStartError(f"the worker process of {self.entry.generator_id} stopped unexpectedly ({value}).",
                                   hint="Try again; a fresh process starts.")
        if kind == "failed":
            raise RemoteFailure(value)
        return value

    # -- models --------------------------------------------------------------------------------------------

    def note_loaded(self, incarnation: Incarnation, token: str) -> None:
        """Model ``token`` is loaded in ``incarnation``: the process is kept while it holds it."""
        with self._lock:
            if not incarnation.dead:
                incarnation.models.add(token)

    def unload(self, incarnation: Incarnation, token: str) -> None:
        """Unload model ``token`` in ``incarnation`` (nothing to do when that process has ended), then end the
        process if it has nothing left to do (the only way to give all its memory back)."""
        with self._lock:
            incarnation.models.discard(token)
            if incarnation.dead:
                return
        call = self.call(incarnation, "unload", token)
        try:
            kind, value = call.events.get(timeout=UNLOAD_TIMEOUT_S)
            if kind == "failed":
                log.warning("%s: unloading failed in the worker process: %s", self.entry.generator_id, value["text"])
        except queue.Empty:
            log.warning("%s: the worker process did not unload within %.0f s; it is stopped",
                        self.entry.generator_id, UNLOAD_TIMEOUT_S)
            self.kill(incarnation)
        finally:
            self.finish(call)
        self.stop_if_idle()

    # -- ending ----------------------------------------------------------------------------------------------

    def stop_if_idle(self, idle_for: float = 0.0) -> bool:
        """End the process if it holds no model, runs nothing and has been idle ``idle_for`` seconds. Returns
        whether it was ended."""
        with self._lock:
            current = self._current
            if (current is None or current.dead or current.stopping or current.models or self._busy
                    or self.clock() - self._last_active < idle_for):
                return False
            current.stopping = True
        self._end(current)
        return True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """End the process now: asked to quit, killed if it has not within ``timeout`` seconds."""
        with self._lock:
            current = self._current
            if current is None or current.dead:
                return
            current.stopping = True
        self._end(current, timeout=timeout)

    def kill(self, incarnation: Incarnation | None = None) -> None:
        """Kill ``incarnation`` (the current process by default) at once; its calls get ``died``."""
        target = incarnation or self._current
        if target is not None and not target.dead:
            target.stopping = True
            try:
                target.process.kill()
            except OSError:
                pass

    def _end(self, incarnation: Incarnation, *, kill: bool = False, timeout: float = STOP_TIMEOUT_S) -> None:
        incarnation.stopping = True
        if not kill:
            self.tell(incarnation, "quit")
            try:
                incarnation.process.wait(timeout)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            incarnation.process.kill()
            incarnation.process.wait()
        if incarnation.reader is not None:
            incarnation.reader.join(STOP_TIMEOUT_S)
        else:
            incarnation.conn.close()
            incarnation.dead = True
            incarnation.ended = describe_exit(incarnation.process.returncode)
        log.info("the worker process of %s (pid %d) ended", self.entry.generator_id, incarnation.pid)


class RemoteFailure(Exception):
    """A request failed in the worker process: ``description`` has ``kind``, ``text`` and ``detail`` (traceback)."""

    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__(description.get("text"))
        self.description = description
