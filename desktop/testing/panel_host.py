"""``RecordingPanelHost``: a PanelHost for testing a custom panel without the engine or a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import validate
from desktop.api.widgets import QtPanelHost
from desktop.storage import JsonPanelStorage


class RecordingPanelHost(QtPanelHost):
    """The host's signals (declared on :class:`QtPanelHost`; emit them to play the engine's part), real storage
    under ``root``, and what the panel did recorded: ``submitted`` params (validated, as the engine does),
    ``cancelled`` job ids, ``messages``, ``reused`` (params, seed, model) — a reuse also sets :attr:`seed` and
    :attr:`model`, the host's "seed box" and "model chooser", and emits ``params_applied`` as the real host does.

    ``submit`` returns ``job-1``, ``job-2``… and emits ``job_queued`` before returning, as the real host does.
    """

    def __init__(self, root: Path, *, generator_id: str = "test", model: str | None = "demo") -> None:
        super().__init__()
        self._storage = JsonPanelStorage(generator_id, root=root)
        self.submitted: list[Any] = []
        self.cancelled: list[str | None] = []
        self.messages: list[tuple[str, bool]] = []
        self.reused: list[tuple[Any, int | None, str | None]] = []
        self.model = model
        self.seed: int | None = None

    def submit(self, params: Any, *, model: str | None = None, seed: int | None = None) -> str:
        params = validate(params)
        self.submitted.append(params)
        job_id = f"job-{len(self.submitted)}"
        self.job_queued.emit(job_id)
        return job_id

    def cancel(self, job_id: str | None = None) -> None:
        self.cancelled.append(job_id)

    def current_model(self) -> str | None:
        return self.model

    @property
    def storage(self) -> JsonPanelStorage:
        return self._storage

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.messages.append((text, error))

    def reuse(self, params: Any, *, seed: int | None = None, model: str | None = None) -> None:
        self.reused.append((params, seed, model))
        if seed is not None:
            self.seed = seed
        if model is not None:
            self.model = model
        self.params_applied.emit(params)
