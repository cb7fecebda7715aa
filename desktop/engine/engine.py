"""The job engine: a queue and a worker thread per generator, delivering each job's life to the consumer. Each
worker thread runs its generator's ``load``/``generate`` in the generator's worker process (see
:mod:`desktop.engine.process`), or on the thread itself for generators that run in-process (:meth:`Engine.runner`).

The engine is a QObject living on the thread that created it (the GUI thread in the app, the main thread in
the CLI and tests); its signals are emitted there. It works without any window: all it needs is a running Qt
event loop (``QCoreApplication`` is enough).

Signals, in the order a job sees them:

* ``job_queued(job_id)``
* ``job_state_changed(job_id, state)`` — ``loading``, then ``running``
* ``job_progressed(job_id, done, total, message)`` (``total`` 0 when unknown) — the first report at once, then
  at most ~30 per second; only the latest counts
* ``job_previewed(job_id, preview)`` — text chunks (``str``, joined, never dropped) or the latest image/audio
* ``job_warned(job_id, message)``
* then exactly one of ``job_finished(job_id, outputs)``, ``job_failed(job_id, message)`` and
  ``job_cancelled(job_id, partial_outputs)``; after a cancel no progress or preview of that job arrives.
* ``job_forgotten(job_id)``, much later: the job left the engine's bounded history (see below).

Memory: once a finished job's last signal has been delivered, the engine drops its outputs if they were all saved
(the signal handed them to the window, the library holds the files; :meth:`Job.release_outputs`), keeping only
the light record (params, seed, model, state, error, saved paths, item ids, timings). It keeps at most
``history`` finished jobs (:data:`MAX_FINISHED_JOBS`), forgetting the oldest first; queued and running jobs are
never forgotten. :meth:`Engine.job` raises :class:`UnknownJob` (a ``KeyError``) for a forgotten id.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, QThreadPool, QTimer, Signal, Slot

from desktop import paths
from desktop.api import PROJECT_NAME, ParamError, from_json, validate
from desktop.engine.cache import ModelCache
from desktop.engine.jobs import Job, JobQueue, JobState, UnknownJob, choose_seed
from desktop.engine.process.client import STOP_TIMEOUT_S, SUPPORTED, Incarnation, PluginEntry
from desktop.engine.runners import InProcessRunner, ProcessRunner, RemoteHandle
from desktop.engine.throttle import MAX_RATE_HZ, Mailbox, RateLimiter
from desktop.engine.worker import GeneratorWorker, Runner, Services
from desktop.models.modelless import check_model_choice
from desktop.models.resolver import ModelResolver
from desktop.plugins import PluginManager
from desktop.provenance.output_signer import OutputSigner
from desktop.settings import Settings

log = logging.getLogger(__name__)

JOB_SIGNALS = ("queued", "state_changed", "started", "progressed", "previewed", "warned", "finished", "failed",
               "cancelled", "forgotten")
MAX_FINISHED_JOBS = 500  # finished jobs the engine remembers (the Activity view shows as many)
IN_PROCESS_ENV = "STUDIOLO_IN_PROCESS"
QUIT_GRACE_S = 1.0
"""At shutdown, how long a worker process asked to quit is given before it is killed. Every job has been cancelled
and its thread has ended by then: what a worker may still be doing (importing its libraries to warm up, which holds
the interpreter and cannot answer) is worth nothing to a closing app, and a worker holds no user data."""


def runs_in_process_by_default() -> bool:
    """Whether engines run every generator in this process: ``STUDIOLO_IN_PROCESS=1`` (for comparisons and
    debugging), or a system without worker processes."""
    return os.environ.get(IN_PROCESS_ENV, "") not in ("", "0") or not SUPPORTED


def connect_job_signals(source: QObject, receiver: object) -> None:
    """Connect each ``job_<event>`` signal ``source`` has to ``receiver._on_<event>`` where the receiver has it
    (an engine's signals to a view, a panel host's to its page)."""
    for event in JOB_SIGNALS:
        signal, slot = getattr(source, f"job_{event}", None), getattr(receiver, f"_on_{event}", None)
        if signal is not None and slot is not None:
            signal.connect(slot)


class Engine(QObject):
    job_queued = Signal(str)
    job_state_changed = Signal(str, str)
    job_progressed = Signal(str, int, int, str)
    job_previewed = Signal(str, object)
    job_warned = Signal(str, str)
    job_finished = Signal(str, object)
    job_failed = Signal(str, str)
    job_cancelled = Signal(str, object)
    job_forgotten = Signal(str)

    def __init__(self, plugins: PluginManager, settings: Settings | None = None, *,
                 cache: ModelCache | None = None, resolver: ModelResolver | None = None, store: Any = "default",
                 library: Any = "default", clock: Callable[[], float] = time.monotonic,
                 min_interval: float = 1.0 / MAX_RATE_HZ, history: int = MAX_FINISHED_JOBS,
                 in_process: bool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.plugins = plugins
        self.settings = settings if settings is not None else plugins.settings
        self.cache = cache if cache is not None else ModelCache(budget=self.settings.memory_budget_bytes())
        self.clock = clock
        self.min_interval = min_interval
        if store == "default" or library == "default":
            from desktop.library import Library, OutputStore

            store = OutputStore(self._output_root()) if store == "default" else store
            library = Library() if library == "default" else library
        self.library = library
        self.services = Services(resolver=resolver or ModelResolver(), cache=self.cache, store=store,
                                 library=library, device_preference=self.settings.device,
                                 allow_pickle=self.settings.allow_pickle, hf_token=self.settings.hf_token,
                                 cancel_grace=self.settings.cancel_grace_seconds,
                                 signer=OutputSigner.from_settings(self.settings))
        self.in_process = runs_in_process_by_default() if in_process is None else in_process
        self._runners: dict[str, Runner] = {}
        self._runners_lock = threading.Lock()  # runner() is called from task threads too (preload, demo builds)
        self._jobs: dict[str, Job] = {}
        self.history = max(1, history)  # the newest finished job is always known (its signal's slots read it)
        self._finished: deque[str] = deque()  # ids of the finished jobs still remembered, oldest first
        self._mailboxes: dict[str, Mailbox] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self._timers: dict[str, QTimer] = {}
        self._queues: dict[str, JobQueue] = {}
        self._workers: dict[str, tuple[GeneratorWorker, QThread]] = {}
        self._retired: dict[QThread, tuple[GeneratorWorker, str]] = {}  # kept alive until their threads finish
        self._closed = False
        self.idle_timer = QTimer(self)
        self.idle_timer.timeout.connect(self.unload_idle_models)
        self._start_idle_timer()

    def _output_root(self) -> Path:
        return Path(self.settings.output_dir) if self.settings.output_dir else paths.default_output_dir()

    def _start_idle_timer(self) -> None:
        """Check for idle models every minute (or sooner when the setting is under a minute); off when 0."""
        minutes = self.settings.idle_unload_minutes
        if minutes > 0 and not self._closed:
            self.idle_timer.start(int(min(60.0, minutes * 60) * 1000))
        else:
            self.idle_timer.stop()

    def apply_settings(self) -> None:
        """Apply :attr:`settings` as they are now (the Settings dialog saved them) to everything running: the
        memory budget (models over a lowered budget are unloaded, off the GUI thread), the device for the next
        model load, the pickle switch and the Hugging Face token for the next model resolved, the idle unload
        interval (the timer restarts, or stops at 0), and the output folder for the next save. Jobs under way
        keep the settings they started with; the Content Credentials settings apply from the next save."""
        settings = self.settings
        self.cache.budget = settings.memory_budget_bytes()
        self.services.device_preference = settings.device
        self.services.allow_pickle = settings.allow_pickle
        self.services.hf_token = settings.hf_token
        self.services.cancel_grace = settings.cancel_grace_seconds
        self.services.signer = OutputSigner.from_settings(settings)
        from desktop.library import OutputStore

        if isinstance(self.services.store, OutputStore):  # a store given by the caller (tests) is theirs
            self.services.store.root = self._output_root()
        self._start_idle_timer()
        if self.cache.budget is not None and self.cache.total_size() > self.cache.budget:
            QThreadPool.globalInstance().start(self.cache.enforce_budget)  # unloading collects garbage

    # -- submitting ------------------------------------------------------------------------------------------

    def submit(self, generator_id: str, params: Any = None, *, model: str | None = None,
               seed: int | None = None, watermark: bool | None = None, save: bool = True,
               lane: str | None = None) -> Job:
        """Validate and queue a job. ``params``: a ``Params`` instance, a dict of values, or None (defaults);
        ``model``: a reference (None: the generator's default model); ``seed``: None or -1 for a random one;
        ``watermark``: ask the generator to mark its outputs invisibly (None: as the ``watermark`` setting says);
        ``save``: False to have the outputs only delivered (with ``job_finished``), not saved to the library;
        ``lane``: run on a queue and worker thread of its own named so, beside the generator's (a batch spread over
        remote servers runs several jobs at once: one lane per server slot) — only for a generator that runs in
        this process (``runs_in_process``), whose jobs share no worker process.
        Raises ``PluginError`` (unknown generator) or ``ParamError`` at once, before anything is queued (a model
        given for a generator that uses no model is a ``ParamError`` too: :func:`check_model_choice`)."""
        if self._closed:
            raise RuntimeError("the engine is shut down")
        generator = self.plugins.generator(generator_id)
        check_model_choice(generator, model)
        if params is None:
            params = generator.Params()
        elif isinstance(params, dict):
            params = from_json(generator.Params, params, strict=True)
        elif not isinstance(params, generator.Params):
            raise ParamError("params", params, f"expected {generator.Params.__qualname__} for {generator_id}")
        if lane is not None and not (self.in_process or generator.runs_in_process):
            raise ParamError("lane", lane, f"{generator.name} runs in a worker process of its own, one job at a time",
                             hint="Submit its jobs without a lane.")
        job = Job(generator_id=generator_id, params=validate(params, generator.Params),
                  model=model or generator.default_model, seed=choose_seed(seed),
                  watermark=self.settings.watermark if watermark is None else watermark, save=save, lane=lane)
        self._jobs[job.id] = job
        self._mailboxes[job.id] = Mailbox()
        self._queue_for(job.queue_key).put(job)
        self.job_queued.emit(job.id)
        return job

    def submit_training(self, generator_id: str, kind: str, params: Any = None, *, name: str,
                        model: str | None = None, seed: int | None = None, resume: bool = False,
                        restart: bool = False) -> Job:
        """Validate and queue a training job (issue 22): ``generator_id``'s training ``kind`` with ``params`` (its
        ``Params``, a dict, or None), on the base ``model``, the result imported as ``name``. ``resume``: continue
        the run of that name from its latest checkpoint (with its own params, model and seed unless given);
        ``restart``: discard a stopped run of that name and start over. The job ends with ``job_finished`` (no
        outputs; ``job.training.result`` is the trained model's reference), ``job_cancelled`` (cancelled, or
        paused: ``job.training.paused``) or ``job_failed``. Raises ``PluginError``/``ParamError`` at once."""
        from desktop.engine.train_job import TrainingRequest, plan

        if self._closed:
            raise RuntimeError("the engine is shut down")
        generator = self.plugins.generator(generator_id)
        check_model_choice(generator, model)
        ready = plan(generator, kind, params, name=name, model=model, seed=seed, resume=resume, restart=restart)
        job = Job(generator_id=generator_id, params=ready.params, model=ready.model, seed=choose_seed(ready.seed),
                  training=TrainingRequest(kind, name, resume=resume))
        self._jobs[job.id] = job
        self._mailboxes[job.id] = Mailbox()
        self._queue_for(generator_id).put(job)
        self.job_queued.emit(job.id)
        return job

    def pause(self, job_id: str) -> bool:
        """Pause a training job: a running one writes a checkpoint after its current step and ends
        (``job_cancelled``, ``job.training.paused``); a queued one ends paused at once. Resume it with
        :meth:`submit_training` (``resume=True``). False for a job that does not train or has finished."""
        job = self._jobs.get(job_id)
        if job is None or job.training is None or job.state.finished or job.cancelled:
            return False
        queue = self._queues.get(job.queue_key)
        if queue is not None and queue.remove(job_id) is not None:
            job.training.paused = True
            job.pause_event.set()
            job.state = JobState.CANCELLED
            self._close_mail(job_id)
            self.job_cancelled.emit(job_id, [])
            self._settle(job)
            return True
        return job.request_pause()

    def _queue_for(self, key: str) -> JobQueue:
        """The queue ``key`` (a generator id, or ``GENERATOR#LANE``: :attr:`Job.queue_key`), with its worker thread
        started on first use."""
        if key not in self._queues:
            generator_id = key.partition("#")[0]
            queue = self._queues[key] = JobQueue()
            worker = GeneratorWorker(self.plugins.generator(generator_id), queue, self.services, self._mailboxes,
                                     self.runner(generator_id))
            thread = QThread(self)
            thread.setObjectName(f"worker:{key}")
            worker.moveToThread(thread)
            thread.started.connect(worker.run)
            worker.mail.connect(self._on_mail)
            worker.ended.connect(self._on_ended)
            self._workers[key] = (worker, thread)
            thread.start()
        return self._queues[key]

    def runner(self, generator_id: str) -> Runner:
        """How the generator's ``load``/``generate`` run: in its worker process (:class:`ProcessRunner`), or in
        this process when the generator declares ``runs_in_process`` or the engine was made ``in_process``."""
        with self._runners_lock:
            runner = self._runners.get(generator_id)
            if runner is None:
                generator = self.plugins.generator(generator_id)
                if self.in_process or generator.runs_in_process:
                    runner = InProcessRunner(generator)
                else:
                    record = self.plugins.plugin_of(generator_id)
                    entry = PluginEntry(record.name, record.module, PROJECT_NAME, generator_id)
                    runner = ProcessRunner(generator, entry, grace=lambda: self.services.cancel_grace,
                                           on_death=self._forget_models_of)
                self._runners[generator_id] = runner
            return runner

    def _forget_models_of(self, incarnation: Incarnation) -> None:
        """A worker process ended on its own (or was killed): its models are gone (called on its reader thread)."""
        self.cache.unload_where(lambda handle: isinstance(handle, RemoteHandle) and handle.incarnation is incarnation)

    def worker_processes(self) -> dict[str, int | None]:
        """Each generator that has run (or been preloaded) and the pid of its worker process: None when it runs in
        this process or its process is not running now."""
        with self._runners_lock:
            runners = dict(self._runners)
        return {gid: None if runner.in_process else runner.process.pid for gid, runner in runners.items()}

    def preload(self, generator_id: str, modules: list[str]) -> dict[str, Any]:
        """Start the generator's worker process and import ``modules`` there; returns ``failures`` (messages) and
        ``devices`` (those torch sees there). Blocks: call it off the GUI thread."""
        return self.runner(generator_id).preload(modules)

    # -- queries ----------------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        """The job with this id; :class:`UnknownJob` (a ``KeyError``) if there is none, or it was forgotten."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UnknownJob(job_id) from None

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def waiting(self, generator_id: str) -> list[Job]:
        queue = self._queues.get(generator_id)
        return queue.waiting() if queue else []

    # -- control ---------------------------------------------------------------------------------------

    def cancel(self, job_id: str, *, hard: bool = False) -> bool:
        """Cancel a queued or running job. From now on no progress or preview of it is delivered; a running job
        ends with ``job_cancelled`` (with its partial outputs) as soon as the generator notices, a queued one at
        once. A generator in a worker process that has not stopped within the grace period (Settings) has its
        process ended, and the job ends cancelled with what it had sent; ``hard`` ends it at once (the CLI's
        second Ctrl+C). False if the job had already finished (or was already cancelled, unless ``hard``)."""
        job = self._jobs.get(job_id)
        if job is None or job.state.finished or (job.cancelled and not (hard and not job.hard_cancelled)):
            return False
        job.request_cancel(hard=hard)
        self._close_mail(job_id)
        queue = self._queues.get(job.queue_key)
        if queue is not None and queue.remove(job_id) is not None:
            job.state = JobState.CANCELLED
            self.job_cancelled.emit(job_id, [])
            self._settle(job)
        return True

    def cancel_all(self) -> None:
        for job in list(self._jobs.values()):
            self.cancel(job.id)

    def set_paused(self, generator_id: str, paused: bool) -> None:
        self._queue_for(generator_id).set_paused(paused)

    def is_paused(self, generator_id: str) -> bool:
        queue = self._queues.get(generator_id)
        return queue is not None and queue.paused

    def move(self, job_id: str, index: int) -> bool:
        """Move a waiting job to ``index`` in its generator's queue (0 runs next)."""
        job = self._jobs.get(job_id)
        return job is not None and self._queue_for(job.queue_key).move(job_id, index)

    def retire_generator(self, generator_id: str) -> None:
        """The generator went away (its plugin was disabled while the app runs): its jobs are cancelled, its
        worker stops once its current job notices the cancel (nothing here waits for it), and its models are
        unloaded on a pool thread."""
        for job in list(self._jobs.values()):
            if job.generator_id == generator_id:
                self.cancel(job.id)
        keys = [key for key in list(self._queues) if key.partition("#")[0] == generator_id]  # with its lanes
        for key in keys:
            self._queues.pop(key).close()  # the worker's loop ends after its current job
        pairs = [self._workers.pop(key) for key in keys if key in self._workers]
        if not pairs:
            self._unload_models_of(generator_id)
            return
        for worker, thread in pairs:
            self._retired[thread] = (worker, generator_id)
            thread.finished.connect(self._on_retired)  # our slot: runs on the engine's thread
            thread.quit()  # processed once the worker's loop has returned

    @Slot()
    def _on_retired(self) -> None:
        """A retired worker's thread ended: no job can load its generator's models any more; unload them, and end
        its worker process."""
        worker_and_id = self._retired.pop(self.sender(), None)
        if worker_and_id is not None:
            self._unload_models_of(worker_and_id[1])
            with self._runners_lock:
                runner = self._runners.pop(worker_and_id[1], None)
            if runner is not None:
                QThreadPool.globalInstance().start(runner.stop)

    def _unload_models_of(self, generator_id: str) -> None:
        keys = [m.key for m in self.cache.loaded() if m.key.generator_id == generator_id]
        if keys:  # unloading collects garbage: not on the GUI thread
            QThreadPool.globalInstance().start(lambda: [self.cache.unload(key) for key in keys])

    @Slot()
    def unload_idle_models(self) -> None:
        """Unload models idle for longer than the setting, on a pool thread (unloading collects garbage, which
        must not stall the GUI thread)."""
        minutes = self.settings.idle_unload_minutes
        if minutes > 0:
            with self._runners_lock:
                runners = list(self._runners.values())

            def unload() -> None:
                self.cache.unload_idle(minutes * 60)
                for runner in runners:  # a process with nothing loaded (started ahead, say) ends too
                    runner.stop_if_idle(minutes * 60)

            QThreadPool.globalInstance().start(unload)

    def halt(self, timeout: float = 10.0) -> bool:
        """Get ready for the process to end at once (the CLI's second Ctrl+C): let no save start, and wait at most
        ``timeout`` seconds for the saves under way, so that no half-written file is left. Jobs are not cancelled
        and workers not waited for (a generator ignoring cancel may never return). Takes no lock the engine's
        thread may hold, so a signal handler may call it. Returns whether no save is still running."""
        return self.services.saves.close(timeout)

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every job, stop the workers and wait for them at most ``timeout`` seconds in all. Returns
        False if a worker is still busy (a generator that ignores cancel); it is left to finish on its own.
        Calling it again only waits again."""
        self._closed = True
        self.idle_timer.stop()
        self.cancel_all()
        for queue in self._queues.values():
            queue.close()
        deadline = time.monotonic() + timeout
        stopped = True
        QThreadPool.globalInstance().waitForDone(max(0, int((deadline - time.monotonic()) * 1000)))
        threads = [(gid, thread) for gid, (_worker, thread) in self._workers.items()]
        threads += [(gid, thread) for thread, (_worker, gid) in self._retired.items()]
        for _generator_id, thread in threads:
            thread.quit()
            thread.wait(max(0, int((deadline - time.monotonic()) * 1000)))
        for runner in self._runners.values():  # ends the worker processes, one still busy after QUIT_GRACE_S
            runner.stop(max(0.0, min(QUIT_GRACE_S, deadline - time.monotonic())))
        for generator_id, thread in threads:  # a thread waiting for a process it ended stops now
            if not thread.isFinished() and not thread.wait(int(STOP_TIMEOUT_S * 1000)):
                log.error("the worker of %s did not stop within %.0f s", generator_id, timeout)
                stopped = False
        if self.library is not None and not self.library.closed:
            self.library.close()
        return stopped

    # -- delivery (on the engine's thread) ---------------------------------------------------------------

    def _close_mail(self, job_id: str) -> None:
        mailbox = self._mailboxes.get(job_id)
        if mailbox is not None:
            mailbox.close()
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.stop()
            timer.deleteLater()

    @Slot(str)
    def _on_mail(self, job_id: str) -> None:
        limiter = self._limiters.setdefault(job_id, RateLimiter(self.min_interval, self.clock))
        wait = limiter.wait_time()
        if wait <= 0:
            self._deliver(job_id)
            return
        if job_id not in self._timers:
            timer = self._timers[job_id] = QTimer(self)
            timer.setSingleShot(True)
            timer.setProperty("job_id", job_id)
            # A slot of the engine, not a lambda: a lambda's hidden receiver object outliving the engine
            # crashed the process when an engine was dropped ("shared QObject was deleted directly").
            timer.timeout.connect(self._on_timer)
            timer.start(max(1, int(wait * 1000)))

    @Slot()
    def _on_timer(self) -> None:
        timer = self.sender()
        if timer is not None:
            self._deliver(str(timer.property("job_id")))

    def _deliver(self, job_id: str) -> None:
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.deleteLater()
        mailbox = self._mailboxes.get(job_id)
        if mailbox is None:
            return
        batch = mailbox.take()
        if not batch:
            return
        if batch.progress is not None or batch.text or batch.preview is not None:  # state changes are not rated
            self._limiters.setdefault(job_id, RateLimiter(self.min_interval, self.clock)).mark()
        emits: list[tuple[Any, tuple]] = [(self.job_state_changed, (job_id, state)) for state in batch.states]
        if batch.progress is not None:
            done, total, message = batch.progress
            emits.append((self.job_progressed, (job_id, done, total or 0, message)))
        if batch.text:
            emits.append((self.job_previewed, (job_id, batch.text)))
        if batch.preview is not None:
            emits.append((self.job_previewed, (job_id, batch.preview)))
        emits += [(self.job_warned, (job_id, warning)) for warning in batch.warnings]
        for signal, args in emits:
            if mailbox.closed:  # a slot connected to an earlier signal cancelled the job
                return
            signal.emit(*args)

    @Slot(str)
    def _on_ended(self, job_id: str) -> None:
        job = self._jobs[job_id]
        if job.state is JobState.CANCELLED:
            self._close_mail(job_id)
            self.job_cancelled.emit(job_id, list(job.outputs))
        else:
            self._deliver(job_id)  # flush: the last text chunk and progress are never lost
            self._close_mail(job_id)
            if job.state is JobState.DONE:
                self.job_finished.emit(job_id, list(job.outputs))
            else:
                self.job_failed.emit(job_id, job.error or "The job failed.")
        self._settle(job)

    def _settle(self, job: Job) -> None:
        """After a job's last signal was delivered: drop what only its delivery needed (its mailbox, its saved
        outputs), remember it as finished, and forget the oldest finished jobs over :attr:`history`."""
        self._mailboxes.pop(job.id, None)
        self._limiters.pop(job.id, None)
        job.release_outputs()
        self._finished.append(job.id)
        while len(self._finished) > self.history:
            forgotten = self._finished.popleft()
            if self._jobs.pop(forgotten, None) is not None:
                self.job_forgotten.emit(forgotten)
