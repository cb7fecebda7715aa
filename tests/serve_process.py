"""A ``studiolo serve`` subprocess for tests (import as ``from serve_process import ...``).

:func:`start_server` starts ``python -m desktop serve`` in its own Studiolo home and Hugging Face cache, waits for
its banner on stderr (no sleeping: it reads the lines as they come) and returns a :class:`ServerProcess` with its
URL; the rest of stderr keeps being read on a thread, so the server never blocks on a full pipe.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANNER = re.compile(r"serving the OpenAI-compatible API on (http://\S+/v1)")


def server_env(home: Path) -> dict[str, str]:
    """An environment with its own Studiolo home and Hugging Face cache, offline, with no API key given."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("STUDIOLO_API_KEY", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE",
                        "HF_XET_CACHE", "STUDIOLO_LOAD_PLUGINS")}
    env.update(STUDIOLO_HOME=str(home), HF_HOME=str(home / "hf"), HF_HUB_OFFLINE="1", QT_QPA_PLATFORM="offscreen")
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    home: Path
    banner: list[str] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 60) -> int:
        """Ctrl+C, and the exit status once it has ended."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


def _end_with_parent() -> None:
    """In the child before it runs the server: SIGTERM when the test process dies (a killed test run leaves no
    server behind; Linux only)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_server(home: Path, *args: str, prefix: list[str] | None = None) -> ServerProcess:
    """``studiolo serve --port 0 ARGS`` in ``home`` (``prefix``: a command to run it under)."""
    command = [*(prefix or []), sys.executable, "-m", "desktop", "serve", "--port", "0", *args]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
                               env=server_env(home), preexec_fn=_end_with_parent if sys.platform == "linux" else None)
    assert process.stderr is not None
    lines: list[str] = []
    url = None
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        if url is None:
            found = BANNER.search(line)
            url = found.group(1) if found else None
        if url is not None and line.startswith("Press Ctrl+C"):
            break
    if url is None:
        process.wait(30)
        raise AssertionError("studiolo serve did not start:\n" + "\n".join(lines))
    server = ServerProcess(process, url, home, lines)
    threading.Thread(target=lambda: server.rest.extend(process.stderr), daemon=True).start()
    return server
