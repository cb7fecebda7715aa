"""``JobFollower``: the bookkeeping every panel needs to follow the jobs it submitted through its host's signals
(import it from ``desktop.api.widgets``; it imports Qt)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.api.panel import PanelHost

__all__ = ["JobFollower"]


class JobFollower(QObject):
    """Follows a panel's own jobs: submits them through the host, passes on the host's signals for those jobs
    only, forgets a job when it ends, and says when the panel has jobs running::

        self.jobs = JobFollower(host, self)
        self.jobs.progressed.connect(self._on_progressed)
        self.jobs.finished.connect(self._on_finished)
        self.jobs.running_changed.connect(self.cancel_button.setEnabled)
        ...
        job_id = self.jobs.submit(params)  # host.submit(params), and follow the job

    The signals are the host's (:class:`~desktop.api.qt_panel_host.QtPanelHost`) without the ``job_`` prefix,
    emitted for followed jobs only. ``queued`` for a job submitted with :meth:`submit` is emitted before
    :meth:`submit` returns. A job is forgotten before ``finished``, ``failed`` or ``cancelled`` is emitted for it,
    so :meth:`is_running` in those slots says whether others still run; ``running_changed(False)`` comes after the
    last one's.

    ``host`` is the panel's host: any object with the host's ``job_*`` signals (a ``QtPanelHost``).
    ``all_jobs=True`` follows every job the host reports, not only those submitted here (the host reports its
    generator's jobs, including those the Activity view runs again).
    """

    queued = Signal(str)
    """``(job_id)``: a followed job was queued."""
    started = Signal(str)
    """``(job_id)``: a followed job left the queue (its model is being loaded)."""
    progressed = Signal(str, int, int, str)
    """``(job_id, done, total, message)``: progress (``total`` is 0 when unknown)."""
    previewed = Signal(str, object)
    """``(job_id, preview)``: a PIL image, a text chunk or an ``AudioOutput`` chunk."""
    finished = Signal(str, object)
    """``(job_id, outputs)``: a followed job finished with these outputs (a list); it is no longer followed."""
    failed = Signal(str, str)
    """``(job_id, message)``: a followed job failed; it is no longer followed."""
    cancelled = Signal(str, object)
    """``(job_id, partial)``: a followed job was cancelled with these partial outputs (a list, possibly empty)."""
    running_changed = Signal(bool)
    """``True`` when the first job is followed, ``False`` when the last one followed has ended."""

    def __init__(self, host: PanelHost, parent: QObject | None = None, *, all_jobs: bool = False) -> None:
        super().__init__(parent)
        self.host = host
        self._all_jobs = all_jobs
        self._jobs: list[str] = []  # followed and not ended, oldest first
        self._submitting: list[str] | None = None  # ids the host queued during submit()
        for event in ("queued", "started", "progressed", "previewed", "finished", "failed", "cancelled"):
            getattr(host, f"job_{event}").connect(getattr(self, f"_on_{event}"))

    # -- what a panel calls ----------------------------------------------------------------------------------

    def submit(self, params: Any, *, model: str | None = None, seed: int | None = None) -> str:
        """``host.submit(params, model=…, seed=…)``, and follow the job; returns its id. What ``host.submit``
        raises (``ParamError`` for invalid params, other ``StudioloError``\\s) is raised, and nothing is followed."""
        self._submitting = []
        try:
            job_id = self.host.submit(params, model=model, seed=seed)
        finally:
            queued, self._submitting = self._submitting, None
        self.follow(job_id)
        for other in queued:
            if other != job_id and self._all_jobs:
                self.follow(other)
        for queued_id in queued:
            if queued_id in self._jobs:
                self.queued.emit(queued_id)
        return job_id

    def follow(self, job_id: str) -> None:
        """Follow a job submitted another way (e.g. straight through ``host.submit``)."""
        if job_id in self._jobs:
            return
        self._jobs.append(job_id)
        if len(self._jobs) == 1:
            self.running_changed.emit(True)

    def cancel(self, job_id: str | None = None) -> None:
        """Ask the host to cancel one followed job, or (``None``) every followed job, the newest first. The jobs
        end (``cancelled``, or ``finished`` when it was too late) when the host says so."""
        for followed in reversed(list(self._jobs)):
            if job_id is None or followed == job_id:
                self.host.cancel(followed)

    def jobs(self) -> list[str]:
        """The followed jobs that have not ended, oldest first."""
        return list(self._jobs)

    def follows(self, job_id: str) -> bool:
        """Whether ``job_id`` is followed (submitted here and not ended)."""
        return job_id in self._jobs

    def is_running(self) -> bool:
        """Whether any followed job has not ended."""
        return bool(self._jobs)

    # -- the host's signals ----------------------------------------------------------------------------------

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        if self._submitting is not None:  # ours: announced once submit() knows its id
            self._submitting.append(job_id)
            return
        if self._all_jobs:
            self.follow(job_id)
        if job_id in self._jobs:
            self.queued.emit(job_id)

    @Slot(str)
    def _on_started(self, job_id: str) -> None:
        if job_id in self._jobs:
            self.started.emit(job_id)

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if job_id in self._jobs:
            self.progressed.emit(job_id, done, total, message)

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        if job_id in self._jobs:
            self.previewed.emit(job_id, preview)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: object) -> None:
        if self._forget(job_id):
            self.finished.emit(job_id, outputs)
            self._ended()

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        if self._forget(job_id):
            self.failed.emit(job_id, message)
            self._ended()

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: object) -> None:
        if self._forget(job_id):
            self.cancelled.emit(job_id, partial)
            self._ended()

    def _forget(self, job_id: str) -> bool:
        if job_id not in self._jobs:
            return False
        self._jobs.remove(job_id)
        return True

    def _ended(self) -> None:
        if not self._jobs:
            self.running_changed.emit(False)
