"""Saving outputs into the library: each file with its row, or neither.

:class:`OutputSaver` writes an output through the :class:`~desktop.library.store.OutputStore` and indexes it in
the :class:`~desktop.library.db.Library`, both under the library's files lock (so reconciliation in another
process never takes a save under way for debris). When indexing fails — a full disk, a closed library — the file
and its sidecar are removed before the error goes on. Used as a context manager, it also removes everything it
saved before an error escaped the block (rows first, then files): a job that fails halfway leaves no file and no
row. What a *killed* process leaves half-done is :mod:`desktop.library.reconciliation`'s to tidy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop.api.outputs import EncodedOutput
from desktop.library.db import Library, LibraryError, NewItem
from desktop.library.store import OutputStore, sidecar_path

__all__ = ["OutputSaver", "SavedOutput"]

log = logging.getLogger(__name__)

INDEX_TIMEOUT = 60.0
"""Seconds to wait for the library's writer to index a saved file before giving up on it."""


@dataclass(frozen=True)
class SavedOutput:
    """A file saved (``sidecar``: with a JSON sidecar next to it) and its library row (None without a library)."""

    path: Path
    item_id: int | None
    sidecar: bool


class OutputSaver:
    """Saves outputs with :meth:`save`; :meth:`rollback` (or an error leaving the ``with`` block) removes them.
    ``library`` None: files only. One saver per job, used from one thread."""

    def __init__(self, store: OutputStore, library: Library | None = None) -> None:
        self.store = store
        self.library = library
        self.saved: list[SavedOutput] = []

    def save(self, encoded: EncodedOutput, metadata: dict[str, Any], item: NewItem | None = None, *,
             generator_id: str, job_id: str, index: int = 0, created: datetime | None = None) -> SavedOutput:
        """Write ``encoded`` (see :meth:`OutputStore.save`) and index ``item`` (its ``path`` filled in here).

        Raises what the store or the library raised (:class:`DiskFullError` on a full disk); nothing of this
        output is left behind then: no file, no sidecar, no temporary file, no row.
        """
        with self._lock():
            path = self.store.save(encoded, metadata, generator_id=generator_id, job_id=job_id, index=index,
                                   created=created)
            sidecar = not encoded.embeds_metadata
            item_id = None
            if self.library is not None and item is not None:
                try:
                    item_id = self._index(dataclasses.replace(item, path=str(path)))
                except BaseException:
                    _remove_files(path, sidecar)
                    raise
        saved = SavedOutput(path, item_id, sidecar)
        self.saved.append(saved)
        return saved

    def rollback(self) -> None:
        """Remove what this saver saved: the rows (one transaction), then the files. Never raises: a row that
        cannot be removed keeps its file (and the failure is logged), so nothing is left half-indexed."""
        saved, self.saved = self.saved, []
        if not saved:
            return
        try:
            with self._lock():
                ids = [s.item_id for s in saved if s.item_id is not None]
                if ids and self.library is not None:
                    self.library.purge(ids).result(timeout=INDEX_TIMEOUT)
                for s in saved:
                    _remove_files(s.path, s.sidecar)
        except Exception as exc:  # the original error is the one to report
            log.warning("could not remove the outputs of a failed save (%s): %s", [str(s.path) for s in saved], exc)

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return self.library.files_lock() if self.library is not None else contextlib.nullcontext()

    def _index(self, item: NewItem) -> int:
        assert self.library is not None
        future = self.library.add(item)
        try:
            return future.result(timeout=INDEX_TIMEOUT)
        except concurrent.futures.TimeoutError:
            if future.cancel():  # never written: the file goes, and the row never comes
                raise LibraryError(
                    f"The library at {self.library.path} took more than {INDEX_TIMEOUT:g} s to index {item.path}; "
                    "it was not saved.",
                    hint="Another program may be holding the library; close other Studiolo windows and try again.",
                ) from None
            return future.result()  # being written right now: its outcome decides (SQLite's busy timeout bounds it)

    def __enter__(self) -> OutputSaver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.rollback()


def _remove_files(path: Path, sidecar: bool) -> None:
    for leftover in (path, sidecar_path(path)) if sidecar else (path,):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s after a failed save: %s", leftover, exc)
