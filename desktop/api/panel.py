"""``PanelHost``: a generator panel's window onto the host (GUI thread only).

A generator with its own UI implements ``create_panel(host)`` and returns a ``QWidget``. The panel talks to the
host only through this interface: it submits params, cancels, reads the chosen model, keeps what it wants to keep
(drafts, presets) in ``storage``, and follows its jobs through the host's signals.

Signals (Qt signals on the host object; connect them to your widget's methods — slots on a QObject run in the GUI
thread; avoid lambdas that capture widgets):

* ``job_queued(job_id: str)``
* ``job_started(job_id: str)``
* ``job_progressed(job_id: str, done: int, total: int, message: str)`` (``total`` is 0 when unknown)
* ``job_previewed(job_id: str, preview: object)`` — a PIL image, a text chunk or an ``AudioOutput``
* ``job_finished(job_id: str, outputs: list)``
* ``job_failed(job_id: str, message: str)``
* ``job_cancelled(job_id: str, partial: list)`` — partial outputs, possibly empty
* ``params_applied(params: object)`` — the user asked to reuse these params (e.g. from the gallery or a file
  dropped on the window); show them in the panel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop.api.generator import Generator

__all__ = ["PanelHost", "PanelStorage"]


class PanelStorage(ABC):
    """Per-generator persistent storage: small JSON values by key, and a folder for files (drafts, presets)."""

    @property
    @abstractmethod
    def directory(self) -> Path:
        """A folder that belongs to this generator's panel; created on first use."""

    @abstractmethod
    def get(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""

    @abstractmethod
    def set(self, key: str, value: Any) -> None:
        """Store a JSON-ready value under ``key`` (written atomically)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget ``key`` (no error if absent)."""

    @abstractmethod
    def keys(self) -> list[str]:
        """Every stored key."""


class PanelHost:
    """What the host gives a panel. See the module docstring for the signals.

    (A plain base class rather than an ABC: the host implements it on a QObject, whose metaclass cannot be
    combined with ABCMeta.) A custom panel may also define ``generate()`` and ``cancel()`` methods: the window's
    Ctrl+Enter and Esc call them.
    """

    generator: Generator

    def submit(self, params: Any, *, model: str | None = None, seed: int | None = None) -> str:
        """Validate and queue a job; return its id. ``model`` defaults to the model chosen in the host's model
        chooser, ``seed`` to the seed box (None or -1: random). Raises ``ParamError`` for invalid params."""
        raise NotImplementedError

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel one job, or (``None``) this panel's running and queued jobs."""
        raise NotImplementedError

    def current_model(self) -> str | None:
        """The model reference chosen in the host's model chooser."""
        raise NotImplementedError

    @property
    def storage(self) -> PanelStorage:
        """This generator's persistent storage."""
        raise NotImplementedError

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show a short message in the window's status area (or an error)."""
        raise NotImplementedError
