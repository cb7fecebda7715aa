"""The errors a person sees.

Every error Studiolo shows to a user is a :class:`StudioloError`: a *message* saying what happened and, where
there is one, a *hint* saying what to do about it. Plugins raise these (or let ordinary exceptions escape, which
the host wraps in a :class:`GenerationError` with the traceback kept for the log).

Write messages for the person in front of the app, not for the developer::

    raise ModelFormatError(
        f"{path.name} is not a valid safetensors file (it ends after {size} bytes).",
        hint="Download the model again, or choose another file.",
    )
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop.api.outputs import Output

__all__ = ["StudioloError", "ParamError", "ModelNotFoundError", "ModelFormatError", "InsufficientMemoryError",
           "GenerationError", "JobCancelled"]


class StudioloError(Exception):
    """Base of every user-facing error.

    ``message`` says what happened; ``hint`` (optional) says what the person can do. ``str(error)`` joins them.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ParamError(StudioloError, ValueError):
    """A parameter value is not allowed. Names the field, the value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, *, hint: str | None = None) -> None:
        shown = _short_repr(value)
        super().__init__(f"Invalid value for {field!r}: {shown} — {allowed}.", hint=hint)
        self.field = field
        self.value = value
        self.allowed = allowed


class ParamSchemaError(StudioloError, TypeError):
    """A plugin's ``Params`` class is not a valid schema (a mistake of the plugin's author, found at load)."""


class ModelError(StudioloError):
    """Base for problems with a model: missing, unreadable, of the wrong kind."""


class ModelNotFoundError(ModelError):
    """The model reference does not lead to any model (no such folder, file or hub id, or not downloaded)."""


class ModelFormatError(ModelError):
    """The model's files exist but cannot be used: corrupt, truncated, pickle-format without permission, or made
    for another kind of generator."""


class DownloadError(ModelError):
    """A model could not be downloaded: offline, the hub unreachable, access refused (gated or private model),
    or the download failed halfway (it resumes next time)."""


class DiskFullError(StudioloError):
    """Not enough free disk space to download or save; nothing partial is left behind."""


class InsufficientMemoryError(StudioloError):
    """Not enough memory (RAM or device memory) to load or run the model."""


class GenerationError(StudioloError):
    """Generation failed. The host also wraps unexpected plugin exceptions in this, keeping the traceback."""


class JobCancelled(StudioloError):
    """Raised (by :meth:`RunContext.raise_if_cancelled`) to end a job the user cancelled.

    ``partial`` carries whatever was made before the cancel (the text so far, the clips so far); the host
    delivers it once, marked partial.
    """

    def __init__(self, partial: Sequence[Output] = (), message: str = "Cancelled.") -> None:
        super().__init__(message)
        self.partial = list(partial)


class PluginError(StudioloError):
    """A plugin problem the host reports: unknown plugin name, failed plugin, incompatible plugin."""


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not turn a clear error into a traceback
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
