"""``GeneratorHost``: the window's implementation of ``desktop.api.PanelHost`` for one generator.

It forwards the engine's job signals for this generator's jobs only, and submits with the model and seed the
page's choosers hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Slot

from desktop.api import Generator, PanelStorage
from desktop.api.widgets import QtPanelHost
from desktop.engine.engine import Engine, connect_job_signals
from desktop.storage import JsonPanelStorage


class GeneratorHost(QtPanelHost):
    """One generator page's host (the signals are declared on :class:`QtPanelHost`)."""

    def __init__(self, engine: Engine, generator: Generator, *, model: Callable[[], str | None],
                 seed: Callable[[], int | None], message: Callable[[str, bool], None],
                 reuse: Callable[..., None] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.generator = generator
        self._model = model
        self._seed = seed
        self._message = message
        self._reuse = reuse  # the page's: fills its seed box and model chooser too
        self._storage = JsonPanelStorage(generator.id)
        connect_job_signals(engine, self)

    # -- PanelHost ---------------------------------------------------------------------------------------------

    def submit(self, params: Any, *, model: str | None = None, seed: int | None = None) -> str:
        chosen_seed = seed if seed is not None else self._seed()
        return self.engine.submit(self.generator.id, params, model=model or self._model(), seed=chosen_seed).id

    def cancel(self, job_id: str | None = None) -> None:
        if job_id is not None:
            self.engine.cancel(job_id)
            return
        for job in self.engine.jobs():
            if job.generator_id == self.generator.id and not job.state.finished:
                self.engine.cancel(job.id)

    def current_model(self) -> str | None:
        return self._model()

    @property
    def storage(self) -> PanelStorage:
        return self._storage

    def show_message(self, text: str, *, error: bool = False) -> None:
        self._message(text, error)

    def reuse(self, params: Any, *, seed: int | None = None, model: str | None = None) -> None:
        if self._reuse is not None:
            self._reuse(params, seed=seed, model=model)
        else:
            self.apply_params(params)

    def apply_params(self, params: Any) -> None:
        """Ask the panel to show these params (reuse parameters)."""
        self.params_applied.emit(params)

    # -- engine signals, filtered to this generator --------------------------------------------------------

    def _mine(self, job_id: str) -> bool:
        try:
            job = self.engine.job(job_id)
        except KeyError:
            return False
        # (a training job is its Training window's, not the panel's: no outputs, no previews in the panel)
        return job.generator_id == self.generator.id and getattr(job, "training", None) is None

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        if self._mine(job_id):
            self.job_queued.emit(job_id)

    @Slot(str, str)
    def _on_state_changed(self, job_id: str, state: str) -> None:
        if state == "loading" and self._mine(job_id):
            self.job_started.emit(job_id)

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if self._mine(job_id):
            self.job_progressed.emit(job_id, done, total, message)

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        if self._mine(job_id):
            self.job_previewed.emit(job_id, preview)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: object) -> None:
        if self._mine(job_id):
            self.job_finished.emit(job_id, outputs)

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        if self._mine(job_id):
            self.job_failed.emit(job_id, message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: object) -> None:
        if self._mine(job_id):
            self.job_cancelled.emit(job_id, partial)
