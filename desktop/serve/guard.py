"""Keeping web pages out: the API is for programs, not for browsers.

* A request carrying an ``Origin`` header comes from a web page (browsers add it to cross-origin and to ``POST``
  requests; programs do not): refused with 403. With no CORS headers ever sent, a page cannot read the answers; this
  also stops it from making the server run jobs with "simple" requests that need no preflight (a form post).
* On loopback, a ``Host`` header that does not name this machine is refused with 403: a page on a domain that
  re-resolves to 127.0.0.1 (DNS rebinding) would otherwise talk to the server as its own origin.
"""

from __future__ import annotations

from desktop.serve.openai_shapes import ApiError, send_error

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8188`` → ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class BrowserGuard:
    """ASGI middleware refusing requests from web pages (see the module docstring). ``allowed_hosts``: the host
    names a request may name (None: any — the server is not on loopback, and its key guards it)."""

    def __init__(self, app, allowed_hosts: set[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _header(scope, b"origin") is not None:
            await send_error(send, ApiError(
                403, "Requests from web pages are refused (this API is for programs; it sends no CORS headers).",
                code="origin_refused"))
            return
        host = _header(scope, b"host")
        if self.allowed_hosts is not None and host is not None:
            if host_name(host.decode("latin-1")) not in self.allowed_hosts:
                await send_error(send, ApiError(
                    403, "This server answers only requests addressed to this machine (Host: localhost or "
                         "127.0.0.1).", code="host_refused"))
                return
        await self.app(scope, receive, send)
