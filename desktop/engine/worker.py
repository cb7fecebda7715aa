"""A generator's worker: a QObject on its own QThread that takes jobs from the generator's queue and runs them:
resolves the model, leases it from the model cache, has its runner (:mod:`desktop.engine.runners`) load it and run
``generate`` — in the generator's worker process, or on this thread — and saves the outputs.

It never touches widgets. Everything it tells the rest of the app goes out as queued signals: ``mail`` when the
job's mailbox has updates (state changes, progress, previews), ``ended`` when the job reached its final state;
the job object itself is updated before each signal. Few signals, on purpose: each queued signal makes the GUI
thread wait for Python's GIL, so a worker that emits hundreds per second starves the window.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
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
    prompt_field,
    to_json,
)
from desktop.api.params import load_option_names
from desktop.engine.cache import CacheKey, ModelCache
from desktop.engine.context import CallbackRunContext
from desktop.engine.jobs import Job, JobQueue, JobState
from desktop.engine.memory import weights_size
from desktop.engine.runners import InProcessRunner, ProcessRunner
from desktop.engine.save_gate import SaveGate
from desktop.engine.throttle import Mailbox
from desktop.models import usage
from desktop.models.resolver import ModelResolver

log = logging.getLogger(__name__)

Runner = InProcessRunner | ProcessRunner


@dataclass
class Services:
    """What a worker needs besides its generator. ``store``/``library`` may be None (nothing is saved);
    ``saves``: the gate every save goes through (shared by the engine's workers)."""

    resolver: ModelResolver
    cache: ModelCache
    store: Any = None
    library: Any = None
    device_preference: str = "auto"
    allow_pickle: bool = False
    hf_token: str | None = None
    saves: SaveGate = field(default_factory=SaveGate)
    cancel_grace: float = 5.0  # seconds a cancelled job is given before its worker process is ended
    signer: Any = None  # an OutputSigner (desktop.provenance.output_signer): Content Credentials; None: off


class GeneratorWorker(QObject):
    mail = Signal(str)
    ended = Signal(str)

    def __init__(self, generator: Generator, queue: JobQueue, services: Services,
                 mailboxes: dict[str, Mailbox], runner: Runner | None = None) -> None:
        super().__init__()
        self.generator = generator
        self.runner: Runner = runner if runner is not None else InProcessRunner(generator)
        self.queue = queue
        self.services = services
        self.mailboxes = mailboxes
        self._in_plugin = False  # the plugin's own code is running (see _plugin): its exceptions are the plugin's
        self._step = "loading the model"  # what the host was doing, for a failure of the host's own
        self._model_path: Any = None  # the current job's resolved model (for the ``reproduce`` record)

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
        self._in_plugin, self._step = False, "loading the model"
        try:
            self._set_state(job, JobState.LOADING)
            if job.training is not None:  # a training job: a model comes out, no output to save
                self._train(job, ctx)
            else:
                job.outputs = self._load_and_generate(job, ctx, started)
            if job.cancelled:  # the generator finished without noticing the cancel: what it made is partial
                raise JobCancelled(partial=job.outputs)
            self._step = "saving the output"
            self._save(job, job.outputs)  # a disk-full error fails the job, its outputs still in memory
            job.state = JobState.DONE
        except JobCancelled as exc:
            if job.training is not None:  # a pause ends the job the way a cancel does: told apart here
                job.training.paused = job.pause_event.is_set() and not job.cancel_event.is_set()
            job.outputs = [_partial(o) for o in exc.partial if isinstance(o, Output)]
            job.state = JobState.CANCELLED
            try:
                self._save(job, job.outputs)
            except Exception as save_error:  # the job was cancelled anyway: the partial output is only a bonus
                log.warning("job %s: the partial output was not saved: %s", job.id, save_error)
        except StudioloError as exc:
            self._fail(job, str(exc))
            job.error_type = type(exc).__name__  # what a batch spread over servers retries elsewhere
            job.error_detail = getattr(exc, "detail", None)  # a failure in the worker process: its traceback
            if job.error_detail:
                log.error("job %s (%s) failed\n%s", job.id, self.generator.id, job.error_detail)
        except MemoryError:
            self._fail(job, str(InsufficientMemoryError(
                f"{self.generator.name} ran out of memory.",
                hint="Close other programs, unload models, or use smaller settings.")))
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
                self._fail(job, str(InsufficientMemoryError(
                    f"{self.generator.name} ran out of GPU memory.",
                    hint="Use a smaller size or batch, enable the memory savers, or choose the CPU in Settings.")))
            elif self._in_plugin:
                self._fail(job, str(GenerationError(
                    f"{self.generator.name} failed: {type(exc).__name__}: {exc}",
                    hint="This is probably a bug in the generator's plugin; the details are in the log.")))
            else:  # the host's own step (resolving, checking, saving, indexing): not the plugin's fault
                self._fail(job, str(StudioloError(
                    f"Studiolo failed while {self._step} ({self.generator.name}): {type(exc).__name__}: {exc}",
                    hint="This is a bug in Studiolo, not in the generator's plugin; the details are in the log.")))
            job.error_detail = traceback.format_exc()
            log.error("job %s (%s) failed\n%s", job.id, self.generator.id, job.error_detail)
        finally:
            job.timings["total_s"] = time.monotonic() - started
            job.steps_after_cancel = ctx.progress_after_cancel
            if job.cancelled and job.state is not JobState.DONE:
                job.state = JobState.CANCELLED

    def _warn(self, job: Job, message: str) -> None:
        """A note for the job's owner from the host itself (the generator's go through its context)."""
        if self.mailboxes[job.id].put_warning(message):
            self.mail.emit(job.id)

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
                                  on_progress=on_progress, on_preview=on_preview, on_warning=on_warning,
                                  generator=self.generator, watermark=job.watermark)

    def _resolve_and_place(self, job: Job, ctx: CallbackRunContext, *, check: bool) -> tuple[Any, str]:
        """The job's model resolved to local files (downloaded or built when needed; ``check``: its weight files
        checked now) and the device it runs on, recorded on the job and its context: ``(path, device)``."""
        services = self.services
        path = services.resolver.resolve(
            self.generator, job.model, allow_pickle=services.allow_pickle, cancel=job.cancel_event,
            token=services.hf_token, check=check, build_demo=self.runner.build_demo,
            on_progress=lambda done, total, msg: ctx.progress(done, total, msg or "Downloading the model…"))
        self._model_path = path
        ctx.raise_if_cancelled()
        device = self.runner.device(services.device_preference)
        job.device = ctx.device = device
        return path, device

    def _load_and_generate(self, job: Job, ctx: CallbackRunContext, started: float) -> list[Output]:
        generator, services = self.generator, self.services
        path, device = self._resolve_and_place(job, ctx, check=False)
        options = LoadOptions({n: getattr(job.params, n) for n in load_option_names(generator.Params)},
                              allow_pickle=services.allow_pickle,
                              model_ref=job.model if path is None else None)  # a remote model: no files
        key = CacheKey(generator.id, str(path or ""), device, options.key())
        label = f"{job.model} for {generator.name}" if job.model else generator.name
        if path is not None and not services.cache.has(key):  # a model in memory is not re-checked on every job;
            check_model_files(path, allow_pickle=services.allow_pickle)  # checked before the cache makes room
        runner = self.runner
        with services.cache.lease(key, runner.models, lambda: self._plugin(runner.load, path, device, options, job),
                                  estimate=lambda: weights_size(path), label=label,
                                  before_load=ctx.raise_if_cancelled) as handle:  # cancelled while waiting: no load
            usage.note_use(generator.id, job.model)  # the model manager's "last used": loaded fine; once a minute
            job.timings["load_s"] = time.monotonic() - started
            ctx.raise_if_cancelled()
            self._set_state(job, JobState.RUNNING)
            self._step = "running the generator"
            run_start = time.monotonic()
            outputs = self._plugin(runner.generate, handle, job, ctx)
            job.timings["generate_s"] = time.monotonic() - run_start
        return self._checked_outputs(job, outputs)

    def _train(self, job: Job, ctx: CallbackRunContext) -> None:
        """Run a training job (:mod:`desktop.engine.train_job`): the base model resolved and checked, this
        generator's loaded models unloaded (training loads its own copy), ``Generator.train`` run by the runner,
        then the result's provenance recorded in it and the result imported into the model store."""
        from pathlib import Path

        from desktop.api.training import TrainingResult
        from desktop.engine.train_job import (
            import_result,
            provenance,
            training_kind,
            write_provenance,
            write_run_record,
        )
        from desktop.engine.training import run_dir
        from desktop.provenance.reproduce import library_versions, model_hash

        generator, services, request = self.generator, self.services, job.training
        spec = training_kind(generator, request.kind)
        path, device = self._resolve_and_place(job, ctx, check=True)
        for loaded in services.cache.loaded():  # the base model in memory twice would double what training needs
            if loaded.key.generator_id == generator.id:
                services.cache.unload(loaded.key)
        self._set_state(job, JobState.RUNNING)
        self._step = "training"
        work_dir = run_dir(generator.id, request.name)
        if not request.resume:
            write_run_record(work_dir, job)
        started = time.monotonic()
        answer = self._plugin(self.runner.train, path, device, job, ctx, work_dir)
        job.timings["train_s"] = time.monotonic() - started
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, TrainingResult) or not Path(result.path).exists():
            raise GenerationError(f"{generator.name} finished training but gave no trained model ({result!r}).",
                                  hint="This is a bug in the generator's plugin; the checkpoints are kept in "
                                       f"{work_dir}.")
        self._step = "recording the trained model's provenance"
        request.record = provenance(generator=generator, kind=request.kind, job=job, model_hash=model_hash(path),
                                    result=result, work_dir=work_dir, estimate=request.estimate,
                                    versions=library_versions(tuple(generator.preload_modules or ())))
        write_provenance(Path(result.path), request.record)
        self._step = "importing the trained model"
        request.result = import_result(generator, spec, request, Path(result.path))

    def _plugin(self, call: Any, *args: Any) -> Any:
        """``call(*args)``, the plugin's own code. An exception escaping it leaves the blame on the plugin (the
        flag is only cleared when it returns)."""
        self._in_plugin = True
        result = call(*args)
        self._in_plugin = False
        return result

    def _checked_outputs(self, job: Job, returned: Any) -> list[Output]:
        """What ``generate`` returned, as a list of outputs. Nothing at all fails the job (unless it was
        cancelled), naming the generator; something that is not an output is a bug of the plugin's."""
        generator = self.generator
        outputs = list(returned or [])
        bad = [o for o in outputs if not isinstance(o, Output)]
        if bad:
            raise GenerationError(f"{generator.name} returned {type(bad[0]).__name__} instead of an output.",
                                  hint="This is a bug in the generator's plugin.")
        if not outputs and not job.cancelled:
            what = "None" if returned is None else "an empty list"
            raise GenerationError(f"{generator.id} produced no output (its generate returned {what}); nothing "
                                  "was saved.", hint="This is a bug in the generator's plugin; report it to its "
                                  "author, or try other settings.")
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
            "reproduce": self._reproduce_record(job),
        }

    def _reproduce_record(self, job: Job) -> dict[str, Any]:
        """What a re-run needs besides the params (:mod:`desktop.provenance.reproduce`); never fails the save."""
        from desktop.provenance.reproduce import reproduce_facts

        return reproduce_facts(self.generator, job.device, self._model_path)

    def _save(self, job: Job, outputs: list[Output]) -> None:
        """Save and index ``outputs``: all of them or, when one fails, none (see the comment below)."""
        store, library = self.services.store, self.services.library
        if store is None or not job.save:
            return
        import hashlib

        from desktop.library import NewItem, OutputSaver, default_encode

        # Each file is saved with its row or not at all (OutputSaver); when one output fails, those of this job
        # already saved are removed too (rows, files): a failed job leaves nothing in the library or on disk.
        saver = OutputSaver(store, library)
        first_saved, first_item = len(job.saved), len(job.item_ids)
        self._step = "finding the input's library item"
        parent = self._input_parent(job)
        try:
            for index, output in enumerate(outputs):
                self._step = "saving the output"
                metadata = self.metadata(job, output)
                if parent is not None:
                    metadata["parent"] = parent.metadata()
                encoded = (self._plugin(self.generator.encode_output, output, metadata)
                           or default_encode(output, metadata))
                if self.services.signer is not None:  # last: a chunk added after signing reads as tampered
                    self._step = "adding Content Credentials"
                    encoded = self.services.signer.sign(encoded, metadata, warn=lambda m: self._warn(job, m))
                    self._step = "saving the output"
                item = NewItem(job_id=job.id, generator_id=self.generator.id, generator_version=self.generator.version,
                               kind=self.generator.kind, model=job.model, prompt=metadata["prompt"], path="",
                               created=time.time(), seed=job.seed, partial=output.partial, metadata=metadata,
                               text=output.text if isinstance(output, TextOutput) else None,
                               sha256=hashlib.sha256(encoded.data).hexdigest(),
                               parent_id=parent.item_id if parent is not None else None,
                               parent_sha256=parent.sha256 if parent is not None else None)
                with self.services.saves.saving():  # a halting process waits for this file and its row
                    saved = saver.save(encoded, metadata, item, generator_id=self.generator.id, job_id=job.id,
                                       index=index)
                job.saved.append(saved.path)
                job.saved_metadata.append(metadata)
                output.saved_path = saved.path
                if saved.item_id is not None:
                    job.item_ids.append(saved.item_id)
        except JobCancelled:
            raise  # Studiolo is stopping: what was saved is whole and indexed, and stays
        except BaseException:
            saver.rollback()
            del job.saved[first_saved:], job.saved_metadata[first_saved:], job.item_ids[first_item:]
            for output in outputs:
                output.saved_path = None
            raise

    def _input_parent(self, job: Job) -> Any:
        """The library item the job's input file is (``Generator.input_file``; a
        :class:`~desktop.library.lineage.InputParent`), or None. A failure here is logged and records no parent:
        it never fails the job."""
        from desktop.library.lineage import input_parent

        try:
            path = self.generator.input_file(job.params)
            return input_parent(self.services.library, path) if path is not None else None
        except Exception:
            log.warning("job %s: could not find the library item of its input file", job.id, exc_info=True)
            return None


def _partial(output: Output) -> Output:
    output.partial = True
    return output
