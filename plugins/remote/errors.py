"""The remote generators' own errors (both :class:`~desktop.api.StudioloError`\\ s, shown with their hint).

The others come from ``desktop.api``: :class:`~desktop.api.ServerUnavailableError` (unreachable, gone mid-answer,
overloaded: the job may work on another server or later), :class:`~desktop.api.ModelNotFoundError` (the server has
no such model) and :class:`~desktop.api.GenerationError` (the server failed, or sent something that cannot be used).
"""

from __future__ import annotations

from desktop.api import StudioloError

__all__ = ["KeyRefusedError", "RequestRefusedError"]


class KeyRefusedError(StudioloError):
    """The server refused the API key (HTTP 401/403): set the right one in Settings → Servers."""

    def __init__(self, message: str, *, hint: str | None = None, server: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.server = server


class RequestRefusedError(StudioloError):
    """The server refused the request as invalid (HTTP 400/413/422), with its own reason: a parameter it does not
    accept, a prompt too long for its model…"""

    def __init__(self, message: str, *, hint: str | None = None, server: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.server = server
        self.param = param
