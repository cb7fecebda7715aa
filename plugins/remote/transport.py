"""The HTTP client of one job or listing: limits, no ambient credentials, and an abort for a cancel.

Imported only inside the functions that talk to a server (it imports ``httpx2``, the OpenAI client's HTTP library,
and ``openai``: the ``remote`` extra), never when the plugin registers.

* :func:`http_client` — an ``httpx2.Client`` that connects within ``connect_timeout`` seconds, waits at most
  ``read_timeout`` seconds for each next piece of an answer, refuses an answer of more than ``max_bytes`` bytes
  (:class:`ResponseTooLarge`, raised while reading: nothing past the cap is kept) and a compressed one (it asks for
  ``identity``: a cap on compressed bytes would not bound what they inflate to), follows no redirect, and reads
  nothing from the environment (no proxy variables, no ``.netrc``): the servers the user added are talked to
  directly, with the key the user gave for each and no other.
* :class:`Aborter` — the sockets the client opened; :meth:`Aborter.abort` shuts them from any thread, so a job
  blocked on a silent server ends at once when the user cancels (and the server sees the client go, which cancels
  its job), and refuses any further request.
* :func:`openai_client` — the official OpenAI client over that ``httpx2`` client, with this server's key only (never
  the ``OPENAI_*`` variables of this machine) and no retries (a batch retries on another server itself).
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx2

__all__ = ["Aborter", "Aborted", "CompressedResponse", "ResponseTooLarge", "http_client", "openai_client"]


class ResponseTooLarge(Exception):
    """The answer went past the byte cap of its request (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class CompressedResponse(Exception):
    """The server compressed its answer although it was asked not to (``encoding``: its Content-Encoding)."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"the answer is compressed ({encoding})")
        self.encoding = encoding


class Aborted(Exception):
    """A request on a client whose job was cancelled."""


class Aborter:
    """The sockets one client opened (found through httpcore's ``trace`` extension as each connection is made), to
    shut down from another thread: :meth:`abort`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.aborted = False

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace callback: keeps the socket of each new connection."""
        if name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if not self.aborted:
                self._sockets.append(sock)
                return
        _shut(sock)  # connected just as the job was cancelled

    def abort(self) -> None:
        """Shut down every connection the client made (a read blocked on one returns at once) and refuse new
        requests. Safe on any thread, and more than once."""
        with self._lock:
            self.aborted = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its connection, or never fully connected
        pass


class _CappedStream(httpx2.SyncByteStream):
    """A response body that raises :class:`ResponseTooLarge` once more than ``limit`` bytes came."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self._count = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._count += len(chunk)
            if self._count > self._limit:
                raise ResponseTooLarge(self._limit)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _GuardedTransport(httpx2.BaseTransport):
    """The plain HTTP transport, with the byte cap, the compression refusal and the aborter's trace."""

    def __init__(self, inner: httpx2.BaseTransport, max_bytes: int, aborter: Aborter) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._aborter = aborter

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._aborter.aborted:
            raise Aborted("the job was cancelled")
        request.extensions = {**request.extensions, "trace": self._aborter.trace}
        response = self._inner.handle_request(request)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        length = response.headers.get("content-length", "").strip()
        if encoding not in ("", "identity"):
            response.close()
            raise CompressedResponse(encoding)
        if length.isdigit() and int(length) > self._max_bytes:
            response.close()
            raise ResponseTooLarge(self._max_bytes)
        response.stream = _CappedStream(response.stream, self._max_bytes)
        return response

    def close(self) -> None:
        self._inner.close()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings every job's client shares: the system's certificate authorities, read once (reading them
    took 20 ms a job, a sixth of a 128-token answer from a fast server). Verification stays on."""
    return httpx2.create_ssl_context(trust_env=False)


def http_client(api_key: str | None, *, connect_timeout: float, read_timeout: float,
                max_bytes: int) -> tuple[httpx2.Client, Aborter]:
    """A client for one job or listing (see the module docstring) and its :class:`Aborter`."""
    aborter = Aborter()
    headers = {"Accept-Encoding": "identity"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    transport = _GuardedTransport(httpx2.HTTPTransport(verify=_tls_context(), trust_env=False), max_bytes, aborter)
    client = httpx2.Client(transport=transport, headers=headers, trust_env=False, follow_redirects=False,
                           timeout=httpx2.Timeout(read_timeout, connect=connect_timeout))
    return client, aborter


def openai_client(http: httpx2.Client, base_url: str, api_key: str | None, *, connect_timeout: float,
                  read_timeout: float) -> Any:
    """The OpenAI client over ``http`` for the server at ``base_url``: its key or none (then no Authorization
    header at all: pass :func:`no_key_headers` with each request), never this machine's ``OPENAI_*`` variables."""
    import openai

    return openai.OpenAI(
        api_key=api_key or "", base_url=base_url, http_client=http, max_retries=0,
        timeout=httpx2.Timeout(read_timeout, connect=connect_timeout),
        # OPENAI_ORG_ID / OPENAI_PROJECT_ID are this machine's settings for OpenAI itself: sent to no other server
        default_headers={"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},
        # a server without a key: no Authorization header, rather than OPENAI_API_KEY or a made-up key
        _enforce_credentials=False,
    )


def no_key_headers(api_key: str | None) -> dict[str, Any]:
    """The ``extra_headers`` of each OpenAI-client request: for a server without a key, the Authorization header
    left out (the client insists on one being given or omitted)."""
    import openai

    return {} if api_key else {"Authorization": openai.Omit()}
