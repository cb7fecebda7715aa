"""How a generator's worker thread runs the plugin's ``load`` and ``generate``: in the generator's worker process
(:class:`ProcessRunner`, the default) or on the thread itself (:class:`InProcessRunner`: generators that declare
``runs_in_process``, tests that ask, systems without worker processes).

Both give the worker thread the same four operations (the device, load, generate, what the model cache calls to
size and unload a handle), so :class:`~desktop.engine.worker.GeneratorWorker` does not care where the plugin runs.
"""

from __future__ import annotations

import logging
import queue
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import (
    AudioOutput,
    GenerationError,
    Generator,
    ImageOutput,
    InsufficientMemoryError,
    JobCancelled,
    LoadOptions,
    Output,
    StudioloError,
    TextOutput,
)
from desktop.engine.context import CallbackRunContext
from desktop.engine.devices import pick_device
from desktop.engine.jobs import Job
from desktop.engine.process.client import Incarnation, PluginEntry, RemoteFailure, WorkerProcess

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 5.0
"""Seconds a cancelled job's generator is given to notice before its worker process is ended (Settings)."""

_CANCEL = "cancel requested"  # an event the waiting thread puts in a call's queue itself


class InProcessRunner:
    """Runs the plugin on the worker thread, in this process."""

    in_process = True

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    @property
    def models(self) -> Generator:
        """What the model cache sizes and unloads handles with."""
        return self.generator

    def device(self, preference: str) -> str:
        return pick_device(self.generator.devices, preference)

    def load(self, path: Path | None, device: str, options: LoadOptions, job: Job) -> Any:
        return self.generator.load(path, device, options)

    def generate(self, handle: Any, job: Job, ctx: CallbackRunContext) -> Any:
        return self.generator.generate(handle, job.params, ctx)

    def build_demo(self, dest: Path) -> None:
        self.generator.build_demo_model(dest)

    def train(self, path: Path | None, device: str, job: Job, ctx: CallbackRunContext, work_dir: Path) -> dict:
        """Run ``Generator.train`` here with a :class:`~desktop.engine.training.CallbackTrainingContext` relaying
        to ``ctx``: ``{"result": TrainingResult, "estimate": …}``."""
        from desktop.engine.training import CallbackTrainingContext

        request = job.training
        tctx = CallbackTrainingContext(work_dir=work_dir, resume=request.resume, pause_event=job.pause_event,
                                       job_id=job.id, seed=job.seed, device=device, cancel_event=job.cancel_event,
                                       on_progress=ctx.progress, on_preview=ctx.preview, on_warning=ctx.warn,
                                       generator=self.generator)
        try:
            result = self.generator.train(path, device, request.kind, job.params, tctx)
        finally:
            tctx.close()
            request.estimate = tctx.estimate
        return {"result": result, "estimate": tctx.estimate}

    def preload(self, modules: list[str]) -> dict[str, Any]:
        return {"failures": [], "devices": []}  # a generator that runs here is light: nothing to import ahead

    def stop_if_idle(self, idle_for: float = 0.0) -> bool:
        return False

    def stop(self, timeout: float = 5.0) -> None:
        return None


@dataclass(eq=False)
class RemoteHandle:
    """A model loaded in a worker process: what the model cache holds for it in the GUI process."""

    incarnation: Incarnation
    token: str
    size: int


class RemoteModels:
    """The model cache's view of the models in one worker process: their measured sizes, and unloading them there
    (which ends the process once it holds nothing)."""

    def __init__(self, process: WorkerProcess) -> None:
        self.process = process

    def handle_size(self, handle: RemoteHandle) -> int:
        return handle.size

    def unload(self, handle: RemoteHandle) -> None:
        self.process.unload(handle.incarnation, handle.token)


@dataclass
class _Seen:
    """What a job sent before it was cancelled: its partial output if the process must be ended."""

    text: list[str] = field(default_factory=list)
    image: Any = None
    audio: list[AudioOutput] = field(default_factory=list)

    def add(self, obj: Any) -> None:
        if isinstance(obj, str):
            self.text.append(obj)
        elif isinstance(obj, AudioOutput):
            self.audio.append(obj)
        elif obj is not None:
            self.image = obj

    def partial(self) -> list[Output]:
        if self.text:
            return [TextOutput(text="".join(self.text), partial=True)]
        if self.audio:
            import numpy as np

            rate = self.audio[0].sample_rate
            samples = np.concatenate([np.asarray(a.samples) for a in self.audio if a.sample_rate == rate])
            return [AudioOutput(samples=samples, sample_rate=rate, partial=True)]
        if self.image is not None and type(self.image).__module__.startswith("PIL"):
            return [ImageOutput(image=self.image, partial=True)]
        return []


class ProcessRunner:
    """Runs the plugin in the generator's worker process (:class:`WorkerProcess`). ``grace()`` gives the seconds a
    cancelled job is waited for before the process is ended (read at each cancel: a setting)."""

    in_process = False

    def __init__(self, generator: Generator, entry: PluginEntry, *,
                 grace: Callable[[], float] = lambda: CANCEL_GRACE_S,
                 start_timeout: Callable[[], float] | None = None,
                 on_death: Callable[[Incarnation], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.generator = generator
        self.grace = grace
        self.clock = clock
        self.process = WorkerProcess(entry, on_death=on_death, clock=clock)
        if start_timeout is not None:
            self.process.start_timeout = start_timeout()
        self.models = RemoteModels(self.process)

    def device(self, preference: str) -> str:
        supported = self.generator.devices or ("cpu",)
        if preference == "cpu" or all(d == "cpu" for d in supported):
            return "cpu"  # no need to start the process, or import torch, to know that
        return self._request("device", (tuple(supported), preference))

    def preload(self, modules: list[str]) -> dict[str, Any]:
        """Start the process and import ``modules`` there now; ``failures`` and ``devices`` come back."""
        return self._request("preload", list(modules))

    def build_demo(self, dest: Path) -> None:
        """Build the generator's demo model into ``dest`` in the worker process (it imports the heavy libraries).
        Its failure is raised as the exception :func:`~desktop.models.demo.ensure_demo_model` expects from a
        builder: an ``OSError`` with its errno (a full disk), else a ``RuntimeError`` with the plugin's message."""
        try:
            self.process.request("build_demo", str(dest))
        except RemoteFailure as exc:
            failure = exc.description
            if failure.get("errno") is not None:
                raise OSError(failure["errno"], failure["text"]) from None
            if failure["kind"] == "studiolo":
                raise StudioloError(failure["text"]) from None
            raise RuntimeError(failure["text"]) from None

    def load(self, path: Path | None, device: str, options: LoadOptions, job: Job) -> RemoteHandle:
        token = secrets.token_hex(8)
        with self.process.session() as incarnation:
            payload = {"token": token, "path": path, "device": device, "options": dict(options),
                       "allow_pickle": options.allow_pickle, "model_ref": options.model_ref}
            answer = self._wait(self.process.call(incarnation, "load", payload), job, None)
            self.process.note_loaded(incarnation, token)
        return RemoteHandle(incarnation, token, int(answer["size"]))

    def generate(self, handle: RemoteHandle, job: Job, ctx: CallbackRunContext) -> Any:
        if handle.incarnation.dead:
            raise GenerationError(f"{self.generator.name}'s process ended with the model in it "
                                  f"({handle.incarnation.ended}).",
                                  hint="Run the job again: the model is loaded in a fresh process.")
        with self.process.session():
            payload = {"token": handle.token, "job_id": job.id, "params": job.params, "seed": job.seed,
                       "device": ctx.device, "watermark": ctx.watermark}
            answer = self._wait(self.process.call(handle.incarnation, "generate", payload), job, ctx)
        ctx.progress_after_cancel += answer.get("after_cancel", 0)  # counted in the worker process (see _wait)
        return answer["outputs"]

    def train(self, path: Path | None, device: str, job: Job, ctx: CallbackRunContext, work_dir: Path) -> dict:
        """Run ``Generator.train`` in the worker process (see :class:`InProcessRunner`); a pause request is passed
        on at once (the trainer checkpoints and stops), a cancel as for a generate."""
        request = job.training
        with self.process.session() as incarnation:
            payload = {"path": path, "device": device, "job_id": job.id, "seed": job.seed, "kind": request.kind,
                       "params": job.params, "work_dir": str(work_dir), "resume": request.resume}
            call = self.process.call(incarnation, "train", payload)
            with job.pause_listener(lambda: self.process.tell(call.incarnation, "pause", call.request)):
                answer = self._wait(call, job, ctx)
        request.estimate = answer.get("estimate")
        return answer

    def stop_if_idle(self, idle_for: float = 0.0) -> bool:
        return self.process.stop_if_idle(idle_for)

    def stop(self, timeout: float = 5.0) -> None:
        self.process.stop(timeout)

    # -- waiting for an answer ---------------------------------------------------------------------------

    def _wait(self, call: Any, job: Job, ctx: CallbackRunContext | None) -> Any:
        """The answer to ``call``, relaying progress, previews and warnings to ``ctx`` meanwhile. A cancel is passed
        on at once; if the answer has not come ``grace()`` seconds later (at once for a hard cancel), the process is
        killed and the job ends cancelled with what it had sent."""
        seen = _Seen()
        deadline: float | None = None
        killed = False
        with job.cancel_listener(lambda hard: call.events.put((_CANCEL, hard))):
            try:
                while True:
                    timeout = None if deadline is None else max(0.0, deadline - self.clock())
                    try:
                        kind, value = call.events.get(timeout=timeout)
                    except queue.Empty:  # the grace period is over
                        log.warning("job %s: %s did not stop within the grace period; its process is ended", job.id,
                                    self.generator.id)
                        killed, deadline = True, None
                        self.process.kill(call.incarnation)
                        continue
                    if kind == _CANCEL:
                        if deadline is None and not killed and ctx is not None:  # a load cannot notice one
                            self.process.tell(call.incarnation, "cancel", call.request)
                        grace = 0.0 if value else max(0.0, self.grace())
                        if not killed:
                            deadline = min(deadline or float("inf"), self.clock() + grace)
                    elif kind == "progress":
                        # Reports already on their way when the job was cancelled were made before the worker
                        # process knew: not counted. Those made after are counted there (``after_cancel``).
                        if ctx is not None and not job.cancelled:
                            ctx.progress(*value)
                    elif kind == "preview":
                        if ctx is not None and not job.cancelled:
                            seen.add(value)
                            ctx.preview(value)
                    elif kind == "warn":
                        if ctx is not None:
                            ctx.warn(value)
                    elif kind == "done":
                        return value
                    elif kind == "cancelled":
                        if ctx is not None:
                            ctx.progress_after_cancel += value.get("after_cancel", 0)
                        raise JobCancelled(partial=value["partial"])
                    elif kind == "failed":
                        raise self._error(value)
                    elif kind == "died":
                        if killed or job.cancelled:
                            raise JobCancelled(partial=seen.partial())
                        raise GenerationError(
                            f"The {self.generator.name} generator's process stopped unexpectedly ({value}).",
                            hint="The job failed; the next job starts a fresh process. If it happens again, try "
                                 "smaller settings or another model, and report it to the plugin's author.")
            finally:
                self.process.finish(call)

    def _request(self, kind: str, payload: Any) -> Any:
        try:
            return self.process.request(kind, payload)
        except RemoteFailure as exc:
            raise self._error(exc.description) from None

    def _error(self, failure: dict[str, Any]) -> StudioloError:
        kind, text, name = failure["kind"], failure["text"], self.generator.name
        if kind == "studiolo":
            error = StudioloError(text)
        elif kind == "memory":
            error = InsufficientMemoryError(f"{name} ran out of memory.",
                                            hint="Close other programs, unload models, or use smaller settings.")
        elif kind == "gpu_memory":
            error = InsufficientMemoryError(
                f"{name} ran out of GPU memory.",
                hint="Use a smaller size or batch, enable the memory savers, or choose the CPU in Settings.")
        elif kind in ("unsendable", "unreceivable"):
            error = GenerationError(f"{name} made something that cannot be sent back to Studiolo ({text}).",
                                    hint="This is a bug in the generator's plugin: outputs must be plain images, "
                                         "text, audio arrays and JSON-ready metadata.")
        else:
            error = GenerationError(f"{name} failed: {text}", hint="This is probably a bug in the generator's "
                                    "plugin; the details are in the log.")
        error.detail = failure.get("detail")  # type: ignore[attr-defined]
        return error

