"""The user's remote servers: added, replaced and removed in the settings file, each checked first.

The list lives in the settings (``Settings.remote_servers``, an owner-only file, as the Hugging Face token does) and
is read by generators through :func:`desktop.api.remote_servers`. Nothing here contacts a server.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from desktop.api import RemoteServer, StudioloError
from desktop.settings import Settings

__all__ = ["ServerListError", "add_server", "normalise_url", "remove_server"]


class ServerListError(StudioloError):
    """A server cannot be added or removed as asked (a bad name or URL, a name in use, no such server)."""


def normalise_url(url: str) -> str:
    """The API base URL of ``url``: scheme and host checked, no trailing slash, ``/v1`` added when the URL names
    only the machine (``http://gpubox:8188`` → ``http://gpubox:8188/v1``). :class:`ServerListError` for a URL that
    is not http(s) with a host."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerListError(f"{url!r} is not a server URL.",
                              hint="Give it as http://HOST:PORT/v1 (https:// for a server behind TLS).")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ServerListError(f"{url!r} has a query, a fragment or a password in it.",
                              hint="Give only http://HOST:PORT/v1; give the API key with --api-key.")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def add_server(name: str, url: str, *, api_key: str | None = None, concurrency: int = 1,
               replace: bool = False) -> RemoteServer:
    """Add (or, with ``replace``, change) the server ``name`` and save the settings; returns it as stored."""
    try:
        server = RemoteServer.from_json({"name": name, "url": normalise_url(url), "api_key": api_key or None,
                                         "concurrency": concurrency})
    except ValueError as exc:
        raise ServerListError(f"Cannot add the server: {exc}.",
                              hint="Names are short: letters, digits, '.', '_' or '-'; concurrency 1 to 64.") from exc
    settings = Settings.load()
    entries = [e for e in settings.remote_servers if not (isinstance(e, dict) and e.get("name") == name)]
    if len(entries) != len(settings.remote_servers) and not replace:
        raise ServerListError(f"A server named {name!r} is configured already.",
                              hint="Choose another name, or replace it (--replace; in Settings, edit it).")
    settings.remote_servers = [*entries, server.to_json()]
    settings.save()
    return server


def remove_server(name: str) -> None:
    """Remove the server ``name`` and save the settings; :class:`ServerListError` when there is none."""
    settings = Settings.load()
    entries = [e for e in settings.remote_servers if not (isinstance(e, dict) and e.get("name") == name)]
    if len(entries) == len(settings.remote_servers):
        raise ServerListError(f"No server named {name!r} is configured.",
                              hint="`studiolo servers list` shows the servers there are.")
    settings.remote_servers = entries
    settings.save()
