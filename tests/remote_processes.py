"""Server processes and plumbing for the remote generators' tests (import as ``from remote_processes import ...``).

* :func:`start_uvicorn` — a server process that prints uvicorn's "Uvicorn running on http://127.0.0.1:PORT" line
  (the fake server of ``tests/remote_fake_server.py``, llama-cpp-python's ``llama_cpp.server``), waited for by
  reading its output as it comes (no sleeping), then drained on a thread so it never blocks on a full pipe.
* :func:`configure_servers` — write the test's servers into the settings of its Studiolo home.
* :func:`remote_plugins` — a plugin manager with the remote plugin loaded through its entry point (Studiolo's own
  once pyproject declares it, else the same entry point made here: ``remote = "plugins.remote"``).
* :func:`get_json` — GET a URL on 127.0.0.1, never through a proxy.
* :func:`refused_port` — a port on 127.0.0.1 where a connection is refused (bound, not listening).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = Path(__file__).resolve().parent / "remote_fake_server.py"
READY = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
START_LINES = 2000  # the most lines a server may print before its ready line


@dataclass
class UvicornProcess:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    output: list[str] = field(default_factory=list)

    def stop(self) -> int | None:
        """Ctrl+C (uvicorn's graceful stop), then a kill if it has not ended 10 s later; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)


def _end_with_parent() -> None:
    """In the child, before it runs: on Linux, be sent SIGTERM when the test process ends, even when it is killed
    (a test run cut short leaves no server behind)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_uvicorn(*args: str, env: dict[str, str] | None = None) -> UvicornProcess:
    """``python ARGS`` (a uvicorn server on port 0), once it says it is listening. Call it on the main thread (the
    server is ended when the thread that started it ends)."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=ROOT, env=env, preexec_fn=_end_with_parent)
    assert process.stdout is not None
    lines: list[str] = []
    url = None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        found = READY.search(line)
        if found:
            url = found.group(1)
            break
        if len(lines) > START_LINES:
            break
    if url is None:
        process.kill()
        process.wait(10)
        raise AssertionError("the server did not start:\n" + "\n".join(lines[-50:]))
    server = UvicornProcess(process, url, lines)
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    return server


def start_fake_server() -> UvicornProcess:
    """The fake OpenAI-compatible server of ``tests/remote_fake_server.py``."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return start_uvicorn(str(FAKE_SERVER), env=env)


def configure_servers(servers: dict[str, str], keys: dict[str, str] | None = None) -> None:
    """Write ``name → base URL`` (and ``name → API key``) as the configured servers of this Studiolo home."""
    from desktop.settings import Settings

    settings = Settings.load()
    settings.remote_servers = [{"name": name, "url": url, "api_key": (keys or {}).get(name), "concurrency": 1}
                               for name, url in servers.items()]
    settings.save()


def remote_entry_point() -> metadata.EntryPoint:
    """The remote plugin's entry point: Studiolo's own when installed, else one made like it."""
    from desktop.plugins import discover

    found = [ep for ep in discover() if ep.name == "remote"]
    return found[0] if found else metadata.EntryPoint("remote", "plugins.remote", "studiolo")


def remote_plugins() -> Any:
    """A plugin manager with only the remote plugin, loaded through its entry point."""
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    return PluginManager(Settings(), entry_points=[remote_entry_point()]).load()


def get_json(url: str, timeout: float = 60) -> Any:
    """The JSON at ``url`` (on 127.0.0.1), fetched without any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read())


@contextmanager
def refused_port():
    """A port on 127.0.0.1 that refuses connections while the block runs (bound, so nothing else takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
