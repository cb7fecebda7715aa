"""``PanelHost``: a generator panel's window onto the host (GUI thread only).

A generator with its own UI implements ``create_panel(host)`` and returns a ``QWidget``. The panel talks to the
host only through this interface: it submits params, cancels, reads the chosen model, keeps what it wants to keep
(drafts, presets) in ``storage``, and follows its jobs through the host's signals.

The host's signals (``job_queued``, ``job_started``, ``job_progressed``, ``job_previewed``, ``job_finished``,
``job_failed``, ``job_cancelled`` and ``params_applied``) are Qt signals, so they are declared, with what each
carries, on :class:`desktop.api.widgets.QtPanelHost`, the base of every host (this module imports no Qt).
:class:`desktop.api.widgets.JobFollower` follows a panel's own jobs through them, and
:class:`desktop.api.widgets.ParamsForm` is the form the window builds from ``Params``, for a panel to embed.
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
    """What the host gives a panel. Every host is a :class:`desktop.api.widgets.QtPanelHost`, which declares the
    host's signals.

    (A plain base class rather than an ABC: the host implements it on a QObject, whose metaclass cannot be
    combined with ABCMeta.) A custom panel may also define ``generate()`` and ``cancel()`` methods: the window's
    Ctrl+Enter and Esc call them; and ``panel_state() -> dict | None`` (JSON-ready, what its widgets hold now) and
    ``restore_panel_state(state)``: the window keeps the first when it closes and gives it to the second on the
    next start, so edits not used in a job yet are not lost.
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

    def reuse(self, params: Any, *, seed: int | None = None, model: str | None = None) -> None:
        """Reuse what made an output, to make it again (a file dropped on the panel, an entry of the panel's own
        history such as a draft): the host shows ``params`` in the panel (through ``params_applied``: the panel's
        own slot fills its widgets), puts ``seed`` in its seed box and chooses ``model`` in its model chooser,
        with a note when that model is not installed here. A ``seed`` or ``model`` of None leaves the host's as it
        is. The next ``submit`` with no explicit seed or model then makes the same output again. (New in 0.2.1.)"""
        raise NotImplementedError

    def addon_models(self, kind: str) -> list[tuple[str, str]]:
        """(API 0.2.2) ``(label, reference)`` of the models of this generator's add-on kind ``kind`` (an
        :class:`~desktop.api.AddonKind` id) that a job can use now without a download: the demo model first (when
        the kind has one), then imported and downloaded ones; a reference goes in a param that the job hands to
        ``ctx.addon_model``. It reads a few small files per model (no sizes are measured): fill a chooser with it
        when it is shown or opened, not on every keystroke. Empty for a kind the generator does not have."""
        from desktop.api.errors import StudioloError

        generator = getattr(self, "generator", None)
        if generator is None:
            return []
        from desktop.models.addons import addon_list
        from desktop.models.inventory import installed_refs

        try:
            return installed_refs(addon_list(generator, kind))
        except StudioloError:
            return []
