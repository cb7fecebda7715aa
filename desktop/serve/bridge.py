"""The bridge between the engine (a QObject on the main thread, under Qt's event loop) and the HTTP server
(uvicorn's asyncio loop, on its own thread).

* asyncio → Qt: :meth:`EngineBridge.call` emits a queued Qt signal carrying a callable; Qt runs it on the main
  thread at its next turn (:meth:`submit` and :meth:`cancel` go this way). No engine method is ever called from the
  server's thread.
* Qt → asyncio: the engine's signals of the server's jobs are turned, on the main thread, into plain values (the
  outputs' saved files, texts and metadata) and handed to the asyncio loop with ``loop.call_soon_threadsafe``,
  where :class:`~desktop.serve.jobs.JobBoard` updates the job's record and wakes its listeners.

Nothing polls: each side sleeps in its own event loop until the other posts to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop.api import AudioOutput, ImageOutput, Output, TextOutput
from desktop.serve.jobs import JobBoard, JobRecord, OutputInfo

log = logging.getLogger(__name__)


class EngineBridge(QObject):
    """Submits and cancels the server's jobs on the engine's thread and forwards their events to ``board`` on the
    asyncio loop given to :meth:`attach`. Create it on the engine's thread."""

    _call = Signal(object)

    def __init__(self, engine: Any, board: JobBoard | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.board = board if board is not None else JobBoard()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ours: set[str] = set()  # ids of the server's jobs not yet ended (main thread only)
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)
        engine.job_state_changed.connect(self._on_state_changed)
        engine.job_progressed.connect(self._on_progressed)
        engine.job_previewed.connect(self._on_previewed)
        engine.job_warned.connect(self._on_warned)
        engine.job_finished.connect(self._on_finished)
        engine.job_failed.connect(self._on_failed)
        engine.job_cancelled.connect(self._on_cancelled)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The asyncio loop the server runs on (its lifespan calls this at start)."""
        self.loop = loop

    # -- from the asyncio side -----------------------------------------------------------------------------

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the engine's thread at Qt's next turn (thread-safe: a queued signal)."""
        self._call.emit(fn)

    async def submit(self, generator_id: str, params: Any, *, model: str | None, seed: int | None,
                     model_id: str, keep_audio: bool = False) -> tuple[JobRecord, asyncio.Queue]:
        """Submit a job on the engine's thread; once it is queued, return its record and a queue of its events
        from the first on (:meth:`JobRecord.attach`: the caller detaches it). Raises what ``Engine.submit``
        raises (``ParamError``…). ``model_id`` is the model as the API names it; ``keep_audio``: keep its audio
        outputs' samples (to encode them in another format than the saved file's) until
        :meth:`JobRecord.release_audio`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[JobRecord, asyncio.Queue]] = loop.create_future()

        def submit() -> None:  # on the engine's thread
            try:
                job = self.engine.submit(generator_id, params, model=model, seed=seed)
            except BaseException as exc:  # noqa: BLE001 — handed to the request that asked, to answer with
                loop.call_soon_threadsafe(_settle, future, None, exc)
                return
            self._ours.add(job.id)  # after submit: its job_queued signal has gone by, its record says "queued"
            loop.call_soon_threadsafe(added, job.id, job.seed)

        def added(job_id: str, job_seed: int) -> None:  # on the asyncio loop (where its asyncio parts are made)
            self._added(future, JobRecord(job_id, generator_id, model_id, job_seed, keep_audio=keep_audio))

        self.call(submit)
        return await future

    def _added(self, future: asyncio.Future, record: JobRecord) -> None:  # on the asyncio loop
        self.board.add(record)
        events = record.attach()  # before any event of the job can be applied: they are queued behind this call
        if not _settle(future, (record, events), None):  # the request went away while its job was being queued
            record.detach(events)
            self.cancel(record.id)

    def cancel(self, job_id: str) -> None:
        """Cancel a job of the server (thread-safe; it ends ``cancelled`` through the engine as any cancel)."""
        self.call(lambda: self.engine.cancel(job_id))

    def cancel_all(self) -> None:
        """Cancel every job of the server (on the engine's thread: at shutdown)."""
        for job_id in list(self._ours):
            self.engine.cancel(job_id)

    # -- on the engine's thread ----------------------------------------------------------------------------

    @Slot(object)
    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # a failure here must not end Qt's event loop; the request that asked times out
            log.exception("the server's call on the engine's thread failed")

    def _post(self, job_id: str, event: str, payload: Any) -> None:
        if self.loop is None or job_id not in self._ours:
            return
        try:
            self.loop.call_soon_threadsafe(self.board.apply, job_id, event, payload)
        except RuntimeError:  # the server has stopped (its loop is closed): nobody waits for this job any more
            pass

    @Slot(str, str)
    def _on_state_changed(self, job_id: str, state: str) -> None:
        self._post(job_id, "state", state)

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        self._post(job_id, "progress", (done, total, message))

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        if isinstance(preview, str):  # text chunks; image and audio previews are not sent on
            self._post(job_id, "preview", preview)

    @Slot(str, str)
    def _on_warned(self, job_id: str, message: str) -> None:
        self._post(job_id, "warned", message)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: list[Output]) -> None:
        self._end(job_id, "done", outputs)

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        self._end(job_id, "failed", [], message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: list[Output]) -> None:
        self._end(job_id, "cancelled", partial)

    def _end(self, job_id: str, state: str, outputs: list[Output], error: str | None = None) -> None:
        if job_id not in self._ours:
            return
        job = self.engine.job(job_id)
        infos = [_info(output, job.saved_metadata[i] if i < len(job.saved_metadata) else None)
                 for i, output in enumerate(outputs)]
        self._post(job_id, state, (infos, list(job.item_ids), error))
        self._ours.discard(job_id)


def _info(output: Output, saved_metadata: dict[str, Any] | None) -> OutputInfo:
    """What the server keeps of an output: light values, not the image (its saved file is what is sent)."""
    if isinstance(output, ImageOutput):
        kind = "image"
    elif isinstance(output, AudioOutput):
        kind = "audio"
    elif isinstance(output, TextOutput):
        kind = "text"
    else:
        kind = type(output).__name__
    saved = saved_metadata if output.saved_path is not None else None
    return OutputInfo(kind, output.saved_path, text=output.text if isinstance(output, TextOutput) else None,
                      metadata=dict(output.metadata), saved_metadata=saved, partial=output.partial,
                      audio=output if isinstance(output, AudioOutput) else None)


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> bool:
    """Resolve ``future`` unless its waiter gave up (it was cancelled); returns whether it was resolved."""
    if future.done():
        return False
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
    return True
