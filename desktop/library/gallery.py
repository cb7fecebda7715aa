"""The gallery service: browsing, exporting, trashing and deleting library items, with their files.

:class:`Gallery` is the one place the window's gallery and ``studiolo gallery …`` share: the library's rows and
the files on disk kept in step. No Qt here, and every call blocks (on the disk or on the library's writer): the
GUI calls them on a worker thread.

* Listing never fails because a file is gone: :meth:`Gallery.details` says ``exists=False`` and
  :meth:`Gallery.remove_missing` forgets such a row.
* Deleting an item deletes its file and its JSON sidecar (``<file>.json``) too; the trash only hides an item
  until :meth:`Gallery.empty_trash` (or :meth:`Gallery.delete_now`, which skips it).
* :meth:`Gallery.export` copies atomically (a temporary file renamed into place): the destination is whole or
  untouched.
* The chain of refinements: :meth:`Gallery.details` says what an item was derived from (:class:`ParentLink`: the
  parent item, in the trash or not, or that it was deleted) and how many items were derived from it;
  ``Query(derived_from=id)`` lists those.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api.errors import DiskFullError, StudioloError
from desktop.destinations import check_destination, write_error
from desktop.library.db import Item, Library, LibraryError, Query
from desktop.library.store import disk_full_errnos, sidecar_path

__all__ = ["Gallery", "ItemDetails", "ParentLink"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParentLink:
    """What an item was derived from (the input file of the job that made it): the parent's id and file hash as
    recorded, and the parent item as it is now — None when it was deleted from the library (a parent deleted and
    indexed again is found by its hash)."""

    item_id: int | None
    sha256: str | None
    item: Item | None

    @property
    def gone(self) -> bool:
        """The parent is no longer in the library."""
        return self.item is None

    @property
    def trashed(self) -> bool:
        """The parent is in the trash."""
        return self.item is not None and self.item.trashed_at is not None


@dataclass(frozen=True)
class ItemDetails:
    """An item with what the library and the disk know about it: ``parent`` (None: it was derived from no library
    item) and ``derivatives``, how many items outside the trash were made from it."""

    item: Item
    tags: list[str]
    exists: bool            # the file is still on disk
    size_bytes: int | None  # None when missing
    parent: ParentLink | None = None
    derivatives: int = 0


@dataclass(frozen=True)
class Recipe:
    """What made an output, as "reuse" needs it to make the same again: the generator, its params (JSON form), the
    seed and the model reference (None when the metadata does not record one; a model-less generator's is None)."""

    generator_id: str
    params: dict[str, Any]
    seed: int | None = None
    model: str | None = None

    @classmethod
    def from_metadata(cls, generator_id: str, metadata: dict[str, Any]) -> Recipe:
        params, seed, model = metadata.get("params"), metadata.get("seed"), metadata.get("model")
        return cls(generator_id, dict(params) if isinstance(params, dict) else {},
                   seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None,
                   model if isinstance(model, str) and model else None)


class Gallery:
    """Library items and their files, for the gallery view and the CLI. Blocking; safe from any thread."""

    def __init__(self, library: Library) -> None:
        self.library = library

    # -- browsing --------------------------------------------------------------------------------------------

    def items(self, query: Query = Query(), *, limit: int = 100, offset: int = 0) -> list[Item]:
        """The items ``query`` picks, newest first (their files may be missing: see :meth:`details`)."""
        return self.library.query(query, limit=limit, offset=offset)

    def count(self, query: Query = Query()) -> int:
        return self.library.count(query)

    def details(self, item_id: int) -> ItemDetails:
        """The item, its tags and whether its file is on disk. :class:`LibraryError` when there is no such item."""
        item = self._item(item_id)
        size = _file_size(item.path)
        return ItemDetails(item=item, tags=self.library.tags(item_id), exists=size is not None, size_bytes=size,
                           parent=self.parent(item), derivatives=self.library.count(Query(derived_from=item_id)))

    def parent(self, item: Item) -> ParentLink | None:
        """What ``item`` was derived from (None: no library item). The parent is looked up by the id recorded,
        then by the recorded hash (a parent deleted and indexed again, or a library file copied before use)."""
        if item.parent_id is None and not item.parent_sha256:
            return None
        parent = self.library.get(item.parent_id) if item.parent_id is not None else None
        if parent is None and item.parent_sha256:
            parent = self.library.find_file(None, item.parent_sha256)
        if parent is not None and parent.id == item.id:
            parent = None  # never its own parent
        if parent is None and item.parent_id is None:
            return None  # its input was never a library item, and none has those bytes now
        return ParentLink(item.parent_id, item.parent_sha256, parent)

    def reuse(self, item_id: int) -> Recipe:
        """What made the item, to make it again: its generator, params (``metadata["params"]``; empty when not
        recorded), seed and model reference (None when not recorded)."""
        item = self._item(item_id)
        return Recipe.from_metadata(item.generator_id, item.metadata)

    # -- files -----------------------------------------------------------------------------------------------

    def export(self, item_id: int, dest: Path, *, overwrite: bool = False) -> Path:
        """Copy the item's file (and its JSON sidecar, if it has one) to ``dest``: into it when it is an existing
        folder (same name), else to that path. Returns the new file's path.

        Refuses to replace an existing file unless ``overwrite``; a missing source file, a missing or unwritable
        folder and a full disk (:class:`DiskFullError`) are clear errors, and nothing partial is left behind.
        """
        item = self._item(item_id)
        source = item.path
        if not source.is_file():
            raise LibraryError(
                f"The file of item {item_id} is missing: {source}.",
                hint="It was moved or deleted outside Studiolo; remove the item from the library "
                f"(`studiolo gallery delete {item_id} --now`).",
            )
        dest = Path(dest).expanduser()
        try:
            target = dest / source.name if dest.is_dir() else dest
        except OSError as exc:  # a name too long to even look up
            raise write_error(exc, dest) from exc
        check_destination(target)  # a file on the way, a name too long, a device: refused before writing
        if not target.parent.is_dir():
            raise StudioloError(f"Cannot export to {target}: the folder {target.parent} does not exist.",
                                hint="Create the folder first, or choose another destination.")
        side_source = sidecar_path(source)
        copies = [(source, target)]
        if side_source.is_file():
            copies.append((side_source, sidecar_path(target)))
            check_destination(sidecar_path(target))  # ".json" added must still fit the file system's names
        for _, to in copies:
            if to.resolve() == source.resolve() or to.resolve() == side_source.resolve():
                raise StudioloError(f"Cannot export item {item_id} onto its own file {to}.",
                                    hint="Choose another destination.")
            if os.path.lexists(to) and not overwrite:
                raise StudioloError(f"{to} already exists; it was left as it is.",
                                    hint="Choose another name, or allow overwriting (`--overwrite`).")
            if to.is_dir():
                raise StudioloError(f"Cannot export to {to}: it is a folder.", hint="Choose a file name.")
        # The sidecar goes first: like the store, a copied file never exists without its metadata.
        new_sidecar = len(copies) == 2 and not os.path.lexists(copies[1][1])
        if len(copies) == 2:
            _atomic_copy(*copies[1])
        try:
            _atomic_copy(source, target)
        except BaseException:
            if new_sidecar:
                _unlink_quietly(copies[1][1])
            raise
        return target

    # -- trash and deletion ----------------------------------------------------------------------------------

    def trash(self, item_ids: Sequence[int]) -> None:
        """Move the items to the trash (files stay until the trash is emptied)."""
        self.library.trash(item_ids).result()

    def restore(self, item_ids: Sequence[int]) -> None:
        """Take the items out of the trash."""
        self.library.restore(item_ids).result()

    def empty_trash(self) -> int:
        """Delete every item in the trash with its file and sidecar; returns how many items were deleted."""
        trashed = Query(trashed=True)
        ids: list[int] = []
        while True:  # every id first: paging while purging would skip rows
            page = self.library.query(trashed, limit=1000, offset=len(ids))
            ids.extend(item.id for item in page)
            if len(page) < 1000:
                break
        return self._delete(ids, trashed_only=True)

    def delete_now(self, item_ids: Sequence[int]) -> int:
        """Delete the items (in the trash or not) with their files and sidecars, skipping the trash; returns how
        many items were deleted. The rows go first: a file that cannot be deleted is logged, never listed again."""
        return self._delete(item_ids)

    def _delete(self, item_ids: Sequence[int], *, trashed_only: bool = False) -> int:
        # Under the files lock: between the rows going and the files going, another process reconciling the
        # library would otherwise take the files for outputs that lost their rows, and index them again.
        with self.library.files_lock():
            purged = self.library.purge(item_ids, trashed_only=trashed_only).result()
            self._delete_files(purged)
        return len(purged)

    def _delete_files(self, purged: list[Item]) -> None:
        for item in purged:
            for path in (item.path, sidecar_path(item.path)):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not delete %s of library item %s: %s", path, item.id, exc)

    def remove_missing(self, item_id: int) -> None:
        """Forget an item whose file is gone. Refused while the file is still there (delete it instead)."""
        item = self._item(item_id)
        if os.path.lexists(item.path):
            raise StudioloError(f"The file of item {item_id} is still there ({item.path}); it was not removed.",
                                hint="Move it to the trash or delete it instead.")
        self.library.purge([item_id]).result()

    def _item(self, item_id: int) -> Item:
        item = self.library.get(item_id)
        if item is None:
            raise LibraryError(f"There is no item {item_id} in the library.",
                               hint="`studiolo gallery list` shows the items and their ids.")
        return item


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _atomic_copy(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` through a temporary file in ``dest``'s folder, fsync'd, then renamed."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:60]}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise _export_error(exc, dest) from exc
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        _unlink_quietly(Path(tmp))
        if isinstance(exc, OSError):
            raise _export_error(exc, dest) from exc
        raise


def _export_error(exc: OSError, dest: Path) -> StudioloError:
    if exc.errno in (errno.ENAMETOOLONG, errno.ENOTDIR):
        return write_error(exc, dest)  # names the part too long, or the file in the way
    if exc.errno in disk_full_errnos():
        return DiskFullError(f"Not enough disk space to export to {dest.parent}; nothing was written there.",
                             hint="Free some disk space, or export to another disk.")
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = "Choose a folder you can write to." if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else (
        "Check the destination, or choose another one.")
    return StudioloError(f"Could not export to {dest}: {reason}.", hint=hint)
