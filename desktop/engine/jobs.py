"""Jobs and the per-generator queue they wait in."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from desktop.api import Output

MAX_SEED = 2**63 - 1


class JobState(str, Enum):
    QUEUED = "queued"
    LOADING = "loading"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


def choose_seed(seed: int | None) -> int:
    """The job's seed: the one given, or a random one for None or -1."""
    if seed is None or seed == -1:
        return secrets.randbelow(2**32)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        from desktop.api import ParamError

        raise ParamError("seed", seed, f"must be a whole number from 0 to {MAX_SEED}, or -1 for a random seed")
    return seed


def new_job_id() -> str:
    return secrets.token_hex(6)


@dataclass(eq=False)
class Job:
    """One run of a generator. The worker thread updates it and then signals; read it after the signal."""

    generator_id: str
    params: Any
    model: str | None
    seed: int
    id: str = field(default_factory=new_job_id)
    state: JobState = JobState.QUEUED
    progress: tuple[int, int | None, str] = (0, None, "")
    outputs: list[Output] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)
    saved_metadata: list[dict[str, Any]] = field(default_factory=list)  # what each saved file records, in order
    item_ids: list[int] = field(default_factory=list)
    error: str | None = None
    error_detail: str | None = None
    lane: str | None = None  # a job queue of its own beside the generator's (Engine.submit's ``lane``)
    error_type: str | None = None  # the StudioloError subclass a failed job ended with ("ServerUnavailableError")
    device: str | None = None
    watermark: bool = False  # the generator is asked to mark its outputs invisibly (RunContext.watermark)
    save: bool = True  # False: the outputs are only delivered (a reproduce re-run), never saved nor indexed
    training: Any = None  # a TrainingRequest (desktop.engine.train_job) when the job trains instead of generating
    pause_event: threading.Event = field(default_factory=threading.Event, repr=False)
    steps_after_cancel: int = 0
    created: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    _cancel_listeners: list[Callable[[bool], None]] = field(default_factory=list, init=False, repr=False)
    _pause_listeners: list[Callable[[], None]] = field(default_factory=list, init=False, repr=False)
    _listeners_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    hard_cancelled: bool = False

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def queue_key(self) -> str:
        """The queue (and worker thread) the job runs on: its generator's, or ``GENERATOR#LANE``."""
        return self.generator_id if self.lane is None else f"{self.generator_id}#{self.lane}"

    def request_cancel(self, *, hard: bool = False) -> None:
        """Cancel the job: set its cancel event and tell whoever listens (the thread waiting for its worker
        process). ``hard``: do not wait for the generator to notice (end its process now)."""
        with self._listeners_lock:
            self.cancel_event.set()
            self.hard_cancelled = self.hard_cancelled or hard
            listeners = list(self._cancel_listeners)
        for listener in listeners:
            listener(hard)

    @contextmanager
    def cancel_listener(self, listener: Callable[[bool], None]) -> Iterator[None]:
        """Call ``listener(hard)`` on each cancel request during the ``with`` block, and at once if the job is
        already cancelled."""
        with self._listeners_lock:
            self._cancel_listeners.append(listener)
            already, hard = self.cancel_event.is_set(), self.hard_cancelled
        if already:
            listener(hard)
        try:
            yield
        finally:
            with self._listeners_lock:
                self._cancel_listeners.remove(listener)

    def request_pause(self) -> bool:
        """Pause a training job: it writes a checkpoint after its current step, then ends (``training.paused``);
        resume it with a new job. False (nothing done) for a job that does not train."""
        if self.training is None:
            return False
        with self._listeners_lock:
            self.pause_event.set()
            listeners = list(self._pause_listeners)
        for listener in listeners:
            listener()
        return True

    @contextmanager
    def pause_listener(self, listener: Callable[[], None]) -> Iterator[None]:
        """Call ``listener()`` on a pause request during the ``with`` block, and at once if one came before."""
        with self._listeners_lock:
            self._pause_listeners.append(listener)
            already = self.pause_event.is_set()
        if already:
            listener()
        try:
            yield
        finally:
            with self._listeners_lock:
                self._pause_listeners.remove(listener)

    def release_outputs(self) -> bool:
        """Drop the outputs (the heavy part of a finished job) when every one of them is saved: the library holds
        them from now on, and the engine's signal already handed them to whoever shows them. Outputs that were
        not saved (a full disk, an engine without a store) stay, for "save as". Returns whether they were
        dropped."""
        if not self.outputs or len(self.saved) < len(self.outputs):
            return False
        self.outputs = []
        return True


class UnknownJob(KeyError):
    """No job of this session has this id (any more): the engine forgets the oldest finished jobs."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job {self.job_id!r} in this session's history (finished jobs are forgotten, oldest first)"


class JobQueue:
    """A generator's FIFO queue of jobs: the worker takes from it; the host can cancel, reorder and pause."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()
        self._paused = False
        self._closed = False

    def put(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the queue is closed")
            self._jobs.append(job)
            self._cond.notify_all()

    def take(self) -> Job | None:
        """Block until a job can run (the queue is not paused) and return it; None once the queue is closed."""
        with self._cond:
            while not self._closed and (self._paused or not self._jobs):
                self._cond.wait()
            return None if self._closed else self._jobs.popleft()

    def remove(self, job_id: str) -> Job | None:
        """Take a waiting job out of the queue (None if it is not waiting)."""
        with self._cond:
            for job in self._jobs:
                if job.id == job_id:
                    self._jobs.remove(job)
                    return job
            return None

    def drain(self) -> list[Job]:
        """Take every waiting job out of the queue."""
        with self._cond:
            jobs, self._jobs = list(self._jobs), deque()
            return jobs

    def move(self, job_id: str, index: int) -> bool:
        """Move a waiting job to position ``index`` (0 runs next). False if it is not waiting."""
        with self._cond:
            job = next((j for j in self._jobs if j.id == job_id), None)
            if job is None:
                return False
            self._jobs.remove(job)
            self._jobs.insert(max(0, min(index, len(self._jobs))), job)
            return True

    def set_paused(self, paused: bool) -> None:
        """A paused queue keeps its jobs but starts none (the running one finishes)."""
        with self._cond:
            self._paused = paused
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def waiting(self) -> list[Job]:
        with self._cond:
            return list(self._jobs)
