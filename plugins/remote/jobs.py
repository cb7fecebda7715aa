"""A job on a Studiolo server through its own endpoint (``/v1/studiolo/jobs``): live progress, and a real cancel.

OpenAI's ``/images/generations`` answers once the images are made, saying nothing meanwhile. A Studiolo server
(one whose ``/models`` entries carry a ``studiolo`` object) also takes the job as a job: ``POST
/v1/studiolo/jobs`` → its id; ``GET …/{id}/events`` streams ``progress`` events and ends with ``done``, ``failed``
or ``cancelled`` carrying the job (its outputs base64-encoded once done); ``DELETE …/{id}`` cancels it. A cancel
here sends that DELETE (on a fresh connection: the cancel closed the job's own) and ends the job cancelled.
"""

from __future__ import annotations

import logging
from typing import Any

from desktop.api import GenerationError, JobCancelled, RunContext, ServerUnavailableError
from plugins.remote.client import MAX_MEDIA_BYTES, RemoteClient, check_status, server_message

__all__ = ["run_job", "FINAL_STATES"]

log = logging.getLogger(__name__)

FINAL_STATES = ("done", "failed", "cancelled")
"""The states a job ends in (and the names of the events that say so)."""
_DELETE_TIMEOUT_S = 5.0


def run_job(client: RemoteClient, model_id: str, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Run a job of ``model_id`` with ``params`` and the job's seed on the server; its final object (state
    ``done``, with its ``outputs``). Progress goes to ``ctx.progress``; a cancel deletes the job on the server and
    raises :class:`JobCancelled`; a failure on the server is a :class:`GenerationError` with its reason."""
    where = f"{client.server.name} ({client.server.url})"
    created = client.request_json("POST", "studiolo/jobs", {"model": model_id, "params": params, "seed": ctx.seed})
    job_id = created.get("id") if isinstance(created, dict) else None
    if not isinstance(job_id, str) or not job_id or "/" in job_id:
        raise ValueError("the server's answer names no job")
    try:
        final = _follow(client, job_id, ctx)
    except Exception:
        if ctx.cancelled:
            _delete(client, job_id)
            raise JobCancelled() from None
        raise
    if final is None:  # cancelled between two events
        _delete(client, job_id)
        raise JobCancelled()
    state = final.get("state")
    if state == "done":
        return final
    if state == "failed":
        reason = server_message({"error": final.get("error")}) or "no reason given"
        raise GenerationError(f"{where} could not make it: {reason}", hint="The server's own log says more.")
    raise GenerationError(f"The job was cancelled on {where}.", hint="Someone cancelled it there; run it again.")


def _follow(client: RemoteClient, job_id: str, ctx: RunContext) -> dict[str, Any] | None:
    """Follow the job's events to its final object (None when the user cancelled meanwhile)."""
    import httpx2

    with client.http.stream("GET", client.url(f"studiolo/jobs/{job_id}/events"),
                            headers={"Accept": "text/event-stream"}) as response:
        check_status(response)
        for event in httpx2.EventSource(response, max_event_size=MAX_MEDIA_BYTES):
            if ctx.cancelled:
                return None
            if event.event == "progress":
                _progress(event.json(), ctx)
            elif event.event in FINAL_STATES:
                final = event.json()
                if not isinstance(final, dict):
                    raise ValueError("a final event that is not a job")
                final.setdefault("state", event.event)
                return final
    last = client.get_json(f"studiolo/jobs/{job_id}")  # the stream ended early: the job may still have ended
    if isinstance(last, dict) and last.get("state") in FINAL_STATES:
        return last
    raise ServerUnavailableError(f"{client.server.name} ({client.server.url}) stopped telling how the job goes "
                                 "before it ended.", hint="The server may have stopped or restarted. Try again.",
                                 server=client.server.name)


def _progress(data: Any, ctx: RunContext) -> None:
    if not isinstance(data, dict):
        return
    done, total, message = data.get("done"), data.get("total"), data.get("message")
    if isinstance(done, int) and not isinstance(done, bool):
        ctx.progress(done, total if isinstance(total, int) and not isinstance(total, bool) else None,
                     message if isinstance(message, str) else "")


def _delete(client: RemoteClient, job_id: str) -> None:
    """Cancel the job on the server, on a fresh connection; a failure is only logged (the job is ended here)."""
    try:
        with RemoteClient(client.server, read_timeout=_DELETE_TIMEOUT_S, max_bytes=1024 * 1024) as fresh:
            check_status(fresh.http.delete(fresh.url(f"studiolo/jobs/{job_id}")))
    except Exception as exc:
        log.warning("could not cancel job %s on %s: %s", job_id, client.server.name, exc)
