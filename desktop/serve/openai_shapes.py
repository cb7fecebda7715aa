"""The objects the API answers with, in OpenAI's shapes: errors, chat completions and their chunks, text
completions and theirs, usage.

Every error, from a route or a middleware, is an :class:`ApiError` turned into ``{"error": {"message", "type",
"param", "code"}}`` with its HTTP status (:func:`error_response`); OpenAI's clients read that shape into their own
exceptions (``NotFoundError``, ``RateLimitError``…). Studiolo's extras ride in a ``"studiolo"`` field that clients
ignore.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

INVALID, AUTH, NOT_FOUND, RATE_LIMIT, SERVER = (
    "invalid_request_error", "authentication_error", "not_found_error", "rate_limit_error", "server_error")


class ApiError(Exception):
    """An error answered as OpenAI answers it: ``status``, a ``message`` a person can act on, its ``type``, the
    request field it is about (``param``) and a short machine ``code``; ``headers`` go with the response
    (``Retry-After``, ``WWW-Authenticate``)."""

    def __init__(self, status: int, message: str, *, type: str = INVALID, param: str | None = None,
                 code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def json_bytes(self) -> bytes:
        return json.dumps(self.body()).encode("utf-8")


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(404, message, type=NOT_FOUND, param=param, code=code)


def server_error(message: str, *, status: int = 500, code: str | None = None) -> ApiError:
    return ApiError(status, message, type=SERVER, code=code)


def from_param_error(exc: Any, names: Mapping[str, str] | None = None) -> ApiError:
    """A 400 for a :class:`~desktop.api.ParamError`, naming the field as the request did (``names`` maps a
    generator's field to the request's name for it: ``max_new_tokens`` → ``max_tokens``)."""
    name = (names or {}).get(exc.field, exc.field)
    message = exc.message if name == exc.field else exc.message.replace(repr(exc.field), repr(name), 1)
    if exc.hint:
        message = f"{message} {exc.hint}"
    return ApiError(400, message, param=name, code="invalid_value")


def error_response(exc: ApiError) -> Any:
    """The JSON response for ``exc`` (Starlette's, imported here: only the server process imports this module)."""
    from starlette.responses import Response

    return Response(exc.json_bytes(), status_code=exc.status, headers=exc.headers, media_type="application/json")


async def send_error(send: Any, exc: ApiError) -> None:
    """Answer with ``exc`` from an ASGI middleware (before any app ran)."""
    body = exc.json_bytes()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- text --------------------------------------------------------------------------------------------------------

def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_completion(job_id: str, model: str, created: int, text: str, finish_reason: str, used: dict[str, int],
                    studiolo: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"chatcmpl-{job_id}", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": finish_reason}],
            "usage": used, "studiolo": studiolo}


def chat_chunk(job_id: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None,
               studiolo: dict[str, Any] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": f"chatcmpl-{job_id}", "object": "chat.completion.chunk", "created": created,
                             "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                          "finish_reason": finish_reason}]}
    if studiolo is not None:
        chunk["studiolo"] = studiolo
    return chunk


def chat_usage_chunk(job_id: str, model: str, created: int, used: dict[str, int]) -> dict[str, Any]:
    return {"id": f"chatcmpl-{job_id}", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": used}


def text_completion(job_id: str, model: str, created: int, text: str, finish_reason: str | None,
                    used: dict[str, int] | None = None, studiolo: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``text_completion`` object: the whole answer, or (``used`` None) one streamed chunk of it."""
    body: dict[str, Any] = {"id": f"cmpl-{job_id}", "object": "text_completion", "created": created, "model": model,
                            "choices": [{"index": 0, "text": text, "logprobs": None,
                                         "finish_reason": finish_reason}]}
    if used is not None:
        body["usage"] = used
    if studiolo is not None:
        body["studiolo"] = studiolo
    return body


def text_usage_chunk(job_id: str, model: str, created: int, used: dict[str, int]) -> dict[str, Any]:
    return {"id": f"cmpl-{job_id}", "object": "text_completion", "created": created, "model": model, "choices": [],
            "usage": used}
