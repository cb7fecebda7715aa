"""The Starlette app: the routes of the API and the middleware around them.

From the outside in: :class:`~desktop.serve.limits.RateLimit` (every request counts), :class:`~desktop.serve.
guard.BrowserGuard` (no web pages), :class:`~desktop.serve.auth.KeyCheck` (when a key is required),
:class:`~desktop.serve.limits.BodyLimit`, then Starlette with the routes. Every error, a route's or Starlette's
own (an unknown path, a method not allowed), is answered in OpenAI's error shape; no CORS header is ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from desktop.serve import routes_jobs, routes_media, routes_text
from desktop.serve.auth import KeyCheck
from desktop.serve.guard import BrowserGuard
from desktop.serve.handling import Services
from desktop.serve.limits import BodyLimit, RateLimit
from desktop.serve.openai_shapes import NOT_FOUND, ApiError, error_response, server_error

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_MB = 32
DEFAULT_RATE_PER_MINUTE = 120


@dataclass(frozen=True)
class Limits:
    """The server's limits: the API key (None: none required), the host names a request may address (None: any),
    the largest body in bytes and the requests a minute per client (0: no limit), on ``clock``."""

    key: str | None = None
    allowed_hosts: set[str] | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 1024 * 1024
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    clock: Callable[[], float] = time.monotonic


ROUTES = [
    Route("/v1/models", routes_jobs.list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", routes_jobs.get_model, methods=["GET"]),
    Route("/v1/chat/completions", routes_text.chat_completions, methods=["POST"]),
    Route("/v1/completions", routes_text.completions, methods=["POST"]),
    Route("/v1/images/generations", routes_media.image_generations, methods=["POST"]),
    Route("/v1/images/edits", routes_media.image_edits, methods=["POST"]),
    Route("/v1/audio/speech", routes_media.speech, methods=["POST"]),
    Route("/v1/studiolo/jobs", routes_jobs.create_job, methods=["POST"]),
    Route("/v1/studiolo/jobs/{job_id}", routes_jobs.get_job, methods=["GET"]),
    Route("/v1/studiolo/jobs/{job_id}", routes_jobs.cancel_job, methods=["DELETE"]),
    Route("/v1/studiolo/jobs/{job_id}/events", routes_jobs.job_events, methods=["GET"]),
]


async def _api_error(_request: Any, exc: Exception) -> Any:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(_request: Any, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return error_response(ApiError(404, "No such endpoint (the API is under /v1; see docs/serve.md).",
                                       type=NOT_FOUND, code="unknown_endpoint"))
    if exc.status_code == 405:
        return error_response(ApiError(405, f"This endpoint does not take that method (it takes "
                                            f"{headers.get('Allow', 'others')}).", code="method_not_allowed",
                                       headers=headers))
    return error_response(ApiError(exc.status_code, str(exc.detail), headers=headers))


async def _unexpected(_request: Any, exc: Exception) -> Any:
    log.error("the server failed answering a request", exc_info=exc)
    return error_response(server_error(f"The server failed: {type(exc).__name__}: {exc}"))


def create_app(services: Services, limits: Limits = Limits()) -> Any:
    """The ASGI app serving ``services`` within ``limits``."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if services.bridge is not None:
            services.bridge.attach(asyncio.get_running_loop())
        yield

    app = Starlette(routes=ROUTES, lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected})
    app.state.services = services
    asgi: Any = BodyLimit(app, limits.max_body_bytes)
    if limits.key is not None:
        asgi = KeyCheck(asgi, limits.key)
    asgi = BrowserGuard(asgi, limits.allowed_hosts)
    return RateLimit(asgi, limits.rate_per_minute, limits.clock)
