"""``POST /v1/chat/completions`` and ``POST /v1/completions``: the text generators, whole or streamed.

A streamed answer starts once the job has written its first text (or ended: a job that fails before any text is
answered with an error status, not an empty stream). Each text chunk the job previews becomes one chunk event; then
a chunk with ``finish_reason`` (``length`` when the job stopped at ``max_tokens``, ``stop`` otherwise), the usage
chunk when ``stream_options.include_usage`` asked for it, and ``data: [DONE]``. A client that disconnects cancels the
job (what it wrote so far is kept in the library, marked partial). The first chunk and the last carry the
``"studiolo"`` field (the seed and job id; the last also the library item).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from desktop.serve import mapping, openai_shapes, sse
from desktop.serve.handling import (
    GONE,
    extra,
    flag,
    json_body,
    model_id_of,
    raise_unless_done,
    resolve,
    run_to_end,
    services_of,
    submit,
    unless_gone,
)
from desktop.serve.jobs import JobRecord
from desktop.serve.openai_shapes import server_error


async def chat_completions(request: Any) -> Response:
    return await _text(request, chat=True)


async def completions(request: Any) -> Response:
    return await _text(request, chat=False)


def _usage(record: JobRecord) -> dict[str, int]:
    output = next((o for o in record.outputs if o.kind == "text"), None)
    metadata = output.metadata if output is not None else {}
    prompt, new = metadata.get("prompt_tokens"), metadata.get("new_tokens")
    return openai_shapes.usage(prompt if isinstance(prompt, int) else 0, new if isinstance(new, int) else 0)


def _finish_reason(record: JobRecord) -> str:
    output = next((o for o in record.outputs if o.kind == "text"), None)
    return "length" if output is not None and output.metadata.get("stopped_by") == "max_tokens" else "stop"


def _text_of(record: JobRecord) -> str:
    return "".join(o.text or "" for o in record.outputs if o.kind == "text")


async def _text(request: Any, *, chat: bool) -> Response:
    body = await json_body(request)
    generator, ref = await resolve(request, body.get("model"), ("text",))
    params = mapping.chat_params(generator, body) if chat else mapping.completion_params(generator, body)
    seed = mapping.seed_of(body.get("seed"))
    stream = flag(body, "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise openai_shapes.bad_request("'stream_options' must be an object.", param="stream_options")
    include_usage = flag(options, "include_usage")
    model_id = model_id_of(generator, ref)
    record, events = await submit(request, generator, ref, params, seed)
    created = int(time.time())
    if not stream:
        record.detach(events)
        if not await run_to_end(request, record):
            return Response(status_code=204)  # nobody reads it
        raise_unless_done(record)
        text, reason, used = _text_of(record), _finish_reason(record), _usage(record)
        if chat:
            return JSONResponse(openai_shapes.chat_completion(record.id, model_id, created, text, reason, used,
                                                              extra(record)))
        return JSONResponse(openai_shapes.text_completion(record.id, model_id, created, text, reason, used,
                                                          extra(record)))
    first = await _first_text_or_end(request, record, events)
    if first is GONE:
        record.detach(events)
        services_of(request).bridge.cancel(record.id)
        return Response(status_code=204)
    if first is None:  # the job ended before writing anything
        record.detach(events)
        raise_unless_done(record)
    shape = _chat_shapes if chat else _completion_shapes
    return sse.EventStream(_stream(request, record, events, first, shape(record.id, model_id, created),
                                   include_usage))


async def _first_text_or_end(request: Any, record: JobRecord, events: asyncio.Queue) -> Any:
    """The job's first text chunk; None when it ended first (or wrote nothing at all); :data:`GONE` when the
    client left first."""

    async def first() -> str | None:
        while True:
            event, payload = await events.get()
            if event == "preview" and payload:
                return payload
            if event == "end":
                return None

    return await unless_gone(request, first())


class _Shapes:
    """Makes one stream's chunks: ``text(chunk)``, ``end(reason, extra)``, ``usage(used)``, ``start()``."""

    def __init__(self, start: Callable[[], Any], text: Callable[[str], Any], end: Callable[[str, dict], Any],
                 usage: Callable[[dict], Any]) -> None:
        self.start, self.text, self.end, self.usage = start, text, end, usage


def _chat_shapes(job_id: str, model: str, created: int) -> _Shapes:
    return _Shapes(
        start=lambda: openai_shapes.chat_chunk(job_id, model, created, {"role": "assistant", "content": ""}),
        text=lambda chunk: openai_shapes.chat_chunk(job_id, model, created, {"content": chunk}),
        end=lambda reason, studiolo: openai_shapes.chat_chunk(job_id, model, created, {}, reason, studiolo),
        usage=lambda used: openai_shapes.chat_usage_chunk(job_id, model, created, used))


def _completion_shapes(job_id: str, model: str, created: int) -> _Shapes:
    return _Shapes(
        start=lambda: None,
        text=lambda chunk: openai_shapes.text_completion(job_id, model, created, chunk, None),
        end=lambda reason, studiolo: openai_shapes.text_completion(job_id, model, created, "", reason,
                                                                   studiolo=studiolo),
        usage=lambda used: openai_shapes.text_usage_chunk(job_id, model, created, used))


async def _stream(request: Any, record: JobRecord, events: asyncio.Queue, first: str | None, shapes: _Shapes,
                  include_usage: bool) -> AsyncIterator[bytes]:
    """The chunks of a streamed answer from its ``first`` text (None: the job ended without writing any, its end
    event already taken); cancels the job when the stream stops before the job ended (the client disconnected:
    :class:`~desktop.serve.sse.EventStream` cancels this iterator)."""
    try:
        opening = [chunk for chunk in (shapes.start(), shapes.text(first) if first is not None else None) if chunk]
        if opening:  # the seed and job id are known from the start
            opening[0]["studiolo"] = {"seed": record.seed, "job_id": record.id, "gallery_id": None}
        for chunk in opening:
            yield sse.data(chunk)
        while first is not None:
            event, payload = await events.get()
            if event == "preview" and payload:
                yield sse.data(shapes.text(payload))
            elif event == "end":
                break
        if record.state == "done":
            yield sse.data(shapes.end(_finish_reason(record), extra(record)))
            if include_usage:
                yield sse.data(shapes.usage(_usage(record)))
        else:  # OpenAI's clients raise an APIError for an error object in the stream
            error = server_error(record.error or "The job failed.", code="job_failed") if record.state == "failed" \
                else server_error("The job was cancelled before it finished.", status=503, code="job_cancelled")
            yield sse.data(error.body())
        yield sse.DONE
    finally:
        record.detach(events)
        if not record.finished:
            services_of(request).bridge.cancel(record.id)
