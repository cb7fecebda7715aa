"""Server-sent events: the wire format, and a streaming response that notices a client leaving.

:class:`EventStream` always listens for the client's disconnect while it streams (whatever ASGI version the server
speaks), and then cancels the stream's iterator: an ``async`` generator's ``finally`` runs, which is where a route
cancels the job nobody reads any more.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"


def data(payload: Any) -> bytes:
    """One ``data:`` event (OpenAI's streams: no event name)."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n\n"


def named(event: str, payload: Any) -> bytes:
    """One named event (``event: progress``…), for Studiolo's job events."""
    return f"event: {event}\n".encode() + data(payload)


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that stops its iterator as soon as the client disconnects."""

    media_type = "text/event-stream"

    def __init__(self, content: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                           **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                try:
                    await self.stream_response(send)
                except OSError:  # the client went away while a chunk was being written
                    pass
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()
