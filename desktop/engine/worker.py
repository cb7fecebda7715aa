"""A generator's worker: a QObject on its own QThread that takes jobs from the generator's queue and runs them.

It never touches widgets. Everything it tells the rest of the app goes out as queued signals: ``mail`` when the
job's mailbox has updates (state changes, progress, previews), ``ended`` when the job reached its final state;
the job object itself is updated before each signal. Few signals, on purpose: each queued signal makes the GUI
thread wait for Python's GIL, so a worker that emits hundreds per second starves the window.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop import __version__
from desktop.api import (
    GenerationError,
    Generator,
    InsufficientMemoryError,
    JobCancelled,
    LoadOptions,
    Output,
    StudioloError,
    TextOutput,
    check_model_files,
    load_option_names,
    prompt_field,
    to_json,
)
from desktop.engine.cache import CacheKey, ModelCache
from desktop.engine.context import CallbackRunContext
from desktop.engine.devices import pick_device
from desktop.engine.jobs import Job, JobQueue, JobState
from desktop.engine.memory import weights_size
from desktop.engine.throttle import Mailbox
from desktop.models import usage
from desktop.models.resolver import ModelResolver

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a worker needs besides its generator. ``store``/``library`` may be None (nothing is saved)."""

    resolver: ModelResolver
    cache: ModelCache
    store: Any = None
    library: Any = None
    device_preference: str = "auto"
    allow_pickle: bool = False
    hf_token: str | None = None


class GeneratorWorker(QObject):
    mail = Signal(str)
    ended = Signal(str)

    def __init__(self, generator: Generator, queue: JobQueue, services: Services,
                 mailboxes: dict[str, Mailbox]) -> None:
        super().__init__()
        self.generator = generator
        self.queue = queue
        self.services = services
        self.mailboxes = mailboxes

    @Slot()
    def run(self) -> None:
        """The worker's loop: runs until the queue is closed."""
        while (job := self.queue.take()) is not None:
            try:
                self._run(job)
            except BaseException:  # never let one job end the worker
                log.exception("job %s: unexpected error in the worker", job.id)
                job.state, job.error = JobState.FAILED, "Studiolo hit an internal error; see the log."
            self.ended.emit(job.id)

    # -- one job -------------------------------------------------------------------------------------------

    def _set_state(self, job: Job, state: JobState) -> None:
        job.state = state
        if self.mailboxes[job.id].put_state(state.value):
            self.mail.emit(job.id)

    def _run(self, job: Job) -> None:
        if job.cancelled:
            job.state = JobState.CANCELLED
            return
        mailbox = self.mailboxes[job.id]
        started = time.monotonic()
        job.timings["queued_s"] = time.time() - job.created
        ctx = self._context(job, mailbox)
        try:
            self._set_state(job, JobState.LOADING)
            job.outputs = self._load_and_generate(job, ctx, started)
            self._save(job, job.outputs)  # a disk-full error fails the job, its outputs still in memory
            job.state = JobState.DONE
        except JobCancelled as exc:
            job.outputs = [_partial(o) for o in exc.partial if isinstance(o, Output)]
            job.state = JobState.CANCELLED
            try:
                self._save(job, job.outputs)
            except StudioloError as save_error:
                log.warning("job %s: the partial output was not saved: %s", job.id, save_error)
        except StudioloError as exc:
            self._fail(job, str(exc))
        except MemoryError:
            self._fail(job, str(InsufficientMemoryError(
                f"{self.generator.name} ran out of memory.",
                hint="Close other programs, unload models, or use smaller settings.")))
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
                self._fail(job, str(InsufficientMemoryError(
                    f"{self.generator.name} ran out of GPU memory.",
                    hint="Use a smaller size or batch, enable the memory savers, or choose the CPU in Settings.")))
            else:
                self._fail(job, str(GenerationError(
                    f"{self.generator.name} failed: {type(exc).__name__}: {exc}",
                    hint="This is probably a bug in the generator's plugin; the details are in the log.")))
            job.error_detail = traceback.format_exc()
            log.error("job %s (%s) failed\n%s", job.id, self.generator.id, job.error_detail)
        finally:
            job.timings["total_s"] = time.monotonic() - started
            job.steps_after_cancel = ctx.progress_after_cancel
            if job.cancelled and job.state is not JobState.DONE:
                job.state = JobState.CANCELLED

    def _fail(self, job: Job, message: str) -> None:
        job.state, job.error = JobState.FAILED, message
        log.info("job %s failed: %s", job.id, message)

    def _context(self, job: Job, mailbox: Mailbox) -> CallbackRunContext:
        def on_progress(done: int, total: int | None, message: str) -> None:
            job.progress = (done, total, message)
            if mailbox.put_progress(done, total, message):
                self.mail.emit(job.id)

        def on_preview(obj: Any) -> None:
            if (mailbox.put_text(obj) if isinstance(obj, str) else mailbox.put_preview(obj)):
                self.mail.emit(job.id)

        def on_warning(message: str) -> None:
            if mailbox.put_warning(message):
                self.mail.emit(job.id)

        return CallbackRunContext(job_id=job.id, seed=job.seed, cancel_event=job.cancel_event,
                                  on_progress=on_progress, on_preview=on_preview, on_warning=on_warning)

    def _load_and_generate(self, job: Job, ctx: CallbackRunContext, started: float) -> list[Output]:
        generator, services = self.generator, self.services
        path = services.resolver.resolve(
            generator, job.model, allow_pickle=services.allow_pickle, cancel=job.cancel_event, token=services.hf_token,
            on_progress=lambda done, total, msg: ctx.progress(done, total, msg or "Downloading the model…"),
            check=False)
        ctx.raise_if_cancelled()
        device = pick_device(generator.devices, services.device_preference)
        job.device = ctx.device = device
        options = LoadOptions({n: getattr(job.params, n) for n in load_option_names(generator.Params)},
                              allow_pickle=services.allow_pickle)
        key = CacheKey(generator.id, str(path or ""), device, options.key())
        label = f"{job.model} for {generator.name}" if job.model else generator.name
        if path is not None and not services.cache.has(key):  # a model in memory is not re-checked on every job;
            check_model_files(path, allow_pickle=services.allow_pickle)  # checked before the cache makes room
        with services.cache.lease(key, generator, lambda: generator.load(path, device, options),
                                  estimate=lambda: weights_size(path), label=label) as handle:
            usage.note_use(generator.id, job.model)  # the model manager's "last used": loaded fine; once a minute
            job.timings["load_s"] = time.monotonic() - started
            ctx.raise_if_cancelled()
            self._set_state(job, JobState.RUNNING)
            run_start = time.monotonic()
            outputs = generator.generate(handle, job.params, ctx)
            job.timings["generate_s"] = time.monotonic() - run_start
        outputs = list(outputs or [])
        bad = [o for o in outputs if not isinstance(o, Output)]
        if bad:
            raise GenerationError(f"{generator.name} returned {type(bad[0]).__name__} instead of an output.",
                                  hint="This is a bug in the generator's plugin.")
        return outputs

    # -- saving ----------------------------------------------------------------------------------------------

    def metadata(self, job: Job, output: Output) -> dict[str, Any]:
        generator = self.generator
        params = to_json(job.params)
        prompt_name = prompt_field(generator.Params)
        return {
            "studiolo_version": __version__,
            "generator": generator.id,
            "generator_version": generator.version,
            "kind": generator.kind,
            "model": job.model,
            "params": params,
            "prompt": params.get(prompt_name) if prompt_name else None,
            "seed": job.seed,
            "device": job.device,
            "job_id": job.id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(job.created)),
            "timings": {k: round(v, 4) for k, v in job.timings.items()},
            "partial": output.partial,
            "output": output.metadata,
        }

    def _save(self, job: Job, outputs: list[Output]) -> None:
        store, library = self.services.store, self.services.library
        if store is None:
            return
        from desktop.library import NewItem, default_encode

        for index, output in enumerate(outputs):
            metadata = self.metadata(job, output)
            encoded = self.generator.encode_output(output, metadata) or default_encode(output, metadata)
            path: Path = store.save(encoded, metadata, generator_id=self.generator.id, job_id=job.id, index=index)
            job.saved.append(path)
            if library is not None:
                item = NewItem(job_id=job.id, generator_id=self.generator.id,
                               generator_version=self.generator.version, kind=self.generator.kind,
                               model=job.model, prompt=metadata["prompt"], path=str(path), created=time.time(),
                               seed=job.seed, partial=output.partial, metadata=metadata,
                               text=output.text if isinstance(output, TextOutput) else None)
                job.item_ids.append(library.add(item).result(timeout=60))


def _partial(output: Output) -> Output:
    output.partial = True
    return output
