"""What every route does the same way: read a JSON body, find the model, submit the job, wait for its end while
watching for the client leaving, and turn a job that did not finish into an error.

:class:`Services` is what the routes reach through ``request.app.state.services``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from desktop.serve import models
from desktop.serve.jobs import JobRecord
from desktop.serve.openai_shapes import bad_request, server_error

T = TypeVar("T")
GONE: Any = object()
"""What :func:`unless_gone` returns when the client disconnected first."""


@dataclass
class Services:
    """The server's parts the routes use: the plugins (generators), the engine bridge (None: no engine, for tests
    of the HTTP layer alone), whether pickle weights are allowed (model listing) and the engine's output signer
    (for audio re-encoded into another format)."""

    plugins: Any
    bridge: Any = None
    allow_pickle: bool = False

    @property
    def signer(self) -> Any:
        return self.bridge.engine.services.signer if self.bridge is not None else None


def services_of(request: Any) -> Services:
    return request.app.state.services


async def json_body(request: Any) -> dict[str, Any]:
    """The request's JSON object; a 400 for a body that is not one."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


def flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise bad_request(f"'{name}' must be true or false.", param=name, code="invalid_type")


async def resolve(request: Any, model_id: Any, kinds: tuple[str, ...]) -> tuple[Any, str | None]:
    """The generator and model reference the request names (:func:`desktop.serve.models.resolve`, off the loop)."""
    services = services_of(request)
    return await asyncio.to_thread(models.resolve, services.plugins, model_id, kinds,
                                   allow_pickle=services.allow_pickle)


def model_id_of(generator: Any, ref: str | None) -> str:
    return f"{generator.id}/{ref}" if ref is not None else generator.id


async def submit(request: Any, generator: Any, ref: str | None, params: Any, seed: int | None, *,
                 keep_audio: bool = False) -> tuple[JobRecord, asyncio.Queue]:
    """Queue the job; its record and its events from the first on (detach the queue when done with it)."""
    from desktop.api import ParamError
    from desktop.serve.openai_shapes import from_param_error

    bridge = services_of(request).bridge
    if bridge is None:
        raise server_error("This server runs no engine.", status=503, code="no_engine")
    try:
        return await bridge.submit(generator.id, params, model=ref, seed=seed, model_id=model_id_of(generator, ref),
                                   keep_audio=keep_audio)
    except ParamError as exc:
        raise from_param_error(exc) from None
    except RuntimeError as exc:  # the engine is shutting down
        raise server_error(f"The server is stopping ({exc}).", status=503, code="shutting_down") from None


async def _disconnected(request: Any) -> None:
    """Return once the client has disconnected (the body has been read: only the disconnect can come)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_gone(request: Any, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, or :data:`GONE` as soon as the client disconnects (the awaitable is then cancelled)."""
    task = asyncio.ensure_future(awaitable)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        done, _pending = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if task in done:
        return task.result()
    task.cancel()
    return GONE


async def run_to_end(request: Any, record: JobRecord) -> bool:
    """Wait for the job to end; False (and the job cancelled) when the client disconnected first."""
    if await unless_gone(request, record.wait()) is GONE:
        services_of(request).bridge.cancel(record.id)
        return False
    return True


def raise_unless_done(record: JobRecord) -> None:
    """A 500 for a failed job (its message), a 503 for one cancelled from elsewhere (DELETE, the server
    stopping)."""
    if record.state == "failed":
        raise server_error(record.error or "The job failed.", code="job_failed")
    if record.state == "cancelled":
        raise server_error("The job was cancelled before it finished.", status=503, code="job_cancelled")


def extra(record: JobRecord) -> dict[str, Any]:
    """The ``"studiolo"`` field of a response: the job's seed, id and its first item in the library."""
    return {"seed": record.seed, "job_id": record.id, "gallery_id": record.item_ids[0] if record.item_ids else None}
