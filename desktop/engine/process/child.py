"""The worker process of one generator: ``python -m desktop.engine.process.child FD``.

``FD`` is this process's end of a socket pair with the GUI process. The first message names the plugin (its entry
point) and the generator; the process imports it, answers ``ready`` (or ``start_failed`` with the reason) and then
serves requests, each ``(kind, request id, payload)``:

* ``device`` — the device for the generator (probing needs torch, so it happens here, never in the GUI process);
* ``preload`` — import the generator's heavy libraries now (the window asks right after it opens);
* ``build_demo`` — build the generator's demo model into a folder (it imports the heavy libraries too);
* ``load`` — load a model under a token the GUI process chose; the answer carries the bytes it took (the
  generator's own figure, else this process's RSS or CUDA memory before and after);
* ``generate`` — run a job; ``progress``, ``preview`` and ``warn`` messages go back while it runs, then one of
  ``done`` (the outputs), ``cancelled`` (the partial outputs) or ``failed``;
* ``cancel`` and ``unload`` are handled by the reader thread at once, even while a job runs; ``quit`` ends the
  process.

What the process writes on stdout and stderr (libraries' warnings and progress bars) goes to its log file,
``worker-<generator id>.log`` next to Studiolo's, unless ``STUDIOLO_VERBOSE=1`` (``--verbose``): see
:func:`desktop.logs.setup_worker_logging`.

The reader thread also notices when the GUI process is gone (its end of the socket closes, even when it was killed)
and ends this process. Ctrl+C in a terminal reaches the whole process group: this process ignores it, the GUI
process decides.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import queue
import signal
import sys
import threading
import traceback
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("desktop.engine.process.child")

WORKER_ENV = "STUDIOLO_WORKER"
"""Set in a worker process to the id of the generator it runs (plugins may look, e.g. to log differently)."""


def describe_failure(exc: BaseException) -> dict[str, str]:
    """What the GUI process needs to report an exception of the plugin's: its kind and text, and the traceback."""
    from desktop.api import StudioloError

    if isinstance(exc, StudioloError):
        kind, text = "studiolo", str(exc)
    elif isinstance(exc, MemoryError):
        kind, text = "memory", str(exc)
    elif type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
        kind, text = "gpu_memory", str(exc)
    else:
        kind, text = "plugin", f"{type(exc).__name__}: {exc}"
    errno = next((e.errno for e in _chain(exc) if isinstance(e, OSError) and e.errno is not None), None)
    return {"kind": kind, "text": text, "detail": "".join(traceback.format_exception(exc)), "errno": errno}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling (libraries wrap OS errors)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


PROGRESS_INTERVAL_S = 0.02
"""A training's progress crosses the pipe at most this often (50 a second: more than the window shows)."""


class ChildWorker:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()
        self.inbox: queue.Queue[tuple | None] = queue.Queue()
        self.handles: dict[str, Any] = {}
        self.running: dict[int, threading.Event] = {}  # request id of a generate -> its cancel event
        self.pauses: dict[int, threading.Event] = {}  # request id of a train -> its pause event
        self._early_pauses: set[int] = set()  # pauses that came before their train started
        self._early_cancels: set[int] = set()  # cancels that came before their generate started
        self._running_lock = threading.Lock()
        self.generator: Any = None

    # -- the line to the GUI process --------------------------------------------------------------------------

    def send(self, message: tuple) -> None:
        from desktop.engine.process import transfer

        data = transfer.pack(*message)  # may raise (an object that cannot be pickled): the caller decides
        with self._send_lock:
            self.conn.send_bytes(data)

    def _receive(self) -> tuple:
        from desktop.engine.process import transfer

        try:
            kind, rid, payload = transfer.unpack(self.conn.recv_bytes())
        except (EOFError, OSError):
            _exit(0)  # the GUI process is gone (quit, crashed or killed): nothing here is worth keeping
        return kind, rid, transfer.loads(payload)

    # -- life --------------------------------------------------------------------------------------------------

    def serve(self) -> None:
        kind, _rid, start = self._receive()
        if kind != "start":
            _exit(2)
        try:
            self.generator = self._import(start)
        except BaseException as exc:  # whatever the import raised is reported, with its traceback
            self.send(("start_failed", 0, describe_failure(exc)))
            _exit(1)
        self.send(("ready", 0, {"pid": os.getpid()}))
        threading.Thread(target=self._read, name="studiolo-worker-reader", daemon=True).start()
        while (message := self.inbox.get()) is not None:
            kind, rid, payload = message
            handler = getattr(self, f"_on_{kind}", None)
            try:
                result = handler(rid, payload) if handler is not None else None
            except BaseException as exc:  # the job fails; the process serves the next request
                self._send_failure(rid, exc)
            else:
                if kind not in ("generate", "train"):  # a job answers for itself
                    self._send_reply("done", rid, result)

    def _import(self, start: dict[str, Any]) -> Any:
        import pluggy

        from desktop import hookspecs
        from desktop.api import PROJECT_NAME

        for entry in reversed(start["sys_path"]):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        name, value, group = start["entry_point"]
        plugin = metadata.EntryPoint(name=name, value=value, group=group).load()
        manager = pluggy.PluginManager(PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        manager.register(plugin, name=name)
        found: list[Any] = []
        manager.hook.register_generators(register=found.append)
        generator = next((g for g in found if getattr(g, "id", None) == start["generator_id"]), None)
        if generator is None:
            raise LookupError(f"the plugin {name!r} registered no generator {start['generator_id']!r} in the worker "
                              "process")
        return generator

    def _read(self) -> None:
        """The reader thread: cancels and unloads at once, everything else to the main thread in order."""
        while True:
            message = self._receive()
            kind, rid, payload = message
            if kind == "cancel":
                with self._running_lock:
                    event = self.running.get(payload)
                    if event is not None:
                        event.set()
                    else:
                        self._early_cancels.add(payload)
            elif kind == "pause":
                with self._running_lock:
                    event = self.pauses.get(payload)
                    if event is not None:
                        event.set()
                    else:
                        self._early_pauses.add(payload)
            elif kind == "unload":
                try:
                    self._send_reply("done", rid, self._unload(payload))
                except BaseException as exc:  # reported to the GUI process
                    self._send_failure(rid, exc)
            elif kind == "quit":
                _exit(0)
            else:
                self.inbox.put(message)

    # -- requests ------------------------------------------------------------------------------------------

    def _on_device(self, _rid: int, payload: tuple[tuple[str, ...], str]) -> str:
        from desktop.engine.devices import pick_device

        supported, preference = payload
        return pick_device(tuple(supported), preference)

    def _on_preload(self, _rid: int, modules: list[str]) -> dict[str, Any]:
        failures = []
        for name in modules:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name.split(".")[0]:  # a module that is there but needs a missing one: broken
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
            except Exception as exc:  # a broken install fails the jobs that need it, with the reason
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        devices: list[str] = []
        if "torch" in sys.modules:
            from desktop.engine.devices import available_devices

            devices = list(available_devices())
        return {"failures": failures, "devices": devices}

    def _on_build_demo(self, _rid: int, dest: str) -> None:
        from pathlib import Path

        self.generator.build_demo_model(Path(dest))

    def _on_load(self, _rid: int, payload: dict[str, Any]) -> dict[str, Any]:
        from desktop.api import LoadOptions
        from desktop.engine import memory

        device = payload["device"]
        options = LoadOptions(payload["options"], allow_pickle=payload["allow_pickle"],
                              model_ref=payload.get("model_ref"))
        before = memory.in_use(device)
        handle = self.generator.load(payload["path"], device, options)
        reported = self.generator.handle_size(handle)
        size = int(reported) if reported is not None else max(0, (memory.in_use(device) or 0) - (before or 0))
        self.handles[payload["token"]] = handle
        return {"size": size, "rss": memory.process_rss()}

    def _unload(self, token: str) -> dict[str, Any]:
        from desktop.engine import memory
        from desktop.engine.devices import empty_device_cache

        handle = self.handles.pop(token, None)
        if handle is not None:
            try:
                self.generator.unload(handle)
            except Exception:  # the references are dropped anyway
                log.exception("%s: unload raised", self.generator.id)
            del handle
            gc.collect()
            empty_device_cache()
        return {"rss": memory.process_rss(), "models": len(self.handles)}

    def _on_generate(self, rid: int, payload: dict[str, Any]) -> None:
        from desktop.api import JobCancelled
        from desktop.engine.context import CallbackRunContext

        cancel = threading.Event()
        with self._running_lock:
            self.running[rid] = cancel
            if rid in self._early_cancels:
                self._early_cancels.discard(rid)
                cancel.set()
        ctx = CallbackRunContext(
            job_id=payload["job_id"], seed=payload["seed"], device=payload["device"], cancel_event=cancel,
            on_progress=lambda done, total, message: self._send_update(("progress", rid, (done, total, message))),
            on_preview=lambda obj: self._send_update(("preview", rid, obj)),
            on_warning=lambda message: self._send_update(("warn", rid, message)), generator=self.generator,
            watermark=bool(payload.get("watermark", False)))
        try:
            returned = self.generator.generate(self.handles[payload["token"]], payload["params"], ctx)
            outputs = list(returned) if returned is not None else None
        except JobCancelled as exc:
            self._send_reply("cancelled", rid, {"partial": exc.partial, "after_cancel": ctx.progress_after_cancel})
        except BaseException as exc:  # the plugin's failure, reported with its traceback
            self._send_failure(rid, exc)
        else:
            self._send_reply("done", rid, {"outputs": outputs, "after_cancel": ctx.progress_after_cancel,
                                           "returned": type(returned).__name__})
        finally:
            with self._running_lock:
                self.running.pop(rid, None)

    def _on_train(self, rid: int, payload: dict[str, Any]) -> None:
        """A training job (``Generator.train``) with the host's training context; answers like a generate: done
        (the result and the estimate), cancelled (cancel or pause; the host knows which) or failed."""
        from pathlib import Path

        from desktop.api import JobCancelled
        from desktop.engine.training import CallbackTrainingContext

        cancel, pause = threading.Event(), threading.Event()
        with self._running_lock:
            self.running[rid], self.pauses[rid] = cancel, pause
            if rid in self._early_cancels:
                self._early_cancels.discard(rid)
                cancel.set()
            if rid in self._early_pauses:
                self._early_pauses.discard(rid)
                pause.set()
        ctx = None
        try:
            ctx = CallbackTrainingContext(
                work_dir=Path(payload["work_dir"]), resume=payload["resume"], pause_event=pause,
                progress_interval=PROGRESS_INTERVAL_S,
                job_id=payload["job_id"], seed=payload["seed"], device=payload["device"], cancel_event=cancel,
                on_progress=lambda done, total, message: self._send_update(("progress", rid, (done, total, message))),
                on_preview=lambda obj: self._send_update(("preview", rid, obj)),
                on_warning=lambda message: self._send_update(("warn", rid, message)), generator=self.generator)
            result = self.generator.train(payload["path"], payload["device"], payload["kind"], payload["params"], ctx)
        except JobCancelled:
            self._send_reply("cancelled", rid, {"partial": [], "after_cancel": 0})
        except BaseException as exc:  # the plugin's failure (or the host's context's: a full disk), with its traceback
            self._send_failure(rid, exc)
        else:
            self._send_reply("done", rid, {"result": result, "estimate": ctx.estimate})
        finally:
            if ctx is not None:
                ctx.close()
            with self._running_lock:
                self.running.pop(rid, None)
                self.pauses.pop(rid, None)

    # -- answers -------------------------------------------------------------------------------------------

    def _send_update(self, message: tuple) -> None:
        """Progress, previews and warnings: one that cannot be sent is dropped (logged), the job goes on."""
        try:
            self.send(message)
        except (EOFError, OSError):
            _exit(0)
        except Exception as exc:  # e.g. a preview that cannot be pickled
            log.warning("%s: a %s could not be sent to Studiolo: %s", self.generator.id, message[0], exc)

    def _send_reply(self, kind: str, rid: int, payload: Any) -> None:
        try:
            self.send((kind, rid, payload))
        except (EOFError, OSError):
            _exit(0)
        except Exception as exc:  # an output that cannot be pickled fails the job, clearly
            self.send(("failed", rid, {
                "kind": "unsendable", "text": f"{type(exc).__name__}: {exc}",
                "detail": "".join(traceback.format_exception(exc))}))

    def _send_failure(self, rid: int, exc: BaseException) -> None:
        self._send_reply("failed", rid, describe_failure(exc))


def _exit(status: int) -> Any:
    """End this process now, from any thread (the main thread may be deep in a plugin's code)."""
    from desktop.exiting import exit_now

    exit_now(status, flush_logs=False)  # a log handler's lock may be held by the thread this one interrupts


def main(argv: list[str]) -> None:
    from desktop.logs import setup_worker_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_worker_logging(os.environ.get(WORKER_ENV, "unknown"))  # libraries' chatter to a log file, not the terminal
    ChildWorker(Connection(int(argv[1]))).serve()
    _exit(0)


if __name__ == "__main__":
    main(sys.argv)
