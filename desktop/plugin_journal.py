"""The plugin load journal: which plugin a Studiolo process was importing when it stopped.

Before importing a plugin the host writes a *mark* (a small JSON file, atomically) in ``<config>/plugin-journal``;
when the import returns — loaded or raised — it removes the mark. A mark still there after its process ended names
a plugin whose import never finished: it called ``os._exit()``, crashed the interpreter, hung until the process was
killed, or was still importing when the CLI gave up on it. The plugin manager skips such a plugin at the next start
and lists it as failed until the user enables it again (:meth:`LoadJournal.release`).

Several Studiolo processes may load plugins at the same time (the window and a CLI command), so a mark alone does
not say its process is gone. Each process holds an OS file lock (:mod:`filelock`: ``flock``/``LockFileEx``) while
it has marks in flight; the kernel drops the lock when the process dies, however it dies. A mark whose lock can be
taken belongs to a process that has ended. Marks are named after their process's lock, so each process writes and
removes only its own files (no shared file is read, changed and written back).

The journal never stops Studiolo from starting: a folder that cannot be written means imports are not journaled
(logged once), never that plugins are not loaded.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from desktop import paths
from desktop.api.files import atomic_write_json

log = logging.getLogger(__name__)

JOURNAL_DIR = "plugin-journal"
MARK_SUFFIX = ".mark.json"
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class Mark:
    """One import in flight: the file that says so, and what it says."""

    path: Path
    plugin: str
    module: str
    started: float  # time.time() when the import began
    reason: str | None = None  # why it may never finish, when the host gave up waiting for it

    def when(self) -> str:
        """The start time as the user reads it, e.g. ``2025-03-02 14:05:09``."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))

    def to_json(self) -> dict[str, object]:
        return {"plugin": self.plugin, "module": self.module, "started": self.started, "reason": self.reason,
                "pid": os.getpid()}


class LoadJournal:
    """The marks of one config folder (default: the user's). Thread-safe: imports begin and end on any thread."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else paths.config_dir() / JOURNAL_DIR
        self._guard = threading.Lock()
        self._lock: FileLock | None = None  # held while this journal has marks in flight
        self._token = ""
        self._sequence = 0
        self._in_flight: set[Path] = set()
        self._warned = False

    # -- this process's imports ------------------------------------------------------------------------------

    def begin(self, plugin: str, module: str) -> Mark | None:
        """Record that ``plugin`` is about to be imported. None when the journal cannot be written (logged)."""
        with self._guard:
            try:
                if not self._in_flight:
                    self._take_lock()
                self._sequence += 1
                mark = Mark(self.folder / f"{self._token}-{self._sequence}{MARK_SUFFIX}", plugin, module, time.time())
                atomic_write_json(mark.path, mark.to_json())
            except (OSError, Timeout) as exc:
                self._warn(exc)
                if not self._in_flight:
                    self._drop_lock()
                return None
            self._in_flight.add(mark.path)
            return mark

    def note(self, mark: Mark | None, reason: str) -> Mark | None:
        """Add why ``mark``'s import may never finish (the host stopped waiting); shown at the next start if the
        process ends before the import does."""
        if mark is None:
            return None
        noted = Mark(mark.path, mark.plugin, mark.module, mark.started, reason)
        with self._guard:
            if mark.path not in self._in_flight:
                return None  # the import ended meanwhile
            try:
                atomic_write_json(noted.path, noted.to_json())
            except OSError as exc:
                self._warn(exc)
        return noted

    def end(self, mark: Mark | None) -> None:
        """The import ``mark`` recorded returned (or the host lets it go): remove the mark. Idempotent."""
        if mark is None:
            return
        with self._guard:
            if mark.path not in self._in_flight:
                return
            self._in_flight.discard(mark.path)
            try:
                mark.path.unlink(missing_ok=True)
            except OSError as exc:
                self._warn(exc)
            if not self._in_flight:  # the marks go before the lock: a lock free with marks means a dead process
                self._drop_lock()

    def _take_lock(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        lock = FileLock(self.folder / f"{self._token}{LOCK_SUFFIX}", thread_local=False)
        lock.acquire(timeout=0)
        self._lock = lock

    def _drop_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the plugin load journal in %s cannot be written (%s); plugin imports are not journaled",
                        self.folder, exc)

    # -- what earlier processes left -------------------------------------------------------------------------

    def stopped(self) -> dict[str, Mark]:
        """The plugins whose import never finished in a process that has ended, by plugin name (the earliest mark
        of each). Marks of processes still running are not included."""
        found: dict[str, Mark] = {}
        for mark in self._dead_marks():
            if mark.plugin not in found or mark.started < found[mark.plugin].started:
                found[mark.plugin] = mark
        return found

    def release(self, plugin: str) -> bool:
        """Forget that ``plugin`` stopped a process (the user enabled it again). Returns whether there was a mark."""
        released = False
        for mark in self._dead_marks():
            if mark.plugin == plugin:
                mark.path.unlink(missing_ok=True)
                released = True
        self._remove_unused_locks()
        return released

    def _dead_marks(self) -> list[Mark]:
        """The marks whose process's lock is free (read while holding that lock, so its owner cannot be between
        removing its last mark and releasing its lock)."""
        try:
            paths_by_token: dict[str, list[Path]] = {}
            for path in self.folder.glob(f"*{MARK_SUFFIX}"):
                token = path.name[: -len(MARK_SUFFIX)].rsplit("-", 1)[0]
                paths_by_token.setdefault(token, []).append(path)
        except OSError:
            return []
        marks: list[Mark] = []
        for token, mark_paths in paths_by_token.items():
            if token == self._token and self._lock is not None:
                continue  # ours, in flight
            lock = FileLock(self.folder / f"{token}{LOCK_SUFFIX}", thread_local=False)
            try:
                lock.acquire(timeout=0)
            except (Timeout, OSError):
                continue  # its process is running (or the folder is read-only: nothing to decide)
            try:
                marks += [m for m in map(_read_mark, mark_paths) if m is not None]
            finally:
                lock.release()
        return marks

    def _remove_unused_locks(self) -> None:
        """Delete lock files of ended processes that have no mark left."""
        try:
            tokens = {p.name[: -len(MARK_SUFFIX)].rsplit("-", 1)[0] for p in self.folder.glob(f"*{MARK_SUFFIX}")}
            locks = list(self.folder.glob(f"*{LOCK_SUFFIX}"))
        except OSError:
            return
        for path in locks:
            token = path.name[: -len(LOCK_SUFFIX)]
            if token in tokens or token == self._token:
                continue
            lock = FileLock(path, thread_local=False)
            try:
                lock.acquire(timeout=0)
            except (Timeout, OSError):
                continue
            try:
                path.unlink(missing_ok=True)
            finally:
                lock.release()


def _read_mark(path: Path) -> Mark | None:
    """A mark file's content; None when it vanished or is not one (a torn file cannot happen: writes are atomic)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Mark(path, str(raw["plugin"]), str(raw.get("module", "")), float(raw["started"]),
                    str(raw["reason"]) if raw.get("reason") else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None
