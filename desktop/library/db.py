"""The library's index: one SQLite database (``<data dir>/library.db``) of every saved output.

* WAL journal, foreign keys on, the schema version in ``PRAGMA user_version``. :data:`MIGRATIONS` is an ordered
  list: entry *i* upgrades version *i* to *i + 1*, each applied in its own transaction. A later schema adds an
  entry and bumps :data:`SCHEMA_VERSION`.
* A library written by a newer Studiolo is refused untouched (its version is read through a read-only
  connection before anything could write); a file that is not a SQLite database is refused and left as it is.
* One writer thread owns the only write connection; every write goes through its queue and answers with a
  :class:`~concurrent.futures.Future` (errors come back through it; the thread lives on). Reads use a read-only
  connection per thread and are safe from any thread.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from desktop import paths
from desktop.api.errors import DiskFullError, StudioloError
from desktop.library.encoders import metadata_to_json
from desktop.library.store import disk_full_errnos

__all__ = [
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "Library",
    "NewItem",
    "Item",
    "LibraryError",
    "LibraryVersionError",
    "LibraryClosedError",
    "default_library_path",
]

T = TypeVar("T")

SCHEMA_VERSION = 1
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
)
"""Entry *i* holds the statements that upgrade schema version *i* to *i + 1*."""

_SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = "id, job_id, generator_id, generator_version, kind, model, prompt, path, created, seed, partial, metadata"
_STOP = object()


class LibraryError(StudioloError):
    """The library's database cannot be opened, read or written."""


class LibraryVersionError(LibraryError):
    """The library was written by a newer Studiolo; it is left untouched."""


class LibraryClosedError(LibraryError):
    """The library was closed; it takes no more reads or writes."""


@dataclass
class NewItem:
    """An output to index. ``created`` is unix time (now when None); ``metadata`` must be JSON-ready."""

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


@dataclass(frozen=True)
class Item:
    """An indexed output, as read back. ``created`` is unix time."""

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


def default_library_path() -> Path:
    """``<data dir>/library.db``."""
    return paths.data_dir() / "library.db"


class Library:
    """The index of saved outputs. Create one per process; :meth:`close` it when done."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path if path is not None else default_library_path()).absolute()
        self._write = _open_for_writing(self.path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._thread = threading.Thread(target=self._run, name="studiolo-library-writer", daemon=True)
        self._thread.start()

    # -- writes ----------------------------------------------------------------------------------------------

    def add(self, item: NewItem) -> Future[int]:
        """Index ``item``; the future gives its id."""

        def write(conn: sqlite3.Connection) -> int:
            created = time.time() if item.created is None else float(item.created)
            cursor = conn.execute(
                f"INSERT INTO items ({_COLUMNS.partition(', ')[2]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item.job_id, item.generator_id, item.generator_version, item.kind, item.model, item.prompt,
                 str(item.path), created, item.seed, int(bool(item.partial)), metadata_to_json(item.metadata)),
            )
            return int(cursor.lastrowid or 0)

        return self._submit(write)

    def delete(self, item_id: int) -> Future[None]:
        """Remove the item (and its tags) from the index; its file stays. Deleting a missing item does nothing."""
        return self._submit(lambda conn: _none(conn.execute("DELETE FROM items WHERE id = ?", (item_id,))))

    def add_tag(self, item_id: int, tag: str) -> Future[None]:
        """Tag the item (tagging twice is harmless). Fails with :class:`LibraryError` when there is no such item."""

        def write(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT OR IGNORE INTO tags (item_id, tag) VALUES (?, ?)", (item_id, tag))
            except sqlite3.IntegrityError as exc:
                raise LibraryError(f"There is no library item {item_id} to tag.") from exc

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
        """The item with id ``item_id``, or None."""
        rows = self._read(f"SELECT {_COLUMNS} FROM items WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def list_items(
        self, *, kind: str | None = None, generator_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Item]:
        """Items, newest first, optionally only of one ``kind`` or generator."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        where, args = [], []
        for column, value in (("kind", kind), ("generator_id", generator_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, id DESC LIMIT ? OFFSET ?"
        return [_item(row) for row in self._read(sql, (*args, limit, offset))]

    def tags(self, item_id: int) -> list[str]:
        """The item's tags, sorted."""
        return [row[0] for row in self._read("SELECT tag FROM tags WHERE item_id = ? ORDER BY tag", (item_id,))]

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._reader().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        with self._lock:
            if self._closed:
                raise LibraryClosedError(f"The library at {self.path} is closed.")
            if conn is None:
                conn = _connect(self.path, read_only=True)
                self._local.conn = conn
                self._readers.append(conn)
        return conn

    # -- life ------------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 5.0) -> bool:
        """Finish the writes already queued, then stop the writer, waiting at most ``timeout`` seconds.

        Returns True when the writer has stopped (False: it is still busy and stops once the queue is done).
        Later writes and reads raise :class:`LibraryClosedError` (a read running in another thread at that very
        moment fails with :class:`LibraryError`). Closing twice is harmless.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _none(_: object) -> None:
    return None


def _item(row: tuple[Any, ...]) -> Item:
    try:
        metadata = json.loads(row[11])
    except ValueError:
        metadata = {}
    return Item(
        id=row[0], job_id=row[1], generator_id=row[2], generator_version=row[3], kind=row[4], model=row[5],
        prompt=row[6], path=Path(row[7]), created=row[8], seed=row[9], partial=bool(row[10]),
        metadata=metadata if isinstance(metadata, dict) else {},
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
    """Bring the schema up to :data:`SCHEMA_VERSION`, one migration per transaction."""
    while True:
        version: int | None = None
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            _check_version(version, path)  # again, under the write lock: another process may have upgraded it
            if version >= SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                return
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
        error: StudioloError = DiskFullError(
            f"Not enough disk space to update the library in {path.parent}.",
            hint="Free some disk space, or point STUDIOLO_HOME to a disk with more room.",
        )
    elif isinstance(exc, (sqlite3.Error, OSError)):
        error = LibraryError(f"Could not use the library at {path}: {exc}.")
    else:
        return exc
    error.__cause__ = exc
    return error

