"""Talking to one configured server, shared by the three remote generators: the client, its limits, its errors.

* :class:`RemoteClient` — for one job (or one listing): the ``httpx2`` client of :mod:`plugins.remote.transport`
  (connect and read timeouts, a byte cap, no ambient credentials) and the official OpenAI client over it, JSON
  requests with their status checked, and :meth:`RemoteClient.abort` for a cancel.
* :func:`remote_error` — any exception met while talking to a server → the :class:`~desktop.api.StudioloError` a
  person can act on: :class:`~desktop.api.ServerUnavailableError` (unreachable, gone mid-answer, silent, overloaded:
  502/503/504/429), :class:`~plugins.remote.errors.KeyRefusedError` (401/403),
  :class:`~desktop.api.ModelNotFoundError` (404 for a model), :class:`~plugins.remote.errors.RequestRefusedError`
  (400/413/422, with the server's reason), :class:`~desktop.api.GenerationError` (a server error, an answer that is
  not JSON or too large, an error event mid-stream).
* :func:`configured_server` — the server a ``remote://SERVER/MODEL`` reference names, read fresh from the settings.

Nothing heavy is imported here at module level: ``httpx2`` and ``openai`` only when a client is made.
"""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Iterator
from typing import Any

from desktop.api import (
    GenerationError,
    ModelNotFoundError,
    RemoteServer,
    ServerUnavailableError,
    StudioloError,
    parse_remote_ref,
    remote_servers,
)
from plugins.remote.errors import KeyRefusedError, RequestRefusedError

__all__ = ["CONNECT_TIMEOUT_S", "MAX_MEDIA_BYTES", "ServerAnswer", "RemoteClient", "configured_server",
           "remote_error", "server_message", "require_client"]

CONNECT_TIMEOUT_S = 5.0
"""Seconds a server has to accept a connection (on a LAN it takes milliseconds; longer means it is not there)."""
MAX_MEDIA_BYTES = 256 * 1024 * 1024
"""The most bytes an image or audio answer may have (a 4096² PNG is about 50 MB; base64 adds a third)."""
SETTINGS_HINT = "Check the server's address and key in Settings → Servers."
_MESSAGE_CHARS = 300  # the most of a server's own message quoted in an error


class ServerAnswer(Exception):
    """An HTTP error status from a server (for requests made without the OpenAI client): ``status``, the parsed
    ``body`` (JSON, else text) and ``retry_after`` (its Retry-After header)."""

    def __init__(self, status: int, body: Any, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


def require_client() -> None:
    """Import the OpenAI client (and its ``httpx2``) or say how to install it (a :class:`GenerationError`)."""
    try:
        import httpx2  # noqa: F401 - imported to check it is there
        import openai  # noqa: F401 - imported to check it is there
    except ImportError as exc:
        raise GenerationError(f"Remote servers need the OpenAI client, which is not installed ({exc.name}).",
                              hint="Install it with: pip install 'studiolo[remote]'") from exc


def configured_server(name: str) -> RemoteServer:
    """The configured server named ``name`` (settings read now: a key changed in Settings counts at once)."""
    servers = remote_servers()
    for server in servers:
        if server.name == name:
            return server
    names = ", ".join(s.name for s in servers)
    raise ModelNotFoundError(f"No server named {name!r} is configured.",
                             hint=(f"The servers are: {names}. " if names else "") +
                                  "Add it in Settings → Servers or with `studiolo servers add NAME URL`.")


def server_and_model(ref: str | None, generator_name: str) -> tuple[str, str]:
    """``(server name, model id)`` of the job's model reference; a clear error when there is none."""
    if not ref:
        raise ModelNotFoundError(f"{generator_name} needs a model on a server.",
                                 hint="Choose one of your servers' models (remote://SERVER/MODEL), or add a server in "
                                      "Settings → Servers.")
    return parse_remote_ref(ref)


class RemoteClient:
    """One job's (or listing's) line to ``server``: see the module docstring. Use it as a context manager (the
    connections are closed at the end); :meth:`abort` may be called from another thread."""

    def __init__(self, server: RemoteServer, *, read_timeout: float, max_bytes: int,
                 connect_timeout: float | None = None) -> None:
        require_client()
        from plugins.remote.transport import http_client, no_key_headers

        self.server = server
        self.connect_timeout = CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout
        self.read_timeout = read_timeout
        self.http, self._aborter = http_client(server.api_key, connect_timeout=self.connect_timeout,
                                               read_timeout=read_timeout, max_bytes=max_bytes)
        self.extra_headers = no_key_headers(server.api_key)
        self._openai: Any = None

    @property
    def openai(self) -> Any:
        """The official OpenAI client over this client's connections (made on first use). Pass
        :attr:`extra_headers` with each request."""
        if self._openai is None:
            from plugins.remote.transport import openai_client

            self._openai = openai_client(self.http, self.server.url, self.server.api_key,
                                         connect_timeout=self.connect_timeout, read_timeout=self.read_timeout)
        return self._openai

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` under the server's base URL (``models`` → ``http://host:port/v1/models``)."""
        return f"{self.server.url}/{path.lstrip('/')}"

    def get_json(self, path: str) -> Any:
        """GET ``path``: its JSON (a :class:`ServerAnswer` for an error status; ``ValueError`` for what is not JSON)."""
        return self.request_json("GET", path)

    def request_json(self, method: str, path: str, body: Any = None) -> Any:
        """``method`` ``path`` with the JSON ``body`` (if any); the answer's JSON."""
        response = self.http.request(method, self.url(path), json=body)
        check_status(response)
        return json.loads(response.content)

    def abort(self) -> None:
        """Shut this client's connections now (any thread): a read blocked on the server returns at once, and no
        further request is sent."""
        self._aborter.abort()

    @property
    def aborted(self) -> bool:
        return self._aborter.aborted

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_status(response: Any) -> None:
    """Raise :class:`ServerAnswer` for an HTTP error (or redirect) status of an ``httpx2`` response (read first)."""
    if response.status_code < 300:
        return
    response.read()
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        body = response.content.decode("utf-8", errors="replace")
    raise ServerAnswer(response.status_code, body, response.headers.get("retry-after"))


# --------------------------------------------------------------------------------------------------- errors


def remote_error(exc: BaseException, server: RemoteServer, *, model_id: str | None = None,
                 timeout: float | None = None) -> StudioloError:
    """The error a person sees for ``exc``, met while asking ``server`` (for ``model_id``; ``timeout``: the read
    timeout that was in force). See the module docstring for the kinds."""
    if isinstance(exc, StudioloError):
        return exc
    from plugins.remote import transport

    where = f"{server.name} ({server.url})"
    chain = list(_causes(exc))

    too_large = _first(chain, transport.ResponseTooLarge)
    if too_large is not None:
        return GenerationError(f"{where} sent an answer larger than {_size(too_large.limit)}: refused.",
                               hint="Ask for less (fewer tokens, fewer or smaller images), or check that the "
                                    "server is the OpenAI-compatible server you meant. " + SETTINGS_HINT)
    compressed = _first(chain, transport.CompressedResponse)
    if compressed is not None:
        return GenerationError(f"{where} sent a compressed answer ({compressed.encoding}) although Studiolo asked "
                               "for none: refused.",
                               hint="Turn off compression for this client on the server or on a proxy in between.")
    status = _status(chain)
    if status is not None:
        return _status_error(*status, server=server, where=where, model_id=model_id)
    import httpx2
    import openai

    if _first(chain, httpx2.ConnectTimeout) is not None:
        return ServerUnavailableError(f"{where} did not accept a connection within {CONNECT_TIMEOUT_S:g} s.",
                                      hint="Check that the server is running and reachable from this computer. "
                                           + SETTINGS_HINT, server=server.name)
    if _first(chain, httpx2.TimeoutException) is not None or _first(chain, openai.APITimeoutError) is not None:
        waited = f" for {timeout:g} s" if timeout else ""
        return ServerUnavailableError(f"{where} stopped answering: nothing came{waited}.",
                                      hint="The server may be overloaded or stuck. Try again, or use another server.",
                                      server=server.name)
    sse = _first(chain, httpx2.SSEError)
    if sse is not None:
        return GenerationError(f"{where} sent events Studiolo cannot read: {sse}",
                               hint="Check that the server is a Studiolo server (`studiolo serve`) of this version.")
    if _first(chain, httpx2.ConnectError) is not None:
        return ServerUnavailableError(f"{where} cannot be reached: {_connect_reason(chain)} — is it running?",
                                      hint="Start the server, or check its address and port in Settings → Servers.",
                                      server=server.name)
    if _first(chain, transport.Aborted) is not None:
        return ServerUnavailableError(f"The connection to {where} was closed (the job was cancelled).",
                                      server=server.name)
    if (_first(chain, httpx2.TransportError) is not None or _first(chain, openai.APIConnectionError) is not None
            or _first(chain, ConnectionError) is not None):
        return ServerUnavailableError(f"{where} closed the connection before its answer was complete.",
                                      hint="The server may have stopped or restarted. Try again, or use another "
                                           "server.", server=server.name)
    if _first(chain, ValueError) is not None or _first(chain, openai.APIResponseValidationError) is not None:
        return GenerationError(f"{where} sent an answer that is not the JSON an OpenAI-compatible server sends.",
                               hint="Check that the server's URL is its OpenAI-compatible API (it usually ends in "
                                    "/v1). " + SETTINGS_HINT)
    api_error = _first(chain, openai.APIError)
    if api_error is not None:  # no status: an error event in the middle of a stream
        message = server_message(getattr(api_error, "body", None)) or str(api_error)
        return GenerationError(f"{where} reported an error: {message}",
                               hint="The server's own log says more. Try again, or use another server.")
    return GenerationError(f"Talking to {where} failed: {type(exc).__name__}: {exc}",
                           hint="The server's own log may say more.")


def _status_error(code: int, body: Any, retry_after: str | None, *, server: RemoteServer, where: str,
                  model_id: str | None) -> StudioloError:
    message = server_message(body)
    said = f": {message}" if message else "."
    if code in (401, 403):
        text = (f"{where} refused the API key{said}" if server.api_key
                else f"{where} needs an API key{said}")
        return KeyRefusedError(text, hint=f"Set the key of {server.name} in Settings → Servers (`studiolo serve` "
                                          "prints its key when it starts).", server=server.name)
    if code == 404:
        if model_id is not None:
            return ModelNotFoundError(f"{where} has no model {model_id!r}{said}",
                                      hint="Choose one of the models the server lists (the model chooser shows "
                                           "them), or check the model's name on the server.")
        return ModelNotFoundError(f"{where} does not offer this{said}",
                                  hint="Check that the server is an OpenAI-compatible server of this kind. "
                                       + SETTINGS_HINT)
    if code in (400, 413, 422):
        param = body.get("param") if isinstance(body, dict) and isinstance(body.get("param"), str) else None
        what = "the request as too large" if code == 413 else "the request"
        return RequestRefusedError(f"{where} refused {what}{said}", server=server.name, param=param,
                                   hint="Change what the server names (or leave out a setting it does not take) "
                                        "and try again.")
    if code == 429:
        wait = f" (it asks to wait {retry_after} s)" if retry_after and retry_after.strip().isdigit() else ""
        return ServerUnavailableError(f"{where} is busy: too many requests{wait}.",
                                      hint="Wait a moment and try again, or use another server.", server=server.name)
    if code in (502, 503, 504):
        return ServerUnavailableError(f"{where} is unavailable (HTTP {code}){said}",
                                      hint="It may be starting, overloaded or restarting: try again later, or use "
                                           "another server.", server=server.name)
    if 300 <= code < 400:
        return GenerationError(f"{where} answered with a redirect (HTTP {code}), which Studiolo does not follow.",
                               hint="Give the server's final address (often https://, or ending in /v1). "
                                    + SETTINGS_HINT)
    return GenerationError(f"{where} failed (HTTP {code}){said}", hint="The server's own log says more.")


def server_message(body: Any) -> str:
    """The server's own reason in an error body (OpenAI's ``{"error": {"message"}}``, FastAPI's ``detail``, plain
    text…), on one line and cut to a readable length; empty when it gives none."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            text = inner.get("message") or inner.get("detail") or ""
        else:
            text = inner if isinstance(inner, str) else ""
        if not text and isinstance(body.get("detail"), (str, list)):
            text = body["detail"]
        if not isinstance(text, str):
            text = json.dumps(text)[:_MESSAGE_CHARS]
    elif isinstance(body, str):
        text = body
    else:
        text = ""
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS - 1] + "…"


def _status(chain: list[BaseException]) -> tuple[int, Any, str | None] | None:
    """``(status, body, retry_after)`` of the first HTTP error status in the chain (the OpenAI client's or ours)."""
    import openai

    for exc in chain:
        if isinstance(exc, ServerAnswer):
            return exc.status, exc.body, exc.retry_after
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code, exc.body, exc.response.headers.get("retry-after")
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first(chain: list[BaseException], kind: type) -> Any:
    return next((e for e in chain if isinstance(e, kind)), None)


def _connect_reason(chain: list[BaseException]) -> str:
    if _first(chain, socket.gaierror) is not None:
        return "its name cannot be found"
    os_error = next((e for e in chain if isinstance(e, OSError) and e.errno), None)
    reasons = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to the host",
               errno.ENETUNREACH: "the network is unreachable", errno.ECONNRESET: "the connection was reset"}
    if os_error is not None and os_error.errno in reasons:
        return reasons[os_error.errno]
    text = str(chain[-1]) if chain else ""
    return "connection refused" if "refused" in text.lower() else (text or "the connection failed")


def _size(n: int) -> str:
    """Bytes for a person, in units of 1024: ``256 MiB``, ``2.9 KiB``, ``900 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"
