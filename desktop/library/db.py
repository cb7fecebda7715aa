"""The library's index: one SQLite database (``<data dir>/library.db``) of every saved output.

* WAL journal, foreign keys on, the schema version in ``PRAGMA user_version``. :data:`MIGRATIONS` is an ordered
  list: entry *i* upgrades version *i* to *i + 1*, each applied in its own transaction. A later schema adds an
  entry and bumps :data:`SCHEMA_VERSION`. Before an existing library (schema 1 or later) is upgraded, a copy of
  it is written next to it (``library.db.backup-YYYYmmdd-HHMMSS-schemaN``, through SQLite's backup API so what
  is still in the write-ahead log is included); when that copy cannot be written nothing is upgraded. Each step
  re-reads the version under the write lock, so two processes opening an old library at once upgrade it once.
* Schema 2: favourites, the trash (``trashed_at``), the generated text of text outputs, and ``items_fts``, an
  FTS5 index over prompt and text kept in step with ``items`` by triggers. :meth:`Library.query` takes whatever
  a person types as a search (:func:`fts_query` turns it into words, the last one matched as a prefix).
* Several processes (two Studiolo windows, the CLI) may share one library: every write is a ``BEGIN IMMEDIATE``
  transaction that waits for the other's lock (busy timeout) instead of failing.
* The files lock (:meth:`Library.files_lock`, ``library.db.files-lock`` next to the database, an OS file lock the
  kernel releases when its process dies, even by ``kill -9``) is held by whoever makes the files on disk and the
  rows disagree for a moment — saving (file, then row), deleting (row, then file) — and by reconciliation
  (:mod:`desktop.library.reconciliation`), so that it never takes another process's save under way for debris.
* A library written by a newer Studiolo is refused untouched (its version is read through a read-only
  connection before anything could write); a file that is not a SQLite database is refused and left as it is.
* One writer thread owns the only write connection; every write goes through its queue and answers with a
  :class:`~concurrent.futures.Future` (errors come back through it; the thread lives on). Reads are safe from any
  thread: each borrows a read-only connection from a small pool for the one statement and gives it back (not one
  per thread: Qt pool threads get a new Python thread state for every task, so per-thread connections would pile
  up, one per query, until the library closed).
* Schema 3: the chain of refinements. Each item records the SHA-256 of its file (``sha256``) and, when the job
  that made it started from an input file (image-to-image, inpaint), that file's item (``parent_id``, None when
  the input was no library item) and its SHA-256 (``parent_sha256``). :meth:`Library.find_file` finds an item by
  its path or, failing that, by its bytes (a copy of a library file elsewhere still links); the ``parent_id``
  keeps pointing at a deleted parent, so the child can say its parent is gone. Items indexed before schema 3 have
  no hash: they are found by their path only.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import filelock

from desktop import paths
from desktop.api.errors import DiskFullError, StudioloError
from desktop.library.encoders import metadata_to_json
from desktop.library.store import disk_full_errnos, free_bytes

__all__ = [
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "TEXT_PREVIEW_CHARS",
    "Library",
    "NewItem",
    "Item",
    "Query",
    "LibraryError",
    "LibraryVersionError",
    "LibraryClosedError",
    "LibraryBusyError",
    "backup_paths",
    "default_library_path",
    "fts_query",
    "FILES_LOCK_TIMEOUT",
]

T = TypeVar("T")

SCHEMA_VERSION = 3
"""The schema this Studiolo writes. Equals ``len(MIGRATIONS)``."""

MIGRATIONS: Sequence[Sequence[str]] = (
    # 0 → 1: items and their tags.
    (
        """CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            job_id TEXT,
            generator_id TEXT NOT NULL,
            generator_version TEXT,
            kind TEXT NOT NULL,
            model TEXT,
            prompt TEXT,
            path TEXT NOT NULL,
            created REAL NOT NULL,
            seed INTEGER,
            partial INTEGER NOT NULL DEFAULT 0,
            metadata TEXT NOT NULL
        )""",
        "CREATE INDEX items_created ON items (created)",
        "CREATE INDEX items_generator_id ON items (generator_id)",
        """CREATE TABLE tags (
            item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (item_id, tag)
        )""",
        "CREATE INDEX tags_tag ON tags (tag)",
    ),
    # 1 → 2: favourites, the trash, generated text, full-text search over prompt + text, indexes for the filters.
    (
        "ALTER TABLE items ADD COLUMN favourite INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE items ADD COLUMN trashed_at REAL",
        "ALTER TABLE items ADD COLUMN text TEXT",
        """CREATE VIRTUAL TABLE items_fts USING fts5(
            prompt, text, content = 'items', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
            INSERT INTO items_fts (rowid, prompt, text) VALUES (new.id, new.prompt, new.text);
        END""",
        """CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, prompt, text) VALUES ('delete', old.id, old.prompt, old.text);
        END""",
        """CREATE TRIGGER items_fts_update AFTER UPDATE OF prompt, text ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, prompt, text) VALUES ('delete', old.id, old.prompt, old.text);
            INSERT INTO items_fts (rowid, prompt, text) VALUES (new.id, new.prompt, new.text);
        END""",
        "INSERT INTO items_fts (items_fts) VALUES ('rebuild')",
        "CREATE INDEX items_trashed_created ON items (trashed_at, created)",
        "CREATE INDEX items_kind_created ON items (kind, created)",
        "CREATE INDEX items_model ON items (model)",
        "CREATE INDEX items_favourite_created ON items (created) WHERE favourite = 1",
    ),
    # 2 → 3: the chain of refinements (parent → child) and the content hash that finds a parent by its bytes.
    (
        "ALTER TABLE items ADD COLUMN sha256 TEXT",
        "ALTER TABLE items ADD COLUMN parent_id INTEGER",
        "ALTER TABLE items ADD COLUMN parent_sha256 TEXT",
        "CREATE INDEX items_sha256 ON items (sha256) WHERE sha256 IS NOT NULL",
        "CREATE INDEX items_parent ON items (parent_id) WHERE parent_id IS NOT NULL",
        "CREATE INDEX items_path ON items (path)",
    ),
)
"""Entry *i* holds the statements that upgrade schema version *i* to *i + 1*."""

FILES_LOCK_TIMEOUT = 60.0
"""How long (seconds) a save or a delete waits for the files lock another process holds before giving up."""

TEXT_PREVIEW_CHARS = 2000
"""How much of a text output's text :class:`Item` carries (the whole text is indexed for search)."""

_SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = (
    "id, job_id, generator_id, generator_version, kind, model, prompt, path, created, seed, partial, metadata, "
    f"favourite, trashed_at, substr(text, 1, {TEXT_PREVIEW_CHARS}), sha256, parent_id, parent_sha256"
)
_INSERT = (
    "INSERT INTO items (job_id, generator_id, generator_version, kind, model, prompt, path, created, seed, partial, "
    "metadata, favourite, text, sha256, parent_id, parent_sha256) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)"
)
_CHUNK = 500  # ids per statement in bulk updates (well under SQLite's limit on bound variables)
_IDLE_READERS = 4  # read-only connections kept open between reads; more concurrent readers open and close their own
_WORD = re.compile(r"[^\W_]")  # a chunk of the search with none of these holds no word for the FTS tokenizer
_BACKUP_SUFFIX = ".backup-"
_FILES_LOCK_SUFFIX = ".files-lock"
_STOP = object()


class LibraryError(StudioloError):
    """The library's database cannot be opened, read or written."""


class LibraryVersionError(LibraryError):
    """The library was written by a newer Studiolo; it is left untouched."""


class LibraryClosedError(LibraryError):
    """The library was closed; it takes no more reads or writes."""


class LibraryBusyError(LibraryError):
    """Another process held the library's files lock for longer than the caller would wait."""


@dataclass
class NewItem:
    """An output to index. ``created`` is unix time (now when None); ``metadata`` must be JSON-ready; ``text`` is
    the generated text of a text output (indexed for full-text search); ``tags`` are added with it. ``sha256`` is
    the hex SHA-256 of the file; ``parent_id``/``parent_sha256`` the item and the hash of the file the job started
    from (see the module's docstring, schema 3)."""

    generator_id: str
    kind: str
    path: Path | str
    metadata: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    generator_version: str | None = None
    model: str | None = None
    prompt: str | None = None
    created: float | None = None
    seed: int | None = None
    partial: bool = False
    text: str | None = None
    tags: tuple[str, ...] = ()
    sha256: str | None = None
    parent_id: int | None = None
    parent_sha256: str | None = None


@dataclass(frozen=True)
class Item:
    """An indexed output, as read back. ``created`` and ``trashed_at`` are unix time (``trashed_at`` None: not in
    the trash); ``text`` is the first :data:`TEXT_PREVIEW_CHARS` characters of a text output's text; ``sha256``,
    ``parent_id`` and ``parent_sha256`` as in :class:`NewItem` (None for items indexed before schema 3)."""

    id: int
    job_id: str | None
    generator_id: str
    generator_version: str | None
    kind: str
    model: str | None
    prompt: str | None
    path: Path
    created: float
    seed: int | None
    partial: bool
    metadata: dict[str, Any]
    favourite: bool = False
    trashed_at: float | None = None
    text: str | None = None
    sha256: str | None = None
    parent_id: int | None = None
    parent_sha256: str | None = None


@dataclass(frozen=True)
class Query:
    """Which items to show; every filter set must hold (AND). ``search`` is whatever the user typed: it is matched
    against the prompt and the generated text (words in any order, the last one as a prefix) and is never a
    syntax error. ``since`` is inclusive, ``until`` exclusive (unix time). ``trashed`` picks the trash instead of
    everything outside it. ``derived_from`` picks the items made from that item (its children in the chain)."""

    kinds: tuple[str, ...] = ()
    generator_id: str | None = None
    model: str | None = None
    since: float | None = None
    until: float | None = None
    favourites_only: bool = False
    tag: str | None = None
    search: str = ""
    trashed: bool = False
    derived_from: int | None = None


def default_library_path() -> Path:
    """``<data dir>/library.db``."""
    return paths.data_dir() / "library.db"


def backup_paths(path: Path) -> list[Path]:
    """The backups written next to the library at ``path`` before its upgrades, oldest first."""
    path = Path(path)
    try:
        found = [p for p in path.parent.iterdir() if p.name.startswith(path.name + _BACKUP_SUFFIX)
                 and not p.name.endswith(".tmp")]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.name)


def fts_query(text: str) -> str | None:
    """``text`` as typed by a person, as an FTS5 query that cannot be a syntax error: each whitespace-separated
    chunk becomes a quoted phrase (so quotes, ``AND``, ``NEAR(``, ``*``, ``-`` are only text), all must match, and
    the last is a prefix unless the text ends in a space. None when there is no word to look for."""
    cleaned = text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", " ")
    chunks = [chunk for chunk in cleaned.split() if _WORD.search(chunk)]
    if not chunks:
        return None
    phrases = ['"' + chunk.replace('"', '""') + '"' for chunk in chunks]
    if not cleaned[-1:].isspace():
        phrases[-1] += "*"
    return " ".join(phrases)


class Library:
    """The index of saved outputs. Create one per process; :meth:`close` it when done."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path if path is not None else default_library_path()).absolute()
        self._write = _open_for_writing(self.path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._idle_readers: list[sqlite3.Connection] = []
        self._thread = threading.Thread(target=self._run, name="studiolo-library-writer", daemon=True)
        self._thread.start()

    # -- writes ----------------------------------------------------------------------------------------------

    def add(self, item: NewItem) -> Future[int]:
        """Index ``item``; the future gives its id."""
        return self._submit(lambda conn: _insert(conn, item))

    def add_many(self, items: Sequence[NewItem]) -> Future[list[int]]:
        """Index ``items`` in one transaction (all or none); the future gives their ids, in order."""
        items = list(items)
        return self._submit(lambda conn: [_insert(conn, item) for item in items])

    def delete(self, item_id: int) -> Future[None]:
        """Remove the item (and its tags) from the index; its file stays. Deleting a missing item does nothing."""
        return self._submit(lambda conn: _none(conn.execute("DELETE FROM items WHERE id = ?", (item_id,))))

    def add_tag(self, item_id: int, tag: str) -> Future[None]:
        """Tag the item (tagging twice is harmless). Fails with :class:`LibraryError` when there is no such item."""

        def write(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT OR IGNORE INTO tags (item_id, tag) VALUES (?, ?)", (item_id, tag))
            except sqlite3.IntegrityError as exc:
                raise LibraryError(f"There is no library item {item_id} to tag.",
                                   hint="It was deleted meanwhile (in another window, or from the command line); "
                                   "refresh the gallery.") from exc

        return self._submit(write)

    def remove_tag(self, item_id: int, tag: str) -> Future[None]:
        """Untag the item; removing a tag it does not have does nothing."""
        return self._submit(
            lambda conn: _none(conn.execute("DELETE FROM tags WHERE item_id = ? AND tag = ?", (item_id, tag))))

    def set_favourite(self, item_id: int, favourite: bool) -> Future[None]:
        """Mark the item as a favourite, or not. An unknown id does nothing."""
        return self._submit(lambda conn: _none(
            conn.execute("UPDATE items SET favourite = ? WHERE id = ?", (int(bool(favourite)), item_id))))

    def trash(self, item_ids: Sequence[int]) -> Future[None]:
        """Move the items to the trash (now); their files stay until :meth:`purge`. Already trashed items keep
        the time they went there; unknown ids are ignored."""
        ids = _ids(item_ids)

        def write(conn: sqlite3.Connection) -> None:
            now = time.time()
            for chunk in _chunks(ids):
                conn.execute(f"UPDATE items SET trashed_at = ? WHERE trashed_at IS NULL AND id IN ({_marks(chunk)})",
                             (now, *chunk))

        return self._submit(write)

    def restore(self, item_ids: Sequence[int]) -> Future[None]:
        """Take the items out of the trash; unknown ids and items not in the trash are ignored."""
        ids = _ids(item_ids)

        def write(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(ids):
                conn.execute(f"UPDATE items SET trashed_at = NULL WHERE id IN ({_marks(chunk)})", chunk)

        return self._submit(write)

    def purge(self, item_ids: Sequence[int], *, trashed_only: bool = False) -> Future[list[Item]]:
        """Delete the items' rows (and tags) for good, in or out of the trash (only those in it with
        ``trashed_only``: one restored meanwhile, by another window, stays); the future gives the items that were
        deleted (unknown ids are ignored). Their files are the caller's to delete."""
        ids = _ids(item_ids)
        only = " AND trashed_at IS NOT NULL" if trashed_only else ""

        def write(conn: sqlite3.Connection) -> list[Item]:
            purged: list[Item] = []
            for chunk in _chunks(ids):
                where = f"id IN ({_marks(chunk)}){only}"
                rows = conn.execute(f"SELECT {_COLUMNS} FROM items WHERE {where}", chunk).fetchall()
                conn.execute(f"DELETE FROM items WHERE {where}", chunk)
                purged.extend(_item(row) for row in rows)
            return purged

        return self._submit(write)

    def _submit(self, operation: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``operation`` to run on the writer thread in its own transaction."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise LibraryClosedError(f"The library at {self.path} is closed; nothing more can be saved in it.")
            self._queue.put((operation, future))
        return future

    def _run(self) -> None:
        conn = self._write
        try:
            while True:
                task = self._queue.get()
                if task is _STOP:
                    return
                operation, future = task
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = _in_transaction(conn, operation)
                except BaseException as exc:  # delivered to the caller; the writer lives on
                    future.set_exception(_translate(exc, self.path))
                else:
                    future.set_result(result)
        finally:
            conn.close()

    # -- reads -----------------------------------------------------------------------------------------------

    def get(self, item_id: int) -> Item | None:
        """The item with id ``item_id`` (in the trash or not), or None."""
        rows = self._read(f"SELECT {_COLUMNS} FROM items WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def list_items(
        self, *, kind: str | None = None, generator_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Item]:
        """Items outside the trash, newest first, optionally only of one ``kind`` or generator."""
        return self.query(Query(kinds=(kind,) if kind is not None else (), generator_id=generator_id),
                          limit=limit, offset=offset)

    def query(self, query: Query = Query(), *, limit: int = 100, offset: int = 0) -> list[Item]:
        """The items ``query`` picks, newest first."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        where, args = _where(query)
        sql = f"SELECT {_COLUMNS} FROM items WHERE {where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?"
        return [_item(row) for row in self._read(sql, (*args, limit, offset))]

    def count(self, query: Query = Query()) -> int:
        """How many items ``query`` picks."""
        where, args = _where(query)
        return int(self._read(f"SELECT count(*) FROM items WHERE {where}", args)[0][0])

    def facets(self) -> dict[str, list[str]]:
        """The distinct kinds, generator ids, models and tags of the items outside the trash, each sorted."""
        # Each column's distinct values come from its index; only those values are checked against the trash.
        facets = {
            column: [row[0] for row in self._read(
                f"SELECT value FROM (SELECT DISTINCT {column} AS value FROM items WHERE {column} IS NOT NULL) "
                f"WHERE EXISTS (SELECT 1 FROM items WHERE {column} = value AND trashed_at IS NULL) ORDER BY value",
                ())]
            for column in ("kind", "generator_id", "model")
        }
        facets["tag"] = [row[0] for row in self._read(
            "SELECT DISTINCT tags.tag FROM tags JOIN items ON items.id = tags.item_id "
            "WHERE items.trashed_at IS NULL ORDER BY tags.tag", ())]
        return facets

    def position(self, query: Query, item_id: int) -> int | None:
        """The row (from 0, newest first, as :meth:`query` lists them) of item ``item_id`` among the items ``query``
        picks; None when it picks no such item."""
        where, args = _where(query)
        found = self._read(f"SELECT created, id FROM items WHERE {where} AND id = ?", (*args, item_id))
        if not found:
            return None
        created, found_id = found[0]
        newer = f"SELECT count(*) FROM items WHERE {where} AND (created > ? OR (created = ? AND id > ?))"
        return int(self._read(newer, (*args, created, created, found_id))[0][0])

    def find_file(self, path: Path | str | None, sha256: str | None = None) -> Item | None:
        """The item whose file is ``path`` or, when none is, whose file has the SHA-256 ``sha256`` (a byte-identical
        copy of a library file elsewhere): one outside the trash first, then the oldest. None when neither finds
        one (items indexed before schema 3 have no hash: only their path finds them)."""
        if path is not None:
            rows = self._read(f"SELECT {_COLUMNS} FROM items WHERE path = ? "
                              "ORDER BY trashed_at IS NOT NULL, id LIMIT 1", (str(path),))
            if rows:
                return _item(rows[0])
        if sha256:
            rows = self._read(f"SELECT {_COLUMNS} FROM items WHERE sha256 = ? "
                              "ORDER BY trashed_at IS NOT NULL, id LIMIT 1", (sha256,))
            if rows:
                return _item(rows[0])
        return None

    def tags(self, item_id: int) -> list[str]:
        """The item's tags, sorted."""
        return [row[0] for row in self._read("SELECT tag FROM tags WHERE item_id = ? ORDER BY tag", (item_id,))]

    def paths(self) -> set[str]:
        """The file path of every item, in the trash or not, as stored."""
        return {row[0] for row in self._read("SELECT path FROM items", ())}

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._borrow_reader()
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        finally:
            self._give_back_reader(conn)

    def _borrow_reader(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise LibraryClosedError(f"The library at {self.path} is closed.")
            if self._idle_readers:
                return self._idle_readers.pop()
        try:
            return _connect(self.path, read_only=True)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _give_back_reader(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle_readers) < _IDLE_READERS:
                self._idle_readers.append(conn)
                return
        conn.close()

    # -- the files lock --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def files_lock(self, timeout: float = FILES_LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the library's files lock (see the module's docstring) for the block; any thread, any process.

        Waits at most ``timeout`` seconds for another holder, then raises :class:`LibraryBusyError`. Not re-entrant:
        a thread that holds it and asks again waits for itself until the timeout.
        """
        lock = filelock.FileLock(self.path.with_name(self.path.name + _FILES_LOCK_SUFFIX), timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            raise LibraryBusyError(
                f"Another Studiolo process kept the library at {self.path} busy for {timeout:g} s "
                "(saving or deleting files).",
                hint="Try again in a moment; if it keeps happening, close the other Studiolo windows.",
            ) from exc
        except OSError as exc:
            raise _translate(exc, self.path) from exc
        try:
            yield
        finally:
            lock.release()

    # -- life ------------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 5.0) -> bool:
        """Finish the writes already queued, then stop the writer, waiting at most ``timeout`` seconds.

        Returns True when the writer has stopped (False: it is still busy and stops once the queue is done).
        Later writes and reads raise :class:`LibraryClosedError` (a read running in another thread at that very
        moment finishes, and its connection is closed then). Closing twice is harmless.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            conn.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _insert(conn: sqlite3.Connection, item: NewItem) -> int:
    created = time.time() if item.created is None else float(item.created)
    cursor = conn.execute(_INSERT, (
        item.job_id, item.generator_id, item.generator_version, item.kind, item.model, item.prompt, str(item.path),
        created, item.seed, int(bool(item.partial)), metadata_to_json(item.metadata), item.text, item.sha256,
        item.parent_id, item.parent_sha256,
    ))
    item_id = int(cursor.lastrowid or 0)
    conn.executemany("INSERT OR IGNORE INTO tags (item_id, tag) VALUES (?, ?)", [(item_id, t) for t in item.tags])
    return item_id


def _where(query: Query) -> tuple[str, list[Any]]:
    """The WHERE clause (never empty) and its arguments for ``query``."""
    where = ["trashed_at IS NOT NULL" if query.trashed else "trashed_at IS NULL"]
    args: list[Any] = []
    kinds = (query.kinds,) if isinstance(query.kinds, str) else tuple(query.kinds)  # "image" is one kind
    if kinds:
        where.append(f"kind IN ({_marks(kinds)})")
        args.extend(kinds)
    for column, value in (("generator_id", query.generator_id), ("model", query.model)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if query.since is not None:
        where.append("created >= ?")
        args.append(float(query.since))
    if query.until is not None:
        where.append("created < ?")
        args.append(float(query.until))
    if query.favourites_only:
        where.append("favourite = 1")
    if query.derived_from is not None:
        where.append("parent_id = ?")
        args.append(int(query.derived_from))
    if query.tag is not None:
        where.append("EXISTS (SELECT 1 FROM tags WHERE tags.item_id = items.id AND tags.tag = ?)")
        args.append(query.tag)
    match = fts_query(query.search or "")
    if match is not None:
        where.append("id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
        args.append(match)
    return " AND ".join(where), args


def _ids(item_ids: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in item_ids))


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _none(_: object) -> None:
    return None


def _item(row: tuple[Any, ...]) -> Item:
    try:
        metadata = json.loads(row[11])
    except (ValueError, TypeError):  # a damaged row still lists, without its metadata
        metadata = {}
    return Item(
        id=row[0], job_id=row[1], generator_id=row[2], generator_version=row[3], kind=row[4], model=row[5],
        prompt=row[6], path=Path(row[7]), created=row[8], seed=row[9], partial=bool(row[10]),
        metadata=metadata if isinstance(metadata, dict) else {}, favourite=bool(row[12]), trashed_at=row[13],
        text=row[14], sha256=row[15], parent_id=row[16], parent_sha256=row[17],
    )


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _open_for_writing(path: Path) -> sqlite3.Connection:
    """Check the file, then open, configure and migrate it. Refuses (untouched) what it must not write."""
    if path.exists():
        _check_existing(path)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _translate(exc, path) from exc
    try:
        conn = _connect(path, read_only=False)
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LibraryError(f"The library at {path} cannot use write-ahead logging (journal mode {mode}).",
                               hint="Keep Studiolo's data on a local disk, or point STUDIOLO_HOME elsewhere.")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path)
    except BaseException as exc:
        conn.close()
        translated = _translate(exc, path)
        if translated is exc:
            raise
        raise translated from exc
    return conn


def _check_existing(path: Path) -> None:
    """Refuse a file that is not SQLite, or a library newer than this Studiolo, without writing to it."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise _translate(exc, path) from exc
    if header and header != _SQLITE_HEADER:
        raise _not_a_database(path)
    if not header:
        return  # an empty file is an empty database: it gets created in place
    try:
        conn = _connect(path, read_only=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise _not_a_database(path) from exc
        raise _translate(exc, path) from exc
    _check_version(version, path)


def _check_version(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise LibraryVersionError(
            f"The library at {path} was written by a newer Studiolo (schema {version}; "
            f"this version knows {SCHEMA_VERSION}).",
            hint="Update Studiolo, or point STUDIOLO_HOME elsewhere to use another library.",
        )


def _not_a_database(path: Path) -> LibraryError:
    return LibraryError(
        f"{path} is not a Studiolo library (it is not a SQLite database); it was left as it is.",
        hint="Move or rename that file, or point STUDIOLO_HOME elsewhere.",
    )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one migration per transaction, after backing up a library
    that has data (schema 1 or later). The backup is written under the write lock, once the version is known to
    be old: a second process opening the same old library waits, then finds it upgraded and does nothing. A library
    created by this very call (schema 0) needs none."""
    backed_up = False
    first_version: int | None = None
    while True:
        version: int | None = None
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            _check_version(version, path)  # again, under the write lock: another process may have upgraded it
            if version >= SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                return
            if first_version is None:
                first_version = version
            if first_version >= 1 and not backed_up:
                _backup(path, version)
                backed_up = True
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, StudioloError):
                raise
            translated = _translate(exc, path)
            if isinstance(translated, DiskFullError):
                raise translated from exc
            raise LibraryError(
                f"Could not upgrade the library at {path} from schema {version} ({exc}).",
                hint="The library was left as it was. Report this to the Studiolo developers; meanwhile point "
                "STUDIOLO_HOME elsewhere to use another library.",
            ) from exc


def _backup(path: Path, version: int) -> Path:
    """Copy the library (what is in its write-ahead log included) to ``<name>.backup-<time>-schema<version>``
    next to it, through a temporary file: a backup that exists is whole. Raises :class:`DiskFullError` or
    :class:`LibraryError` (nothing is upgraded then)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{path.name}{_BACKUP_SUFFIX}{stamp}-schema{version}"
    dest = path.with_name(base)
    counter = 2
    while dest.exists():
        dest = path.with_name(f"{base}-{counter}")
        counter += 1
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        _write_backup(path, tmp)
        os.replace(tmp, dest)
    except BaseException as exc:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            try:
                leftover.unlink()
            except OSError:
                pass
        error: StudioloError
        if isinstance(_translate(exc, path), DiskFullError):
            error = DiskFullError(
                f"Not enough disk space to back up the library at {path} before upgrading it; "
                "it was not upgraded and is unchanged.",
                hint=f"Free some disk space in {path.parent} (the backup needs about as much as library.db), "
                "then start Studiolo again.",
            )
        else:
            error = LibraryError(
                f"Could not back up the library at {path} before upgrading it ({exc}); "
                "it was not upgraded and is unchanged.",
                hint=f"Check that {path.parent} is writable, then start Studiolo again; or point STUDIOLO_HOME "
                "elsewhere to use another library.",
            )
        raise error from exc
    return dest


def _open_backup_target(path: Path) -> sqlite3.Connection:
    """The connection a backup is written through (a seam for tests that fill the disk)."""
    return sqlite3.connect(path, isolation_level=None)


def _write_backup(source_path: Path, dest: Path) -> None:
    # A connection of its own: the caller's holds the write lock, which SQLite's backup cannot read through; in
    # WAL mode another connection still reads the last committed state, which is what is being upgraded.
    source = _connect(source_path, read_only=True)
    try:
        target = _open_backup_target(dest)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()
    with open(dest, "rb") as f:
        os.fsync(f.fileno())


def _in_transaction(conn: sqlite3.Connection, operation: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = operation(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _translate(exc: BaseException, path: Path) -> BaseException:
    """A user-facing error for a database or file failure; other exceptions pass through unchanged."""
    if isinstance(exc, StudioloError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    if (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or (
        isinstance(exc, OSError) and exc.errno in disk_full_errnos()
    ):
        from desktop.engine.memory import human_bytes

        free = free_bytes(path.parent)
        error: StudioloError = DiskFullError(
            f"Not enough disk space to update the library in {path.parent}"
            + ("." if free is None else f" ({human_bytes(free)} free)."),
            hint="Free some disk space, or point STUDIOLO_HOME to a disk with more room.",
        )
    elif isinstance(exc, (sqlite3.Error, OSError)):
        error = LibraryError(
            f"Could not use the library at {path}: {exc}.",
            hint=f"Check that {path.parent} is still there and that you can read and write it, then try again; "
            "if it keeps failing, restart Studiolo.",
        )
    else:
        return exc
    error.__cause__ = exc
    return error

