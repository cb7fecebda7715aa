"""The request limits, as ASGI middleware: the size of a request's body, and a rate per client.

* :class:`BodyLimit` refuses a body over the limit with 413: at once when ``Content-Length`` says so, and while it
  is read when it comes without one (chunked) or lies — the bytes are counted as they arrive, and reading past the
  limit raises the 413 (:class:`~desktop.serve.openai_shapes.ApiError`, which the app answers with).
* :class:`RateLimit` gives each client (its IP address) a token bucket: ``per_minute`` requests in a burst,
  refilled at ``per_minute`` a minute; a request finding the bucket empty gets 429 with ``Retry-After``. The clock
  is injectable, so that tests need no waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from desktop.serve.openai_shapes import RATE_LIMIT, ApiError, send_error

MAX_CLIENTS = 10_000
"""Buckets kept before the full ones (clients idle long enough) are dropped."""


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than this server accepts ({limit} bytes; the server's "
                         "--max-body-mb).", code="body_too_large")


class BodyLimit:
    """ASGI middleware: request bodies of at most ``limit`` bytes."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await send_error(send, too_large(self.limit))
                    return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large(self.limit)
            return message

        await self.app(scope, counted, send)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimit:
    """ASGI middleware: at most ``per_minute`` requests a minute per client address (0: no limit)."""

    def __init__(self, app, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        """Take a token for ``client``: 0 when it had one, else the seconds until it will."""
        now, capacity, rate = self.clock(), float(self.per_minute), self.per_minute / 60.0
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def _forget_idle(self, now: float) -> None:
        rate = self.per_minute / 60.0
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * rate >= self.per_minute:
                del self._buckets[client]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.per_minute <= 0:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.take(client)
        if wait > 0:
            await send_error(send, ApiError(
                429, f"Too many requests: this server takes {self.per_minute} a minute from each client. Try again "
                     f"in {math.ceil(wait)} s.", type=RATE_LIMIT, code="rate_limited",
                headers={"Retry-After": str(math.ceil(wait))}))
            return
        await self.app(scope, receive, send)
