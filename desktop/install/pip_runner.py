"""Run pip, and small inspection scripts, in the target Python environment — always as a subprocess.

:class:`PipRunner` streams pip's output line by line to a callback and can stop it through a
:class:`threading.Event`. The child runs in its own session (its own process group), so a Ctrl+C at the terminal
reaches Studiolo, which decides: a run that may be cancelled is stopped, one that may not (the real install:
pip cannot roll back a half-done install) is left to finish.

:meth:`PipRunner.freeze` lists the environment's distributions through ``importlib.metadata`` inside the target
Python (not ``pip freeze`` text), so an editable install — Studiolo itself in a development checkout — is
reported by name and version like any other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.install.errors import InstallCancelled, PluginInstallError

LineCallback = Callable[[str], None]
JSON_MARK = "STUDIOLO-JSON:"
STOP_GRACE_S = 5.0

# Every script starts by dropping the empty/current-folder entry Python puts first on sys.path for `-c`, so the
# folder the command runs in never adds distributions.
_PRELUDE = "import sys\nsys.path[:] = [p for p in sys.path if p]\n"

FREEZE_SCRIPT = _PRELUDE + """
import json, re
from importlib import metadata
out = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if not name:
        continue
    out.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
print("%s" + json.dumps(out))
""" % JSON_MARK


@dataclass
class PipResult:
    """How a pip run ended: its exit status and every line it printed (stdout and stderr together)."""

    args: list[str]
    returncode: int
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class PipRunner:
    """``python -m pip ...`` in the environment of ``python``.

    ``index_args`` (like ``("--no-index", "--find-links", "/wheels")``) are added to every command that looks
    packages up; ``env`` replaces the inherited environment of the children (tests use it to keep the machine's
    pip configuration out).
    """

    def __init__(self, python: str | Path = sys.executable, *, index_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        self.python = str(python)
        self.index_args = list(index_args)
        self.env = dict(env) if env is not None else None

    # -- pip ---------------------------------------------------------------------------------------------

    def run(self, args: Sequence[str], *, on_line: LineCallback | None = None,
            cancel: threading.Event | None = None, cwd: str | Path | None = None,
            interruptible: bool = True) -> PipResult:
        """Run ``python -m pip ARGS``; every output line goes to ``on_line`` as it comes.

        When ``cancel`` is set (or Ctrl+C arrives) and ``interruptible`` is true, pip is stopped and
        :class:`InstallCancelled` raised. With ``interruptible`` false a Ctrl+C is reported and pip finishes.
        """
        argv = [self.python, "-m", "pip", *args]
        proc = self._spawn(argv, cwd)
        result = PipResult(list(args), -1)
        watcher = None
        if cancel is not None and interruptible:
            watcher = threading.Thread(target=self._watch, args=(proc, cancel), daemon=True, name="pip-cancel")
            watcher.start()
        interrupted = False
        try:
            interrupted = self._pump(proc, result, on_line, interruptible, cancel if interruptible else None)
        finally:
            if proc.poll() is None:
                self._stop(proc)
            result.returncode = proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            if watcher is not None:
                watcher.join()
        if interruptible and (interrupted or (cancel is not None and cancel.is_set())):
            raise InstallCancelled()
        return result

    def _spawn(self, argv: list[str], cwd: str | Path | None) -> subprocess.Popen:
        env = dict(os.environ if self.env is None else self.env)
        env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1")
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
                                    cwd=str(cwd) if cwd is not None else None, **kwargs)
        except OSError as exc:
            raise self._no_python(exc) from exc

    def _pump(self, proc: subprocess.Popen, result: PipResult, on_line: LineCallback | None,
              interruptible: bool, cancel: threading.Event | None = None) -> bool:
        """Read pip's output to the end; returns whether a Ctrl+C stopped it. Once ``cancel`` is set, the lines
        pip had written before it was stopped are kept in the result but not passed on: what a cancelled pip
        would have done (its plan) is not shown as if it were going ahead."""
        assert proc.stdout is not None
        while True:
            try:
                for raw in proc.stdout:
                    line = raw.rstrip("\r\n")
                    result.lines.append(line)
                    if on_line is not None and not (cancel is not None and cancel.is_set()):
                        on_line(line)
                return False
            except KeyboardInterrupt:
                if interruptible:
                    self._stop(proc)
                    return True
                note = "studiolo: the install is running and cannot be stopped safely; it will finish shortly."
                result.lines.append(note)
                if on_line is not None:
                    on_line(note)

    def _watch(self, proc: subprocess.Popen, cancel: threading.Event) -> None:
        while proc.poll() is None:
            if cancel.wait(0.05):
                self._stop(proc)
                return

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        """Stop pip and what it started (build backends): its process group on POSIX, then kill after a grace."""
        if proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.terminate()
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL) if os.name == "posix" else proc.kill()
            except (ProcessLookupError, PermissionError):
                pass

    # -- inspecting the environment ----------------------------------------------------------------------

    def freeze(self) -> dict[str, str]:
        """Every distribution installed in the target environment: {canonical name: version}."""
        return self.python_json(FREEZE_SCRIPT)

    def python_json(self, code: str, *args: str, timeout: float = 120.0) -> Any:
        """Run ``python -c CODE ARGS`` in the target environment; the script prints one line
        ``STUDIOLO-JSON:<json>`` (other output is ignored). Raises :class:`PluginInstallError` when it fails."""
        completed = self.python_run(code, *args, timeout=timeout)
        value = parse_json_mark(completed.stdout)
        if value is _MISSING:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            raise PluginInstallError(f"Could not inspect the Python environment of {self.python} (exit status "
                                     f"{completed.returncode}).", hint="\n".join(tail) or None)
        return value

    def python_run(self, code: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        env = dict(os.environ if self.env is None else self.env)
        env.update(PYTHONIOENCODING="utf-8")
        try:
            return subprocess.run([self.python, "-c", code, *args], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, encoding="utf-8", errors="replace", env=env, timeout=timeout)
        except OSError as exc:
            raise self._no_python(exc) from exc
        except subprocess.TimeoutExpired as exc:
            raise PluginInstallError(f"Inspecting the Python environment of {self.python} took longer than "
                                     f"{timeout:.0f} s.") from exc

    def _no_python(self, exc: OSError) -> PluginInstallError:
        return PluginInstallError(f"Cannot run Python at {self.python}: {exc.strerror or exc}.",
                                  hint="Plugins are installed into the Python environment Studiolo runs from.")


_MISSING = object()


def parse_json_mark(stdout: str) -> Any:
    """The JSON value on the last ``STUDIOLO-JSON:`` line of a script's output (a sentinel when there is none)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(JSON_MARK):
            try:
                return json.loads(line[len(JSON_MARK):])
            except ValueError:
                return _MISSING
    return _MISSING
