"""The models the configured servers offer (``Generator.remote_models``): one ``GET /models`` per server.

Every server is asked at once (a server that is down costs its connect timeout, not the sum of them), each with a
short timeout and a small byte cap. A model's kind is what a Studiolo server says in its entry's ``studiolo``
object; an entry without one (llama.cpp, vLLM, Ollama…) counts as text. A server that cannot be asked is one line
of ``problems``; nothing here raises. With no server configured nothing is imported and nothing is contacted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from desktop.api import RemoteListing, RemoteModel, RemoteServer, StudioloError, remote_ref, remote_servers
from plugins.remote.client import RemoteClient, remote_error, require_client

__all__ = ["list_models", "fetch_models", "listed_models", "model_kind", "studiolo_entry", "studiolo_info",
           "LIST_READ_TIMEOUT_S", "MAX_LISTING_BYTES"]

LIST_READ_TIMEOUT_S = 5.0
"""Seconds a server has to answer ``GET /models`` once connected."""
MAX_LISTING_BYTES = 8 * 1024 * 1024
"""The most bytes a model list may have (thousands of models fit in far less)."""


def list_models(kind: str) -> RemoteListing:
    """The models of kind ``kind`` (``text``, ``image``, ``audio``) on every configured server, with one problem
    line per server that could not be asked. Never raises."""
    try:
        servers = remote_servers()
    except Exception as exc:  # an unreadable settings file: the settings page says why
        return RemoteListing(problems=(f"The servers could not be read from the settings: {exc}",))
    if not servers:
        return RemoteListing()
    try:
        require_client()
    except StudioloError as exc:
        return RemoteListing(problems=(f"{exc.message} {exc.hint or ''}".strip(),))
    with ThreadPoolExecutor(max_workers=min(8, len(servers)), thread_name_prefix="remote-models") as pool:
        answers = list(pool.map(_ask, servers))
    models: list[RemoteModel] = []
    problems: list[str] = []
    for server, (entries, problem) in zip(servers, answers, strict=True):
        if problem:
            problems.append(problem)
        for entry in entries:
            if model_kind(entry) == kind:
                models.append(RemoteModel(ref=remote_ref(server.name, entry["id"]), server=server.name,
                                          model_id=entry["id"], kind=_stated_kind(entry),
                                          description=_description(entry)))
    return RemoteListing(models=tuple(models), problems=tuple(problems))


def _ask(server: RemoteServer) -> tuple[list[dict[str, Any]], str | None]:
    try:
        with RemoteClient(server, read_timeout=LIST_READ_TIMEOUT_S, max_bytes=MAX_LISTING_BYTES) as client:
            return fetch_models(client), None
    except Exception as exc:  # every failure is one line beside the chooser
        return [], remote_error(exc, server, timeout=LIST_READ_TIMEOUT_S).message


def fetch_models(client: RemoteClient) -> list[dict[str, Any]]:
    """The entries of the server's ``GET /models`` that have an id (``ValueError`` for a list in no known shape)."""
    body = client.get_json("models")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("the model list has no 'data' list")
    return [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"].strip()]


def listed_models(client: RemoteClient) -> list[dict[str, Any]] | None:
    """The server's model entries, or None when it has no usable list (no ``/models``: an images-only server, or
    a list in no known shape). Errors of the server itself (unreachable, key refused) are raised."""
    from plugins.remote.client import ServerAnswer

    try:
        return fetch_models(client)
    except ServerAnswer as exc:
        if exc.status in (404, 405, 501):
            return None
        raise
    except ValueError:
        return None


def studiolo_entry(entries: list[dict[str, Any]] | None, model_id: str) -> dict[str, Any] | None:
    """The ``studiolo`` object of ``model_id``'s entry (or, for a bare generator id, which names its default model
    on a Studiolo server, of an entry of that generator); None when it is not a Studiolo server's model."""
    entry = next((e for e in entries or [] if e["id"] == model_id), None)
    if entry is None and "/" not in model_id:
        entry = next((e for e in entries or [] if (studiolo_info(e) or {}).get("generator") == model_id), None)
    return studiolo_info(entry)


def model_kind(entry: dict[str, Any]) -> str:
    """What the entry's model makes: the ``kind`` a Studiolo server states, else ``text``."""
    return _stated_kind(entry) or "text"


def studiolo_info(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``studiolo`` object of a Studiolo server's model entry, or None (not a Studiolo server)."""
    info = entry.get("studiolo") if isinstance(entry, dict) else None
    return info if isinstance(info, dict) else None


def _stated_kind(entry: dict[str, Any]) -> str | None:
    kind = (studiolo_info(entry) or {}).get("kind")
    return kind if isinstance(kind, str) and kind else None


def _description(entry: dict[str, Any]) -> str:
    info = studiolo_info(entry)
    if info is None:
        return ""
    generator, model = info.get("generator"), info.get("model")
    parts = [p for p in (generator, model) if isinstance(p, str) and p]
    return "Studiolo: " + " · ".join(parts) if parts else "Studiolo"
