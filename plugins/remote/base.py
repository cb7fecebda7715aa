"""What the three remote generators share: models on servers, a handle that is only a reference, the metadata.

A remote generator declares ``ModelSource.REMOTE`` and nothing else, has no default or demo model, and runs on a
thread of Studiolo's process (it only talks HTTP). ``load`` gets ``model_path=None`` and the job's
``remote://SERVER/MODEL-ID`` in ``options.model_ref``; it contacts nothing and returns a :class:`RemoteHandle`. The
server is looked up again at every job (a key changed in Settings counts at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from desktop.api import Generator, LoadOptions, ModelSource, RemoteListing, RemoteServer
from plugins.remote.client import configured_server, server_and_model

__all__ = ["RemoteGenerator", "RemoteHandle", "server_metadata"]


@dataclass(frozen=True)
class RemoteHandle:
    """What ``load`` returns: the model's reference, its server's name and the id the server gives it."""

    ref: str
    server: str
    model_id: str

    def configured(self) -> RemoteServer:
        """The server as the settings say now (:class:`~desktop.api.ModelNotFoundError` if it was removed)."""
        return configured_server(self.server)


class RemoteGenerator(Generator):
    """The base of ``remote.text``, ``remote.image`` and ``remote.audio``."""

    version = "0.1.0"
    default_model = None
    model_sources: ClassVar[frozenset[str]] = frozenset({ModelSource.REMOTE})
    runs_in_process = True  # only HTTP: no worker process to start, and nothing heavy is imported

    def remote_models(self) -> RemoteListing:
        """The configured servers' models of this generator's kind (see :mod:`plugins.remote.listing`)."""
        from plugins.remote.listing import list_models

        return list_models(self.kind)

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> RemoteHandle:
        """The job's model reference, checked (a configured server, a model id): no connection is made."""
        ref = getattr(options, "model_ref", None)
        server, model_id = server_and_model(ref, self.name)
        configured_server(server)
        return RemoteHandle(ref=str(ref), server=server, model_id=model_id)

    def handle_size(self, handle: Any) -> int | None:
        """Nothing is held in memory here: the model is on the server."""
        return 0


def server_metadata(server: RemoteServer, model_id: str) -> dict[str, Any]:
    """The keys every remote output records: which server (name and URL, never its key) and which model on it."""
    return {"server": {"name": server.name, "url": server.url}, "model_id": model_id}
