"""Helpers shared by the tests (import as `from helpers import ...`)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MARKOV_SOURCE = (EXAMPLES / "markov" / "studiolo_markov.py").read_text(encoding="utf-8")


def builtin_plugins() -> list[str]:
    """The names of Studiolo's built-in plugins: its own entry points in the ``studiolo`` group (to disable them all
    in a test that wants only its own plugins, whatever built-ins come along)."""
    from desktop.plugins import discover

    return sorted(ep.name for ep in discover() if ep.dist is not None and ep.dist.metadata["Name"] == "studiolo")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m desktop ARGS` in a subprocess (the same entry as the `studiolo` script)."""
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=ROOT)


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=ROOT)


def install_markov(site, version: str = "1.0.0", requires=("studiolo>=0.2,<0.3",)):
    """Install the docs' example plugin (examples/markov) by entry point into a PluginSite."""
    return site.install("studiolo-markov", version=version, modules={"studiolo_markov": MARKOV_SOURCE},
                        entry_points={"markov": "studiolo_markov"}, requires=list(requires),
                        summary="A Markov-chain text generator", author="Example Author")


def process_gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody has reaped yet counts), waiting for that at most
    ``timeout`` seconds (on its pidfd where the system has them, else only looking once)."""
    try:
        if not hasattr(os, "pidfd_open"):
            os.kill(pid, 0)
            return False
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])  # readable once the process has exited
    finally:
        os.close(fd)


class RunGate:
    """Holds every engine worker before it runs a job, after the first ``after`` jobs (``GeneratorWorker._run``
    patched), until :meth:`release`: a test that cancels "after the first cell" knows that no later job started
    meanwhile (a worker takes its next job on its own thread, maybe before the GUI thread has heard that the first
    one ended). A job cancelled while held ends cancelled without running, as one cancelled before it starts does."""

    def __init__(self, monkeypatch, after: int = 1) -> None:
        import itertools
        import threading

        from desktop.engine.worker import GeneratorWorker

        self._open = threading.Event()
        count = itertools.count()
        original = GeneratorWorker._run

        def run(worker, job):
            if next(count) >= after:
                self._open.wait(timeout=120)  # a safety net only: the test releases it
            return original(worker, job)

        monkeypatch.setattr(GeneratorWorker, "_run", run)

    def release(self) -> None:
        """Let the workers run jobs again."""
        self._open.set()
