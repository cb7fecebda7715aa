"""The ``studiolo serve`` process: the engine on the main thread under Qt's event loop, uvicorn on a thread of its
own, and the way both stop.

Start: the plugins are loaded, the key chosen (:mod:`desktop.serve.auth`) and the socket bound here — so that a port
in use is a clear error and ``--port 0`` knows its port — then uvicorn starts on its thread with that socket, and
the banner (the URL, and the key when one is required) is printed on stderr once it listens.

Stop (Ctrl+C or SIGTERM, caught through a wakeup file descriptor that Qt's event loop watches — no timer): uvicorn
is told to exit and every job of the server is cancelled, so that the requests waiting for them end; once uvicorn's
thread has ended, Qt's loop quits and the engine shuts down (its worker processes end). A second signal stops at
once without waiting for the requests. Exit status 0, or 1 when the HTTP server failed.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desktop.api import StudioloError

log = logging.getLogger(__name__)

STOP_WAIT_MS = 15_000
"""After a first Ctrl+C, how long the requests under way are given before the event loop quits anyway."""
GRACEFUL_S = 5
"""uvicorn's wait for open connections to end once it is stopping."""

_app = None  # the QCoreApplication lives as long as the process


@dataclass(frozen=True)
class ServeOptions:
    """What ``studiolo serve`` was asked for (see :mod:`desktop.cli.serve_cmd`)."""

    host: str = "127.0.0.1"
    port: int = 8188
    api_key: str | None = None
    require_key: bool = False
    max_body_mb: float = 32
    rate_limit: int = 120


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port); a :class:`StudioloError` when that cannot be."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                 flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise StudioloError(f"Cannot listen on {host!r}: {getattr(exc, 'strerror', None) or exc}.",
                            hint="Give an address of this machine with --host (127.0.0.1: this machine only).") \
            from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = ("Another program may use that port: choose another with --port (0 picks a free one)."
                if exc.errno == errno.EADDRINUSE else
                "Give an address of this machine with --host (127.0.0.1: this machine only; 0.0.0.0: all its "
                "addresses).")
        raise StudioloError(f"Cannot listen on {url_of(host, port)}: {exc.strerror or exc}.", hint=hint) from None
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/v1"


def banner(host: str, port: int, key: Any) -> str:
    lines = [f"Studiolo is serving the OpenAI-compatible API on {url_of(host, port)}"]
    if key is not None:
        where = f"stored in {key.path}" + (", made just now" if key.created else "") if key.path else \
            f"from {key.source}"
        lines.append(f"API key ({where}); send it as 'Authorization: Bearer KEY':")
        lines.append(f"  {key.value}")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def allowed_hosts(host: str) -> set[str] | None:
    """The host names requests may address: on loopback this machine's names (DNS rebinding), else any."""
    from desktop.serve.auth import is_loopback
    from desktop.serve.guard import LOOPBACK_NAMES

    return LOOPBACK_NAMES | {host.strip("[]").lower()} if is_loopback(host) else None


class SignalWatcher:
    """SIGINT and SIGTERM delivered into Qt's event loop: the signal's number is written to a socket pair by
    Python's C-level handler (``signal.set_wakeup_fd``), which a ``QSocketNotifier`` watches; ``on_signal(count)``
    runs on the main thread, with the number of signals so far."""

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        from PySide6.QtCore import QSocketNotifier

        self.on_signal = on_signal
        self.count = 0
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)

    def _drain(self, *_args: object) -> None:
        try:
            received = self._reader.recv(64)
        except BlockingIOError:
            return
        for _signum in received:
            self.count += 1
            self.on_signal(self.count)

    def close(self) -> None:
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._reader.close()
        self._writer.close()


def _say(text: str) -> None:
    """Print on stderr; a terminal or pipe that has gone away (the server outlives it) stops nothing."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _uvicorn_server(asgi: Any, on_started: Callable[[], None]) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                on_started()

    config = uvicorn.Config(asgi, lifespan="on", log_config=None, access_log=False, http="h11", ws="none",
                            loop="asyncio", timeout_graceful_shutdown=GRACEFUL_S)
    return Server(config)


def run(options: ServeOptions) -> int:
    """Serve until Ctrl+C or SIGTERM; returns the exit status."""
    from PySide6.QtCore import QCoreApplication, QTimer

    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.serve.app import Limits, create_app
    from desktop.serve.auth import choose_key
    from desktop.serve.bridge import EngineBridge
    from desktop.serve.handling import Services

    global _app
    plugins = PluginManager().load()
    sock = bind(options.host, options.port)
    try:
        key = choose_key(options.host, options.api_key, options.require_key)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    app = _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins)
    bridge = EngineBridge(engine)
    limits = Limits(key=key.value if key is not None else None, allowed_hosts=allowed_hosts(options.host),
                    max_body_bytes=int(options.max_body_mb * 1024 * 1024), rate_per_minute=options.rate_limit)
    services = Services(plugins, bridge, allow_pickle=plugins.settings.allow_pickle)
    server = _uvicorn_server(create_app(services, limits),
                             lambda: _say(banner(options.host, port, key)))
    outcome = {"failed": False}

    def serve() -> None:  # uvicorn's thread
        try:
            server.run(sockets=[sock])
        except BaseException:  # noqa: BLE001 — reported, and the process ends with status 1
            log.exception("the HTTP server failed")
            outcome["failed"] = True
        finally:
            bridge.call(app.quit)

    def on_signal(count: int) -> None:  # the main thread
        if count == 1:
            server.should_exit = True
            bridge.cancel_all()
            QTimer.singleShot(STOP_WAIT_MS, app.quit)
            _say("\nStopping… (press Ctrl+C again to stop at once)")
        else:
            server.force_exit = True
            app.quit()

    watcher = SignalWatcher(on_signal)
    thread = threading.Thread(target=serve, name="studiolo-serve", daemon=True)
    try:
        thread.start()
        app.exec()
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_S + 1)
        watcher.close()
        stopped = engine.shutdown(timeout=10)
        sock.close()
    code = 1 if outcome["failed"] else 0
    if outcome["failed"]:
        from desktop.logs import log_path

        _say(f"studiolo: error: the HTTP server failed (the traceback is in {log_path()})")
    if not stopped or thread.is_alive():  # a generator ignoring cancel, or uvicorn stuck: do not wait for them
        from desktop.exiting import exit_now

        exit_now(code)
    return code
