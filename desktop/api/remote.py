"""Remote servers (API 0.2.5): the OpenAI-compatible servers the user configured, and references to their models.

A generator that runs its jobs on another machine (Studiolo's own ``remote.*`` generators, or a third party's) reads
the servers the user added — in Settings → Servers or with ``studiolo servers add`` — with :func:`remote_servers`,
lists their models for the model chooser in :meth:`Generator.remote_models <desktop.api.Generator.remote_models>`, and
accepts references of the form ``remote://SERVER/MODEL-ID`` by declaring :data:`ModelSource.REMOTE
<desktop.api.ModelSource.REMOTE>` in ``model_sources``. The host resolves no files for such a reference: ``load``
gets ``model_path=None`` and the reference in ``options.model_ref``.

Offline stays offline: with no server configured, :func:`remote_servers` is empty and nothing is contacted.

This module imports nothing heavy (no HTTP client): generators import theirs in ``load``/``generate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from desktop.api.errors import ModelNotFoundError, StudioloError

__all__ = ["REMOTE_SCHEME", "RemoteListing", "RemoteModel", "RemoteServer", "ServerUnavailableError",
           "parse_remote_ref", "remote_ref", "remote_servers"]

REMOTE_SCHEME = "remote://"
"""The prefix of a reference to a model on a configured server: ``remote://SERVER/MODEL-ID``."""

SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A server's name: what the user calls it, and the first part of its models' references (``gpubox``)."""


@dataclass(frozen=True)
class RemoteServer:
    """One OpenAI-compatible server the user added.

    ``name``: the user's short name for it (:data:`SERVER_NAME`), unique among the servers; ``url``: its API's base
    URL, ending in ``/v1`` (``http://gpubox.local:8188/v1``); ``api_key``: the key sent as ``Authorization: Bearer``
    (None: none; stored in the settings file with owner-only permissions, as the Hugging Face token is);
    ``concurrency``: how many jobs a batch may run on it at once.
    """

    name: str
    url: str
    api_key: str | None = None
    concurrency: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "api_key": self.api_key, "concurrency": self.concurrency}

    @classmethod
    def from_json(cls, value: Any) -> RemoteServer:
        """A server from its settings entry; :class:`ValueError` naming what is wrong with one that is not."""
        if not isinstance(value, dict):
            raise ValueError("a server is an object with a name and a url")
        name, url, key = value.get("name"), value.get("url"), value.get("api_key")
        concurrency = value.get("concurrency", 1)
        if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
            raise ValueError(f"the server name {name!r} is not a short name of letters, digits, '.', '_' or '-'")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"the URL {url!r} of server {name!r} does not start with http:// or https://")
        if key is not None and not isinstance(key, str):
            raise ValueError(f"the API key of server {name!r} is not text")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 64:
            raise ValueError(f"the concurrency of server {name!r} is not a whole number from 1 to 64")
        return cls(name=name, url=url.rstrip("/"), api_key=key or None, concurrency=concurrency)


@dataclass(frozen=True)
class RemoteModel:
    """A model a server offers, as :meth:`Generator.remote_models <desktop.api.Generator.remote_models>` lists it.

    ``ref``: its reference (:func:`remote_ref`); ``server``: the server's name; ``model_id``: the id the server gives
    it; ``kind``: ``text``/``image``/``audio`` when the server says (a Studiolo server does; most text servers say
    nothing); ``description``: a short note for the chooser (optional).
    """

    ref: str
    server: str
    model_id: str
    kind: str | None = None
    description: str = ""


@dataclass(frozen=True)
class RemoteListing:
    """What :meth:`Generator.remote_models <desktop.api.Generator.remote_models>` returns: the ``models`` the servers
    offer, and one line per server that could not be asked (``"gpubox: connection refused — is it running?"``),
    shown beside the chooser. A server that fails never hides the others' models."""

    models: tuple[RemoteModel, ...] = ()
    problems: tuple[str, ...] = ()


class ServerUnavailableError(StudioloError):
    """A server could not be reached, went away mid-job, or answered that it is overloaded: the job may succeed on
    another server or later (a batch spread over several servers retries it on another)."""

    def __init__(self, message: str, *, hint: str | None = None, server: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.server = server


def remote_servers() -> list[RemoteServer]:
    """The servers the user configured, read fresh from the settings (empty when none: then nothing is contacted).
    Entries that cannot be read are left out (the settings page shows why). Call it off the GUI thread or at the
    start of a job; it reads one small file."""
    from desktop.settings import Settings

    return Settings.load().servers()


def remote_ref(server: str, model_id: str) -> str:
    """The reference to model ``model_id`` on the server named ``server``: ``remote://server/model_id``."""
    return f"{REMOTE_SCHEME}{server}/{model_id}"


def parse_remote_ref(ref: str) -> tuple[str, str]:
    """``(server name, model id)`` of a ``remote://SERVER/MODEL-ID`` reference (the model id may hold ``/`` and ``:``,
    as ``org/name`` and ``qwen2.5:7b`` do). :class:`ModelNotFoundError` for anything else."""
    text = ref.strip()
    if not text.startswith(REMOTE_SCHEME):
        raise ModelNotFoundError(f"{ref!r} is not a reference to a model on a server.",
                                 hint="Give it as remote://SERVER/MODEL-ID, e.g. remote://gpubox/llama-3.1-8b.")
    server, _, model_id = text[len(REMOTE_SCHEME):].partition("/")
    if not SERVER_NAME.fullmatch(server) or not model_id.strip():
        raise ModelNotFoundError(f"{ref!r} does not name a server and a model.",
                                 hint="Give it as remote://SERVER/MODEL-ID, e.g. remote://gpubox/llama-3.1-8b.")
    return server, model_id
