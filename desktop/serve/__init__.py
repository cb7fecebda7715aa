"""``studiolo serve``: the engine behind an OpenAI-compatible HTTP API (issue 23).

The process has two threads that matter. The main thread runs Qt's event loop with the :class:`~desktop.engine.
engine.Engine` on it, as ``studiolo generate`` does; uvicorn runs the Starlette app on a thread of its own with its
own asyncio loop. They meet in :mod:`desktop.serve.bridge` (queued Qt signals one way, ``call_soon_threadsafe`` the
other; nothing polls).

* :mod:`~desktop.serve.server` — the process: Qt app, engine, listening socket, uvicorn thread, signals, banner;
* :mod:`~desktop.serve.app` — the Starlette app factory and its middleware stack;
* :mod:`~desktop.serve.routes_text`, :mod:`~desktop.serve.routes_media`, :mod:`~desktop.serve.routes_jobs` — the
  endpoints, and :mod:`~desktop.serve.handling` — what they all do the same way (read JSON, find the model, submit,
  wait while watching for the client leaving);
* :mod:`~desktop.serve.bridge` (the Qt side) and :mod:`~desktop.serve.jobs` (the asyncio side: each job's record
  and its listeners);
* :mod:`~desktop.serve.mapping` — OpenAI requests → a generator's ``Params``;
* :mod:`~desktop.serve.openai_shapes` — response, chunk and error objects;
* :mod:`~desktop.serve.models` — what ``/v1/models`` lists, and which model a request names;
* :mod:`~desktop.serve.outputs` — a finished job's files as response bodies;
* :mod:`~desktop.serve.auth`, :mod:`~desktop.serve.guard`, :mod:`~desktop.serve.limits` — the API key, the
  browser guard (Origin and Host) and the body-size and rate limits, as ASGI middleware;
* :mod:`~desktop.serve.sse` — server-sent events.

The wire contract is ``docs/serve.md``. Nothing here imports torch: the generators' worker processes do.
"""
