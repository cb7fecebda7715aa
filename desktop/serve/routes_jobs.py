"""Studiolo's own job endpoints, for long jobs with progress, and the model list.

* ``POST /v1/studiolo/jobs`` ``{"model", "params", "seed"}`` → 202 ``{"id", "state": "queued", "seed"}``;
* ``GET /v1/studiolo/jobs/{id}`` → the job object (:func:`desktop.serve.outputs.job_json`);
* ``GET /v1/studiolo/jobs/{id}/events`` → server-sent events: ``progress`` ``{"done", "total", "message"}``,
  ``preview`` ``{"text"}`` (text jobs), ``warning`` ``{"message"}``, and last ``done``/``failed``/``cancelled``
  with the job object. Leaving this stream does not cancel the job;
* ``DELETE /v1/studiolo/jobs/{id}`` cancels it → 202 with the job object as it is then;
* ``GET /v1/models`` and ``GET /v1/models/{id}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response

from desktop.serve import mapping, models, sse
from desktop.serve.handling import json_body, resolve, services_of, submit
from desktop.serve.jobs import JobRecord
from desktop.serve.openai_shapes import not_found
from desktop.serve.outputs import job_json


async def list_models(request: Any) -> Response:
    services = services_of(request)
    served = await asyncio.to_thread(models.list_models, services.plugins, allow_pickle=services.allow_pickle)
    return JSONResponse({"object": "list", "data": [m.to_json() for m in served]})


async def get_model(request: Any) -> Response:
    model_id = request.path_params["model_id"]
    services = services_of(request)
    served = await asyncio.to_thread(models.list_models, services.plugins, allow_pickle=services.allow_pickle)
    found = next((m for m in served if m.id == model_id), None)
    if found is None:
        raise not_found(f"The model {model_id!r} does not exist on this server.", param="model",
                        code="model_not_found")
    return JSONResponse(found.to_json())


async def create_job(request: Any) -> Response:
    body = await json_body(request)
    generator, ref = await resolve(request, body.get("model"), models.SERVED_KINDS)
    params = mapping.job_params(generator, body.get("params"))
    record, events = await submit(request, generator, ref, params, mapping.seed_of(body.get("seed")))
    record.detach(events)
    return JSONResponse({"id": record.id, "object": "studiolo.job", "state": record.state, "seed": record.seed},
                        status_code=202)


def _record(request: Any) -> JobRecord:
    job_id = request.path_params["job_id"]
    bridge = services_of(request).bridge
    record = bridge.board.get(job_id) if bridge is not None else None
    if record is None:
        raise not_found(f"No job {job_id!r} on this server (finished jobs are forgotten, oldest first).",
                        param="id", code="job_not_found")
    return record


async def get_job(request: Any) -> Response:
    return JSONResponse(await job_json(_record(request)))


async def cancel_job(request: Any) -> Response:
    record = _record(request)
    if not record.finished:
        services_of(request).bridge.cancel(record.id)
    return JSONResponse(await job_json(record), status_code=202)


async def job_events(request: Any) -> Response:
    record = _record(request)
    return sse.EventStream(_events(record))


async def _events(record: JobRecord) -> AsyncIterator[bytes]:
    with record.listen() as events:
        done, total, message = record.progress
        if not record.finished and (done or total or message):
            yield sse.named("progress", {"done": done, "total": total, "message": message})
        while True:
            event, payload = await events.get()
            if event == "progress":
                done, total, message = payload
                yield sse.named("progress", {"done": done, "total": total, "message": message})
            elif event == "preview":
                yield sse.named("preview", {"text": payload})
            elif event == "warned":
                yield sse.named("warning", {"message": payload})
            elif event == "end":
                yield sse.named(payload, await job_json(record))
                return
