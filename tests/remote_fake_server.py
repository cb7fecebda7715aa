"""A small OpenAI-compatible server (Starlette + uvicorn) for the remote generators' tests: each way a server can
behave, good or bad, under its own base URL ``/SCENARIO/v1``.

Run as ``python tests/remote_fake_server.py`` (port 0: uvicorn prints the port it got in its "Uvicorn running on"
line). Scenarios:

* ``ok`` — streams a fixed text one word a chunk (chat and completions), honouring ``max_tokens`` and ``stop``,
  with a usage chunk when ``stream_options.include_usage`` asks; images (PNGs of the asked size, coloured by seed,
  with a ``studiolo`` iTXt chunk); speech (a WAV with a ``stdo`` chunk and ``X-Studiolo-Seed``).
* ``studio`` — a Studiolo-like server: ``/models`` entries with ``studiolo`` objects (text, image, audio), the job
  endpoint (``/studiolo/jobs``, SSE ``progress`` and ``done`` events, ``DELETE``); a job whose prompt is ``hold``
  stays running after its first progress event until it is deleted.
* ``key`` — every request needs ``Authorization: Bearer right-key`` (401 in OpenAI's shape otherwise).
* ``strict`` — refuses ``stream_options`` with a 400, as some servers do.
* ``malformed`` / ``errorevent`` / ``drop`` / ``noend`` — one good chunk, then: text that is not JSON / an error
  object / an exception (the connection is cut mid-stream) / the end, without a finish reason.
* ``huge`` — streams text (or, for images, a body) far beyond any cap; ``stall`` — two chunks, then silence;
  ``hold`` — three chunks, then waits for the client to go (and notes it: ``/_wait/disconnected-hold``).
* ``missing`` (404), ``busy`` (503), ``bad`` (400 naming ``max_tokens``).
* ``die`` — one chunk, then the whole process exits (``os._exit``): a server that dies mid-answer.

``GET /_log/SCENARIO`` returns the requests a scenario got (path, headers, JSON body); ``GET /_wait/NAME`` waits (30
s at most) for the named event (``disconnected-hold``, ``deleted-JOB``) and says whether it came.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import struct
import sys

WORDS = ("the boats went out in the morning and came back at night while the lamp was warm and the story was "
         "good ").split()
RIGHT_KEY = "right-key"
_log: dict[str, list[dict]] = {}
_events: dict[str, asyncio.Event] = {}


def event(name: str) -> asyncio.Event:
    return _events.setdefault(name, asyncio.Event())


def png(width: int, height: int, seed: int, index: int) -> bytes:
    from PIL import Image, PngImagePlugin

    colour = ((seed * 37 + index * 80) % 256, (seed * 11) % 256, (index * 60 + 20) % 256)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("studiolo", json.dumps({"generator": "fake.image", "seed": seed, "index": index}))
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def wav(seed: int, frames: int = 4000, rate: int = 16000) -> bytes:
    """A 16-bit mono WAV (a ramp that depends on the seed) with a ``stdo`` chunk after its data."""
    samples = b"".join(struct.pack("<h", ((i * (seed % 7 + 1) * 50) % 20000) - 10000) for i in range(frames))
    record = json.dumps({"generator": "fake.speech", "seed": seed}).encode()
    if len(record) % 2:
        record += b" "
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples))
            + samples + b"stdo" + struct.pack("<I", len(record)) + record)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def create_app():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}},
                            status_code=status)

    async def record(request: Request, scenario: str) -> dict:
        try:
            body = await request.json()
        except Exception:
            body = None
        _log.setdefault(scenario, []).append({"path": request.url.path, "headers": dict(request.headers),
                                              "json": body})
        return body if isinstance(body, dict) else {}

    def refusal(request: Request, scenario: str) -> Response | None:
        if scenario == "key" and request.headers.get("authorization") != f"Bearer {RIGHT_KEY}":
            return error(401, "Incorrect API key provided.", "authentication_error")
        if scenario == "missing":
            return error(404, "The model 'nothing-here' does not exist.", "not_found_error")
        if scenario == "busy":
            return error(503, "The server is loading a model.", "server_error")
        if scenario == "bad":
            return error(400, "max_tokens is too large for this model.", "invalid_request_error", "max_tokens")
        return None

    async def models(request: Request) -> Response:
        scenario = request.path_params["scenario"]
        await record(request, scenario)
        if (refused := refusal(request, scenario)) is not None:
            return refused
        if scenario == "malformed":
            return Response("<html>not an API</html>", media_type="text/html")
        data = [{"id": "echo", "object": "model", "created": 0, "owned_by": "fake"}]
        if scenario == "studio":
            data = [{"id": f"{gen}/demo", "object": "model", "created": 0, "owned_by": "studiolo",
                     "studiolo": {"generator": gen, "kind": kind, "model": "demo", "modes": []}}
                    for gen, kind in (("text.transformers", "text"), ("image.diffusers", "image"),
                                      ("audio.speech", "audio"))] + data
        return JSONResponse({"object": "list", "data": data})

    def chunk(chat: bool, piece: str | None, finish: str | None = None, extra: dict | None = None) -> str:
        if chat:
            choice = {"index": 0, "delta": {"content": piece} if piece is not None else {}, "finish_reason": finish}
            value = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "echo",
                     "choices": [choice]}
        else:
            value = {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "echo",
                     "choices": [{"index": 0, "text": piece or "", "finish_reason": finish, "logprobs": None}]}
        return "data: " + json.dumps({**value, **(extra or {})}) + "\n\n"

    async def completions(request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = await record(request, scenario)
        chat = request.url.path.endswith("/chat/completions")
        if (refused := refusal(request, scenario)) is not None:
            return refused
        if scenario == "strict" and "stream_options" in body:
            return error(400, "Unrecognized request argument supplied: stream_options", "invalid_request_error")
        max_tokens = int(body.get("max_tokens") or 16)
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"studiolo": {"seed": body.get("seed"), "job_id": "fake-job"}} if scenario == "studio" else None

        async def stream():
            if scenario in ("malformed", "errorevent", "drop", "noend", "die"):
                yield chunk(chat, "Once")
                if scenario == "malformed":
                    yield "data: {this is not json\n\n"
                elif scenario == "errorevent":
                    yield "data: " + json.dumps({"error": {"message": "CUDA out of memory", "type": "server_error"}})
                    yield "\n\n"
                elif scenario == "drop":
                    raise RuntimeError("the worker crashed")
                elif scenario == "die":
                    await asyncio.sleep(0)  # let the chunk go out, then end the whole process
                    os._exit(3)
                return
            if scenario == "huge":
                for _ in range(100_000):
                    yield chunk(chat, "x" * 1000)
                return
            if scenario in ("stall", "hold"):
                for word in WORDS[:2 if scenario == "stall" else 3]:
                    yield chunk(chat, word + " ")
                try:
                    await asyncio.Event().wait()  # until the client goes (the stream is cancelled then)
                finally:
                    event(f"disconnected-{scenario}").set()
            text, written, finish = "", 0, "length"
            while written < max_tokens:
                piece = WORDS[written % len(WORDS)] + " "
                hits = [(text + piece).find(s) for s in stops if s and s in text + piece]
                if hits:  # the text ends before the stop sequence, which is not sent (as OpenAI does)
                    rest = (text + piece)[len(text):min(hits)]
                    if rest:
                        yield chunk(chat, rest, extra=extra)
                    finish = "stop"
                    break
                text += piece
                written += 1
                yield chunk(chat, piece, extra=extra)
            yield chunk(chat, None, finish, extra=extra)
            if usage:
                value = {"id": "x", "object": "chat.completion.chunk" if chat else "text_completion", "created": 0,
                         "model": "echo", "choices": [],
                         "usage": {"prompt_tokens": 5, "completion_tokens": written, "total_tokens": 5 + written}}
                yield "data: " + json.dumps(value) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def images(request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = await record(request, scenario)
        if (refused := refusal(request, scenario)) is not None:
            return refused
        if scenario == "huge":
            return Response(b'{"data": [{"b64_json": "' + b"A" * (4 * 1024 * 1024) + b'"}]}',
                            media_type="application/json")
        width, height = (int(v) for v in str(body.get("size", "64x64")).split("x"))
        seed = int(body.get("seed") or 0)
        data = [{"b64_json": base64.b64encode(png(width, height, seed, i)).decode(), "revised_prompt": None}
                for i in range(int(body.get("n") or 1))]
        return JSONResponse({"created": 0, "data": data, "studiolo": {"seed": seed, "job_id": "fake-images"}})

    async def speech(request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = await record(request, scenario)
        if (refused := refusal(request, scenario)) is not None:
            return refused
        seed = int(body.get("seed") or 0)
        return Response(wav(seed), media_type="audio/wav", headers={"X-Studiolo-Seed": str(seed)})

    jobs: dict[str, dict] = {}

    async def create_job(request: Request) -> Response:
        body = await record(request, "studio")
        job_id = f"j{len(jobs) + 1}"
        jobs[job_id] = {"id": job_id, "state": "queued", "seed": body.get("seed"), "params": body.get("params") or {}}
        return JSONResponse({"id": job_id, "state": "queued"}, status_code=202)

    async def job_events(request: Request) -> Response:
        job = jobs[request.path_params["job_id"]]
        params = job["params"]

        async def stream():
            steps = int(params.get("steps") or 1)
            for done in range(1, steps + 1):
                yield "event: progress\ndata: " + json.dumps({"done": done, "total": steps, "message": ""}) + "\n\n"
                if params.get("prompt") == "hold":
                    await event(f"deleted-{job['id']}").wait()
                    yield "event: cancelled\ndata: " + json.dumps({**job, "state": "cancelled"}) + "\n\n"
                    return
            outputs = [{"kind": "image", "filename": f"{i}.png", "media_type": "image/png",
                        "b64": base64.b64encode(png(int(params["width"]), int(params["height"]),
                                                    int(job["seed"] or 0), i)).decode()}
                       for i in range(int(params.get("batch_size") or 1))]
            final = {"id": job["id"], "state": "done", "progress": {"done": steps, "total": steps, "message": ""},
                     "error": None, "seed": job["seed"], "outputs": outputs}
            yield "event: done\ndata: " + json.dumps(final) + "\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def delete_job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _log.setdefault("studio", []).append({"path": request.url.path, "headers": dict(request.headers),
                                              "json": None, "method": "DELETE"})
        event(f"deleted-{job_id}").set()
        return JSONResponse({"id": job_id, "state": "cancelled"})

    async def show_log(request: Request) -> Response:
        return JSONResponse(_log.get(request.path_params["scenario"], []))

    async def wait(request: Request) -> Response:
        try:
            await asyncio.wait_for(event(request.path_params["name"]).wait(), timeout=30)
        except TimeoutError:
            return JSONResponse({"set": False})
        return JSONResponse({"set": True})

    return Starlette(routes=[
        Route("/_log/{scenario}", show_log),
        Route("/_wait/{name}", wait),
        Route("/{scenario}/v1/models", models),
        Route("/{scenario}/v1/chat/completions", completions, methods=["POST"]),
        Route("/{scenario}/v1/completions", completions, methods=["POST"]),
        Route("/{scenario}/v1/images/generations", images, methods=["POST"]),
        Route("/{scenario}/v1/audio/speech", speech, methods=["POST"]),
        Route("/studio/v1/studiolo/jobs", create_job, methods=["POST"]),
        Route("/studio/v1/studiolo/jobs/{job_id}/events", job_events),
        Route("/studio/v1/studiolo/jobs/{job_id}", delete_job, methods=["DELETE"]),
    ])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                log_level="info")
