"""The asyncio side of the server's jobs: one :class:`JobRecord` per job the server submitted, kept up to date from
the engine's signals (which :mod:`desktop.serve.bridge` forwards onto the asyncio loop), and the listeners of each
job (a streamed answer, an events stream) as asyncio queues.

Everything here runs on the asyncio loop's thread only, so nothing needs a lock. The board remembers at most
``history`` finished jobs (the oldest are forgotten first), as the engine does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FINISHED = 256
"""Finished jobs the board remembers for ``GET /v1/studiolo/jobs/{id}``."""

WIRE_STATES = {"queued": "queued", "loading": "running", "running": "running", "done": "done", "failed": "failed",
               "cancelled": "cancelled"}
"""The engine's job states as the API names them (loading a model is part of running)."""
FINISHED = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class OutputInfo:
    """What the server keeps of one output of a finished job: its ``kind`` (``image``, ``audio``, ``text`` or the
    output type's name), the file the library saved it as (None when unsaved), its text (text outputs), the
    generator's own ``metadata`` (token counts, why the text stopped…), what the saved file records
    (``saved_metadata``), whether it is ``partial`` (a cancelled job's), and for audio the output itself (to answer
    in a format other than the saved file's)."""

    kind: str
    path: Path | None
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    saved_metadata: dict[str, Any] | None = None
    partial: bool = False
    audio: Any = None


@dataclass(eq=False)
class JobRecord:
    """One job the server submitted, as the API shows it. ``model_id`` is the model as ``/v1/models`` names it
    (``GENERATOR_ID/REF``). Its outputs' audio samples are kept only when ``keep_audio`` (the board remembers many
    finished jobs: their files are what it serves)."""

    id: str
    generator_id: str
    model_id: str
    seed: int
    state: str = "queued"
    progress: tuple[int, int, str] = (0, 0, "")
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    outputs: list[OutputInfo] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    keep_audio: bool = False
    _listeners: list[asyncio.Queue] = field(default_factory=list, repr=False)
    _ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    async def wait(self) -> str:
        """Return the job's last state once it has ended (done, failed or cancelled)."""
        await self._ended.wait()
        return self.state

    def release_audio(self) -> None:
        """Drop the audio outputs' samples (kept for one answer when :attr:`keep_audio`): the saved files stay."""
        self.outputs = [dataclasses.replace(o, audio=None) for o in self.outputs]

    def attach(self) -> asyncio.Queue:
        """A queue of this job's events from now on, until :meth:`detach`: ``("progress", (done, total,
        message))``, ``("preview", text_chunk)``, ``("warned", message)`` and last ``("end", state)`` (put at once
        when the job has already ended)."""
        queue: asyncio.Queue = asyncio.Queue()
        if self.finished:
            queue.put_nowait(("end", self.state))
        self._listeners.append(queue)
        return queue

    def detach(self, queue: asyncio.Queue) -> None:
        if queue in self._listeners:
            self._listeners.remove(queue)

    @contextmanager
    def listen(self) -> Iterator[asyncio.Queue]:
        """:meth:`attach` for the ``with`` block."""
        queue = self.attach()
        try:
            yield queue
        finally:
            self.detach(queue)

    def _tell(self, event: str, payload: Any) -> None:
        for queue in self._listeners:
            queue.put_nowait((event, payload))


class JobBoard:
    """The server's jobs by id, updated by :meth:`apply` (called on the asyncio loop by the bridge)."""

    def __init__(self, history: int = MAX_FINISHED) -> None:
        self.history = max(1, history)
        self._jobs: dict[str, JobRecord] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    def add(self, record: JobRecord) -> None:
        self._jobs[record.id] = record

    def get(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    def apply(self, job_id: str, event: str, payload: Any) -> None:
        """One engine event of a job: ``state`` (the engine's state name), ``progress``, ``preview`` (a text
        chunk), ``warned``, or the end — ``done``/``failed``/``cancelled`` with ``(outputs, item_ids, error)``."""
        record = self._jobs.get(job_id)
        if record is None or record.finished:
            return
        if event == "state":
            record.state = WIRE_STATES.get(payload, record.state)
        elif event == "progress":
            record.progress = payload
            record._tell("progress", payload)
        elif event == "preview":
            record._tell("preview", payload)
        elif event == "warned":
            record.warnings.append(payload)
            record._tell("warned", payload)
        elif event in FINISHED:
            record.outputs, record.item_ids, record.error = payload
            if not record.keep_audio:
                record.release_audio()
            record.state = event
            record._ended.set()
            record._tell("end", event)
            self._remember_finished(job_id)

    def _remember_finished(self, job_id: str) -> None:
        self._finished[job_id] = None
        while len(self._finished) > self.history:
            forgotten, _ = self._finished.popitem(last=False)
            self._jobs.pop(forgotten, None)
