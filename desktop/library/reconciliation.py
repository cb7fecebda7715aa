"""Reconciling the library with its outputs folder: nothing on disk that the library never sees.

A process killed while saving (``kill -9``, a crash, a power cut) can leave in the store's dated folders:

* temporary files of the atomic writer (``.<name>.XXXXXXXX.tmp``), as large as the output: removed;
* a whole output without its row (killed between the file's rename and the row's commit): indexed again from the
  metadata its sidecar or its bytes carry (:func:`~desktop.library.store.metadata_for`: PNG, WAV, FLAC), or —
  when none can be read — from what is known (the generator from its folder, the kind from the extension, the
  time from the file), and tagged :data:`RECOVERED_TAG`;
* a sidecar whose output is gone (killed while writing the output: the sidecar is written first): removed.

:func:`reconcile` runs when the window starts (on a worker thread) and before ``studiolo gallery`` commands.

* **Cheap when nothing is wrong**: one listing of the dated folders against the rows' paths; no file is read.
* **Idempotent**: a second run finds nothing to do.
* **Safe next to another Studiolo saving into the same library.** Every save holds the library's files lock
  (:meth:`~desktop.library.db.Library.files_lock`, an OS lock the kernel drops when its process dies, even by
  ``kill -9``) from its first byte written until its row is committed; every delete, from its row's removal until
  its files are gone. What looks wrong is acted on only under that lock, after listing again: a save that was
  under way has by then either finished (its row exists) or its process is dead, so what is still wrong is debris.
  (No age threshold, so what a killed save left is tidied at the very next start.) When the lock cannot be had in
  time nothing is touched and the report says ``busy``; the next start tidies.
* Only the names the store writes are looked at (``YYYY-MM-DD/<generator>/HHMMSS-<job>-<n>[-k].<suffix>``): a
  file someone put in the outputs folder is left alone.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api.files import is_temporary_name
from desktop.library.db import Library, LibraryBusyError, NewItem
from desktop.library.lineage import file_sha256, parent_from_metadata
from desktop.library.store import SIDECAR_SUFFIX, metadata_for

__all__ = ["RECOVERED_TAG", "LOCK_TIMEOUT", "ReconcileReport", "reconcile"]

log = logging.getLogger(__name__)

RECOVERED_TAG = "recovered"
"""The tag of an item indexed again from its file by :func:`reconcile`."""

LOCK_TIMEOUT = 5.0
"""Seconds :func:`reconcile` waits for another process's save to finish before leaving the tidying for later."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OUTPUT = re.compile(r"^\d{6}-(?P<job>.+?)-\d+(?:-\d+)?(?:\.[A-Za-z0-9_-]{1,16}){1,3}$")  # OutputStore's names
_MAX_TEXT = 16 * 1024 * 1024  # of a recovered text output, this much is indexed for search
_SQLITE_INT = range(-(2**63), 2**63)


@dataclass
class ReconcileReport:
    """What :func:`reconcile` did. ``busy``: another process held the files lock too long; nothing was done."""

    removed_temporary: list[Path] = field(default_factory=list)
    removed_sidecars: list[Path] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)  # ids of the items indexed again
    freed_bytes: int = 0
    busy: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.removed_temporary or self.removed_sidecars or self.recovered)

    def summary(self) -> str:
        """One line for a person (empty when nothing changed)."""
        from desktop.engine.memory import human_bytes

        parts = []
        if self.recovered:
            parts.append(f"indexed {len(self.recovered)} output(s) Studiolo had saved but not listed "
                         f"(tagged “{RECOVERED_TAG}”)")
        removed = len(self.removed_temporary) + len(self.removed_sidecars)
        if removed:
            parts.append(f"removed {removed} file(s) left by unfinished saves ({human_bytes(self.freed_bytes)})")
        return ("Library tidied after an interrupted save: " + "; ".join(parts) + ".") if parts else ""


@dataclass
class _Findings:
    temporary: list[Path] = field(default_factory=list)
    sidecars: list[Path] = field(default_factory=list)  # whose output is gone
    unindexed: list[Path] = field(default_factory=list)  # outputs without a row

    def __bool__(self) -> bool:
        return bool(self.temporary or self.sidecars or self.unindexed)


def reconcile(library: Library, root: Path | str, *, lock_timeout: float = LOCK_TIMEOUT) -> ReconcileReport:
    """Tidy the outputs folder ``root`` of ``library`` (see the module's docstring). Blocking: call it off the
    GUI thread. Raises :class:`~desktop.library.db.LibraryError` when the library cannot be read or written."""
    root = Path(root)
    report = ReconcileReport()
    if not _find(root, library):
        return report
    try:
        with library.files_lock(timeout=lock_timeout):
            findings = _find(root, library)  # again: a save under way when we first looked has finished by now
            for path in findings.temporary:
                _remove(path, report.removed_temporary, report)
            for path in findings.sidecars:
                _remove(path, report.removed_sidecars, report)
            items = [item for item in map(_recovered_item, findings.unindexed) if item is not None]
            if items:
                report.recovered = library.add_many(items).result()
    except LibraryBusyError:
        log.info("another Studiolo is saving into %s; the outputs folder will be tidied next time", library.path)
        report.busy = True
    if report.changed:
        log.warning("%s (%s)", report.summary(), root)
    return report


def _find(root: Path, library: Library) -> _Findings:
    """What is wrong in ``root``: one listing of the store's folders against the rows' paths."""
    findings = _Findings()
    indexed = {_key(path) for path in library.paths()}
    for folder in _generator_folders(root):
        try:
            names = {entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)}
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        for name in names:
            path = folder / name
            if is_temporary_name(name):
                findings.temporary.append(path)
            elif name.endswith(SIDECAR_SUFFIX) and _OUTPUT.match(name[: -len(SIDECAR_SUFFIX)]):
                if name[: -len(SIDECAR_SUFFIX)] not in names and _key(path) not in indexed:
                    findings.sidecars.append(path)
            elif _OUTPUT.match(name) and _key(path) not in indexed:
                findings.unindexed.append(path)
    return findings


def _generator_folders(root: Path) -> Iterator[Path]:
    """``root/YYYY-MM-DD/<generator>`` folders."""
    for date in _subfolders(root):
        if _DATE.match(date.name):
            yield from (folder for folder in _subfolders(date) if not folder.name.startswith("."))


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot list %s: %s", folder, exc)
        return []


def _key(path: Path | str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _remove(path: Path, removed: list[Path], report: ReconcileReport) -> None:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot remove %s, left by an unfinished save: %s", path, exc)
        return
    removed.append(path)
    report.freed_bytes += size


def _recovered_item(path: Path) -> NewItem | None:
    """The row of an output the library lost, from its metadata or, failing that, from its name and times."""
    try:
        stat = path.stat()
    except OSError:
        return None  # gone meanwhile (deleted by hand): nothing to index
    metadata = metadata_for(path) or {}
    name = _OUTPUT.match(path.name)
    kind = _text(metadata.get("kind")) or _kind_from_name(path.name)
    seed = metadata.get("seed")
    parent_id, parent_sha256 = parent_from_metadata(metadata)
    return NewItem(
        generator_id=_text(metadata.get("generator")) or path.parent.name,
        kind=kind,
        path=str(path),
        metadata=metadata,
        job_id=_text(metadata.get("job_id")) or (name.group("job") if name else None),
        generator_version=_text(metadata.get("generator_version")),
        model=_text(metadata.get("model")),
        prompt=_text(metadata.get("prompt")),
        created=stat.st_mtime,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) and seed in _SQLITE_INT else None,
        partial=metadata.get("partial") is True,
        text=_read_text(path) if kind == "text" else None,
        tags=(RECOVERED_TAG,),
        sha256=file_sha256(path),
        parent_id=parent_id,
        parent_sha256=parent_sha256,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _kind_from_name(name: str) -> str:
    """``image``, ``audio``, ``text`` (or ``video``…) from the file's extension; ``file`` when unknown."""
    mime, _ = mimetypes.guess_type(name, strict=False)
    return mime.split("/", 1)[0] if mime and not mime.startswith("application/") else "file"


def _read_text(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(_MAX_TEXT).decode("utf-8", errors="replace")
    except OSError:
        return None
