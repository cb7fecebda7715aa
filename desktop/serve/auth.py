"""The API key: when one is required, where it comes from, and the middleware that checks it.

A key is required whenever the server listens on an address other than loopback (anyone who can reach the port
could otherwise run jobs on this machine, read the outputs and fill its disk — what happened to the many Ollama
servers left open on the internet), on loopback with ``--require-key``, and whenever a key is given. The key is,
in this order: ``--api-key``, the ``STUDIOLO_API_KEY`` environment variable, or the one stored in Studiolo's config
folder (``serve-api-key``, made with :mod:`secrets` on first use, readable by its owner only: mode 0600).

Requests carry it as ``Authorization: Bearer KEY`` (what OpenAI's clients send); it is compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from desktop import paths
from desktop.api import StudioloError
from desktop.serve.openai_shapes import AUTH, ApiError, send_error

log = logging.getLogger(__name__)

KEY_ENV = "STUDIOLO_API_KEY"
KEY_FILE = "serve-api-key"
MIN_KEY_LENGTH = 16
KEY_PREFIX = "sk-studiolo-"


@dataclass(frozen=True)
class ApiKey:
    """The key and where it came from (``--api-key``, ``STUDIOLO_API_KEY`` or the file's path); ``created``: it
    was generated just now."""

    value: str
    source: str
    path: Path | None = None
    created: bool = False


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is reachable from this machine only."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def key_path() -> Path:
    """Where the generated key is kept: ``serve-api-key`` in Studiolo's config folder."""
    return paths.config_dir() / KEY_FILE


def stored_key(path: Path | None = None) -> ApiKey:
    """The key stored at ``path`` (default :func:`key_path`), generated there first if there is none. A key file
    others could read is made private again (mode 0600), with a warning in the log."""
    path = path or key_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            return _read_key(path)
        value = KEY_PREFIX + secrets.token_urlsafe(32)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(value + "\n")
        return ApiKey(value, str(path), path, created=True)
    except OSError as exc:
        raise StudioloError(f"The API key file {path} could not be written or read: {exc.strerror or exc}.",
                            hint="Check the config folder's permissions, or give a key with --api-key.") from exc


def _read_key(path: Path) -> ApiKey:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise StudioloError(f"The API key file {path} is not a regular file.",
                            hint="Remove it (a new key is generated), or give a key with --api-key.")
    if info.st_mode & 0o077:
        log.warning("the API key file %s could be read by others (mode %o); it is made private (0600)", path,
                    stat.S_IMODE(info.st_mode))
        path.chmod(0o600)
    value = path.read_text(encoding="utf-8").strip()
    check_key(value, str(path))
    return ApiKey(value, str(path), path)


def check_key(value: str, source: str) -> str:
    """``value`` when it can be a key; a :class:`StudioloError` naming ``source`` when it is too short or holds
    spaces (an HTTP header could not carry it)."""
    if len(value) < MIN_KEY_LENGTH or any(c.isspace() for c in value) or not value.isprintable():
        raise StudioloError(f"The API key from {source} is not usable: a key has at least {MIN_KEY_LENGTH} "
                            "characters and no spaces.", hint="Give a longer key, or remove the key file to have "
                                                              "one generated.")
    return value


def choose_key(host: str, given: str | None, require: bool) -> ApiKey | None:
    """The key the server requires, or None when it requires none (loopback, no ``--require-key``, no key
    given)."""
    env = os.environ.get(KEY_ENV, "").strip()
    if given:
        return ApiKey(check_key(given.strip(), "--api-key"), "--api-key")
    if env:
        return ApiKey(check_key(env, KEY_ENV), KEY_ENV)
    if require or not is_loopback(host):
        return stored_key()
    return None


def _bearer(scope: dict) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class KeyCheck:
    """ASGI middleware: every request needs ``Authorization: Bearer KEY`` (401 otherwise)."""

    def __init__(self, app, key: str) -> None:
        self.app = app
        self.key = key.encode("utf-8")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None or not hmac.compare_digest(token, self.key):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send_error(send, ApiError(
                401, "A valid API key is required: send it as 'Authorization: Bearer KEY' (the server printed "
                     "where its key is when it started).", type=AUTH, code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"}))
            return
        await self.app(scope, receive, send)
