"""The library index: schema and migrations, the single writer thread, reads from any thread, refusals."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from desktop import paths
from desktop.api import DiskFullError, StudioloError
from desktop.library import db
from desktop.library.db import (
    SCHEMA_VERSION,
    Library,
    LibraryClosedError,
    LibraryError,
    LibraryVersionError,
    NewItem,
)

WAIT = 30  # seconds a future may take before the test fails (never reached when things work)


@pytest.fixture
def library() -> Iterator[Library]:
    lib = Library()
    yield lib
    assert lib.close(timeout=WAIT)


def new_item(n: int = 0, **changes: object) -> NewItem:
    values: dict[str, object] = dict(
        generator_id="demo.image", kind="image", path=f"/out/{n}.png", job_id=f"job-{n}", generator_version="1.0",
        model="tiny", prompt=f"a cat número {n} 🐈", created=1_700_000_000.0 + n, seed=n, partial=False,
        metadata={"prompt": f"a cat número {n} 🐈", "params": {"steps": n}},
    )
    values.update(changes)
    return NewItem(**values)  # type: ignore[arg-type]


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


# -- basics ------------------------------------------------------------------------------------------------------


def test_add_get_and_list(library: Library):
    ids = [library.add(new_item(n)).result(timeout=WAIT) for n in range(5)]
    assert len(set(ids)) == 5

    item = library.get(ids[2])
    assert item is not None
    assert (item.id, item.job_id, item.generator_id, item.generator_version, item.kind) == (
        ids[2], "job-2", "demo.image", "1.0", "image")
    assert (item.model, item.prompt, item.path, item.created, item.seed, item.partial) == (
        "tiny", "a cat número 2 🐈", Path("/out/2.png"), 1_700_000_002.0, 2, False)
    assert item.metadata == {"prompt": "a cat número 2 🐈", "params": {"steps": 2}}
    assert library.get(99_999) is None

    assert [i.id for i in library.list_items()] == ids[::-1]  # newest first
    assert [i.id for i in library.list_items(limit=2, offset=1)] == [ids[3], ids[2]]


def test_list_filters_by_kind_and_generator(library: Library):
    library.add(new_item(1)).result(timeout=WAIT)
    text_id = library.add(new_item(2, kind="text", generator_id="demo.text", partial=True)).result(timeout=WAIT)
    library.add(new_item(3, generator_id="other")).result(timeout=WAIT)
    texts = library.list_items(kind="text")
    assert [i.id for i in texts] == [text_id] and texts[0].partial
    assert [i.generator_id for i in library.list_items(generator_id="other")] == ["other"]
    assert library.list_items(kind="text", generator_id="other") == []


def test_created_defaults_to_now(library: Library):
    before = db.time.time()
    item = library.get(library.add(new_item(created=None)).result(timeout=WAIT))
    assert item is not None and item.created >= before


def test_default_path_is_in_the_data_dir(library: Library):
    assert library.path == paths.data_dir() / "library.db"
    assert library.path.is_file()


def test_schema_wal_and_version(library: Library):
    library.add(new_item()).result(timeout=WAIT)
    assert pragma(library.path, "journal_mode") == "wal"
    assert pragma(library.path, "user_version") == SCHEMA_VERSION == len(db.MIGRATIONS)
    conn = sqlite3.connect(library.path)
    try:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()
    assert {"items_created", "items_generator_id"} <= indexes


def test_foreign_keys_are_on_tags_cascade(library: Library):
    item_id = library.add(new_item()).result(timeout=WAIT)
    keep_id = library.add(new_item(1)).result(timeout=WAIT)
    for tag in ("cats", "favourite", "cats"):
        library.add_tag(item_id, tag).result(timeout=WAIT)
    library.add_tag(keep_id, "cats").result(timeout=WAIT)
    assert library.tags(item_id) == ["cats", "favourite"]

    library.delete(item_id).result(timeout=WAIT)
    assert library.get(item_id) is None
    assert library.tags(item_id) == []  # only foreign keys being on removes these
    assert library.tags(keep_id) == ["cats"]
    with pytest.raises(LibraryError, match="no library item"):
        library.add_tag(item_id, "ghost").result(timeout=WAIT)  # the reference is enforced too


def test_reopening_keeps_items():
    lib = Library()
    item_id = lib.add(new_item(7)).result(timeout=WAIT)
    assert lib.close(timeout=WAIT)
    with Library() as again:
        item = again.get(item_id)
        assert item is not None and item.prompt == "a cat número 7 🐈"


# -- threads -----------------------------------------------------------------------------------------------------


def test_writes_from_many_threads_all_land(library: Library):
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    futures: list[Future[int]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            start.wait(timeout=WAIT)
            mine = [library.add(new_item(t * 1000 + n)) for n in range(per_thread)]
            library.list_items(limit=5)  # reads interleave with the writes, from this thread's own connection
            with lock:
                futures.extend(mine)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=WAIT)
    assert not failures
    ids = [f.result(timeout=WAIT) for f in futures]
    assert len(ids) == len(set(ids)) == threads * per_thread
    assert len(library.list_items(limit=10_000)) == threads * per_thread


def test_reads_from_another_thread_see_committed_writes(library: Library):
    item_id = library.add(new_item()).result(timeout=WAIT)
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.append(library.get(item_id)))
    reader.start()
    reader.join(timeout=WAIT)
    assert seen and getattr(seen[0], "id", None) == item_id


def test_writer_errors_come_back_through_the_future_and_the_writer_lives(library: Library):
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (generator_id, kind, path, created, metadata) VALUES ('g', 'k', 'p', 1, '{}')")
        raise RuntimeError("plugin bug")

    with pytest.raises(RuntimeError, match="plugin bug"):
        library._submit(broken).result(timeout=WAIT)
    assert library.list_items() == []  # its transaction was rolled back
    with pytest.raises(LibraryError):
        library.add(new_item(generator_id=None)).result(timeout=WAIT)  # NOT NULL violated
    assert library.add(new_item()).result(timeout=WAIT) > 0


def test_disk_full_in_the_database_is_disk_full_error(library: Library):
    library.add(new_item()).result(timeout=WAIT)
    pages = library._submit(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0]).result(timeout=WAIT)
    library._submit(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}")).result(timeout=WAIT)

    with pytest.raises(DiskFullError) as info:
        library.add(new_item(1, metadata={"blob": "x" * 200_000})).result(timeout=WAIT)
    assert "disk space" in info.value.message and str(library.path.parent) in info.value.message
    assert len(library.list_items()) == 1  # nothing half-written

    library._submit(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823")).result(timeout=WAIT)
    assert library.add(new_item(2)).result(timeout=WAIT) > 0  # the writer survived


# -- closing -----------------------------------------------------------------------------------------------------


def test_close_drains_queued_writes():
    lib = Library()
    futures = [lib.add(new_item(n)) for n in range(50)]
    assert lib.close(timeout=WAIT)
    assert all(f.done() and f.exception() is None for f in futures)
    with Library() as again:
        assert len(again.list_items()) == 50


def test_close_is_bounded_and_later_writes_fail_clearly():
    lib = Library()
    release, entered = threading.Event(), threading.Event()

    def stuck(conn: sqlite3.Connection) -> str:
        entered.set()
        release.wait(timeout=WAIT)
        return "done"

    blocked = lib._submit(stuck)
    queued = lib.add(new_item())
    assert entered.wait(timeout=WAIT)
    assert lib.close(timeout=0.01) is False  # returns although the writer is still busy
    assert lib.closed

    with pytest.raises(LibraryClosedError, match="closed"):
        lib.add(new_item(1))
    with pytest.raises(LibraryClosedError):
        lib.delete(1)
    with pytest.raises(LibraryClosedError):
        lib.get(1)

    release.set()
    assert blocked.result(timeout=WAIT) == "done"
    assert queued.result(timeout=WAIT) > 0  # queued before close: still written
    assert lib.close(timeout=WAIT) is True  # a second close is harmless and now sees the writer stopped


# -- refusals and migrations -------------------------------------------------------------------------------------


def test_newer_library_is_refused_untouched(studiolo_home: Path):
    path = db.default_library_path()
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("INSERT INTO future VALUES (1)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 41}")
    conn.commit()
    conn.close()
    before = snapshot(path)

    with pytest.raises(LibraryVersionError) as info:
        Library()
    assert info.value.message == (
        f"The library at {path} was written by a newer Studiolo (schema {SCHEMA_VERSION + 41}; "
        f"this version knows {SCHEMA_VERSION})."
    )
    assert "STUDIOLO_HOME" in (info.value.hint or "") and "Update Studiolo" in (info.value.hint or "")
    assert snapshot(path) == before  # same bytes, same mtime, no -wal/-shm files: WAL was never set
    assert pragma(path, "journal_mode") == "delete"


def test_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path):
    path = tmp_path / "library.db"
    path.write_bytes(b"my holiday notes, not a database\n" * 100)
    before = snapshot(path)
    with pytest.raises(LibraryError, match="not a SQLite database") as info:
        Library(path)
    assert "STUDIOLO_HOME" in (info.value.hint or "")
    assert snapshot(path) == before


def test_corrupt_sqlite_file_is_refused_untouched(tmp_path: Path):
    path = tmp_path / "library.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    before = snapshot(path)
    with pytest.raises(StudioloError):
        Library(path)
    assert snapshot(path) == before


def test_an_empty_file_becomes_a_library(tmp_path: Path):
    path = tmp_path / "library.db"
    path.touch()
    with Library(path) as lib:
        assert lib.add(new_item()).result(timeout=WAIT) > 0
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_each_migration_runs_in_its_own_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "library.db"
    Library(path).close(timeout=WAIT)  # at version 1
    broken_v2 = ("CREATE TABLE extra (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(db, "MIGRATIONS", (*db.MIGRATIONS, broken_v2))
    monkeypatch.setattr(db, "SCHEMA_VERSION", 2)

    with pytest.raises(LibraryError, match="Could not upgrade the library") as info:
        Library(path)
    assert "from schema 1" in info.value.message
    assert pragma(path, "user_version") == 1
    conn = sqlite3.connect(path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "extra" not in tables and "items" in tables  # v2 rolled back whole; v1 kept

    monkeypatch.setattr(db, "MIGRATIONS", (*db.MIGRATIONS[:1], ("CREATE TABLE extra (x)",)))
    with Library(path) as lib:
        assert lib.list_items() == []
    assert pragma(path, "user_version") == 2
