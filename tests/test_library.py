"""The library index: schema and migrations, the single writer thread, reads from any thread, refusals."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from desktop import paths
from desktop.api import StudioloError
from desktop.api.errors import DiskFullError
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
    assert {"items_created", "items_generator_id", "items_trashed_created", "items_kind_created", "items_model",
            "items_favourite_created"} <= indexes


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


def test_reads_from_many_threads_share_a_few_connections_closed_with_the_library(monkeypatch: pytest.MonkeyPatch):
    # Qt's pool threads get a new Python thread state per task: connections kept per thread would pile up.
    opened: list[sqlite3.Connection] = []
    real_connect = db._connect

    def tracking(path: Path, *, read_only: bool) -> sqlite3.Connection:
        conn = real_connect(path, read_only=read_only)
        if read_only:
            opened.append(conn)
        return conn

    def is_open(conn: sqlite3.Connection) -> bool:
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return False
        return True

    monkeypatch.setattr(db, "_connect", tracking)
    lib = Library()
    lib.add(new_item()).result(timeout=WAIT)
    for _ in range(30):  # one short-lived thread after another
        reader = threading.Thread(target=lib.count)
        reader.start()
        reader.join(timeout=WAIT)
    assert len(opened) == 1 and lib.count() == 1

    threads = 10
    start = threading.Barrier(threads)
    counts: list[int] = []

    def read() -> None:
        start.wait(timeout=WAIT)
        counts.extend(lib.count() for _ in range(20))

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=WAIT)
    assert counts == [1] * threads * 20
    assert sum(is_open(conn) for conn in opened) <= db._IDLE_READERS  # the others were closed when given back
    assert lib.close(timeout=WAIT)
    assert not any(is_open(conn) for conn in opened)


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
    Library(path).close(timeout=WAIT)  # at the current version
    current = SCHEMA_VERSION
    broken_next = ("CREATE TABLE extra (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(db, "MIGRATIONS", (*db.MIGRATIONS, broken_next))
    monkeypatch.setattr(db, "SCHEMA_VERSION", current + 1)

    with pytest.raises(LibraryError, match="Could not upgrade the library") as info:
        Library(path)
    assert f"from schema {current}" in info.value.message
    assert pragma(path, "user_version") == current
    conn = sqlite3.connect(path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "extra" not in tables and "items" in tables  # the new step rolled back whole; the others kept

    monkeypatch.setattr(db, "MIGRATIONS", (*db.MIGRATIONS[:current], ("CREATE TABLE extra (x)",)))
    with Library(path) as lib:
        assert lib.list_items() == []
    assert pragma(path, "user_version") == current + 1


def test_a_newer_library_at_schema_99_is_refused_byte_for_byte_untouched(studiolo_home: Path):
    path = db.default_library_path()
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, stuff TEXT)")
    conn.execute("INSERT INTO items (stuff) VALUES ('from the future')")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = snapshot(path)

    with pytest.raises(LibraryVersionError, match="schema 99"):
        Library()
    assert snapshot(path) == before  # no backup written, no -wal/-shm either
    assert db.backup_paths(path) == []


# -- upgrading from schema 1 -------------------------------------------------------------------------------------

V1_COLUMNS = "job_id, generator_id, generator_version, kind, model, prompt, path, created, seed, partial, metadata"


def make_schema_1(path: Path, rows: int = 3, *, keep_open: bool = False) -> sqlite3.Connection | None:
    """A library as Studiolo's schema 1 wrote it (WAL, only MIGRATIONS[0] applied) holding ``rows`` items. With
    ``keep_open`` the connection stays open and the rows stay in the write-ahead log, not yet in library.db."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("BEGIN")
    for statement in db.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO items ({V1_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(f"job-{n}", "demo.image", "1.0", "image", "tiny", f"an old lighthouse número {n}",
                       f"/out/{n}.png", 1_600_000_000.0 + n, n, 0, '{"params": {"steps": 1}}') for n in range(rows)])
    conn.execute("INSERT INTO tags (item_id, tag) VALUES (1, 'old')")
    conn.execute("COMMIT")
    if keep_open:
        return conn
    conn.close()
    return None


def test_schema_1_library_is_backed_up_then_upgraded_keeping_its_rows(studiolo_home: Path):
    path = db.default_library_path()
    holder = make_schema_1(path, rows=3, keep_open=True)  # rows only in the -wal: a file copy would miss them
    assert holder is not None
    try:
        with Library() as lib:
            assert pragma(path, "user_version") == SCHEMA_VERSION
            items = lib.list_items()
            assert [i.prompt for i in items] == [f"an old lighthouse número {n}" for n in (2, 1, 0)]
            assert all(not i.favourite and i.trashed_at is None and i.text is None for i in items)
            assert lib.tags(1) == ["old"]
            # the full-text index was built from the rows already there, and new rows join it
            assert [i.id for i in lib.query(db.Query(search="lighthou"))] == [3, 2, 1]
            assert [i.id for i in lib.query(db.Query(search="numero 1"))] == [2]
            new_id = lib.add(new_item(9, prompt="a new lighthouse")).result(timeout=WAIT)
            assert [i.id for i in lib.query(db.Query(search="lighthouse"))][0] == new_id
    finally:
        holder.close()

    backups = db.backup_paths(path)
    assert len(backups) == 1
    assert backups[0].name.startswith("library.db.backup-") and backups[0].name.endswith("-schema1")
    stamp = backups[0].name[len("library.db.backup-"):-len("-schema1")]
    assert len(stamp) == 15 and stamp[8] == "-" and (stamp[:8] + stamp[9:]).isdigit()  # YYYYmmdd-HHMMSS
    conn = sqlite3.connect(f"{backups[0].as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 3
        columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
        assert "favourite" not in columns and "prompt" in columns
    finally:
        conn.close()

    with Library() as again:  # already upgraded: no second backup
        assert len(again.list_items()) == 4
    assert len(db.backup_paths(path)) == 1


def test_a_fresh_library_needs_no_backup(tmp_path: Path):
    path = tmp_path / "library.db"
    with Library(path) as lib:
        lib.add(new_item()).result(timeout=WAIT)
    assert db.backup_paths(path) == []
    assert sorted(p.name for p in tmp_path.iterdir() if "backup" in p.name) == []


def test_a_backup_that_cannot_be_written_stops_the_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "library.db"
    make_schema_1(path, rows=40)
    real_target = db._open_backup_target

    def full_disk(dest: Path) -> sqlite3.Connection:
        conn = real_target(dest)
        conn.execute("PRAGMA max_page_count = 2")  # SQLite's own "database or disk is full" when it grows past
        return conn

    monkeypatch.setattr(db, "_open_backup_target", full_disk)
    with pytest.raises(DiskFullError) as info:
        Library(path)
    assert "back up" in info.value.message and "not upgraded" in info.value.message
    assert "Free some disk space" in (info.value.hint or "")
    assert pragma(path, "user_version") == 1
    conn = sqlite3.connect(path)
    try:
        assert "favourite" not in {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    finally:
        conn.close()
    assert [p.name for p in tmp_path.iterdir() if "backup" in p.name] == []  # no partial backup left

    def unwritable(dest: Path) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(db, "_open_backup_target", unwritable)
    with pytest.raises(LibraryError, match="Could not back up") as info2:
        Library(path)
    assert not isinstance(info2.value, DiskFullError) and "writable" in (info2.value.hint or "")
    assert pragma(path, "user_version") == 1

    monkeypatch.setattr(db, "_open_backup_target", real_target)  # room again: the upgrade goes through
    with Library(path) as lib:
        assert len(lib.list_items()) == 40
    assert len(db.backup_paths(path)) == 1


# -- two processes ---------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def start_second_process(code: str) -> subprocess.Popen[str]:
    """Run ``code`` in another Python with the same STUDIOLO_HOME; it prints "ready", then waits for a line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"second process did not start: {line!r} {proc.communicate(timeout=WAIT)}")
    return proc


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def test_two_processes_write_one_library_at_once(studiolo_home: Path):
    n = 150
    proc = start_second_process(f"""
import sys
from desktop.library import Library, NewItem
with Library() as lib:
    print("ready", flush=True)
    sys.stdin.readline()
    futures = [lib.add(NewItem(generator_id="other.process", kind="text", path=f"/b/{{i}}.txt", job_id=f"b-{{i}}",
                               prompt=f"from the other process {{i}}", text="shared library"))
               for i in range({n})]
    ids = [f.result(timeout=60) for f in futures]
    print(len(ids), lib.count(), flush=True)
""")
    try:
        with Library() as lib:
            go(proc)
            mine = [lib.add(new_item(i, job_id=f"a-{i}")) for i in range(n)]
            ids = [f.result(timeout=WAIT * 4) for f in mine]
            out, err = proc.communicate(timeout=WAIT * 4)
            assert proc.returncode == 0, err
            assert int(out.split()[0]) == n
            assert lib.count() == 2 * n
            assert lib.count(db.Query(generator_id="other.process")) == n
            assert lib.count(db.Query(search="other process")) == n
            assert {i.id for i in lib.query(db.Query(generator_id="demo.image"), limit=1000)} == set(ids)
    finally:
        if proc.poll() is None:
            proc.kill()
    conn = sqlite3.connect(db.default_library_path())
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(DISTINCT id) FROM items").fetchone()[0] == 2 * n
        conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")  # raises when out of step
    finally:
        conn.close()


def test_two_processes_opening_an_old_library_at_once_upgrade_it_once(studiolo_home: Path):
    path = db.default_library_path()
    make_schema_1(path, rows=2000)
    proc = start_second_process("""
import sys
from desktop.library import Library, Query
print("ready", flush=True)
sys.stdin.readline()
with Library() as lib:
    print(lib.count(), lib.count(Query(search="lighthouse")), flush=True)
""")
    try:
        go(proc)
        with Library() as lib:
            assert lib.count(db.Query(search="lighthouse")) == 2000
        out, err = proc.communicate(timeout=WAIT * 4)
        assert proc.returncode == 0, err
        assert out.split() == ["2000", "2000"]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert len(db.backup_paths(path)) == 1  # whoever upgraded backed up; the other found it done
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
    finally:
        conn.close()


# -- schema 2: queries, search, favourites, tags, trash ----------------------------------------------------------

Query = db.Query


def ids_of(items: list[db.Item]) -> list[int]:
    return [i.id for i in items]


@pytest.fixture
def varied(library: Library) -> dict[str, int]:
    """Six items of several kinds, generators, models and times; returns their ids by name."""
    specs = {
        "fox": dict(kind="image", generator_id="image.diffusers", model="sd-turbo", prompt="a misty fox at dawn"),
        "castle": dict(kind="image", generator_id="image.diffusers", model="sd-1.5", prompt="an ancient castle"),
        "story": dict(kind="text", generator_id="text.transformers", model="gpt2", prompt="Tell a story",
                      text="Once upon a time a lighthouse keeper befriended a fox."),
        "poem": dict(kind="text", generator_id="text.transformers", model="qwen", prompt="A poem about the café",
                     text="Le café était fermé; la rivière chantait."),
        "speech": dict(kind="audio", generator_id="audio.speech", model="mms", prompt="hello fox and friends"),
        "song": dict(kind="audio", generator_id="audio.music", model="musicgen", prompt="a lo-fi beat"),
    }
    ids = {}
    for n, (name, spec) in enumerate(specs.items()):
        ids[name] = library.add(new_item(n, **spec)).result(timeout=WAIT)  # created = 1_700_000_000 + n
    return ids


def test_query_filters_combine_and_come_newest_first(library: Library, varied: dict[str, int]):
    v = varied
    assert ids_of(library.query()) == [v[k] for k in ("song", "speech", "poem", "story", "castle", "fox")]
    assert library.count() == 6
    assert ids_of(library.query(Query(kinds=("image",)))) == [v["castle"], v["fox"]]
    assert ids_of(library.query(Query(kinds="image"))) == [v["castle"], v["fox"]]  # type: ignore[arg-type]
    assert ids_of(library.query(Query(kinds=("image", "audio")))) == [v["song"], v["speech"], v["castle"], v["fox"]]
    assert ids_of(library.query(Query(generator_id="text.transformers"))) == [v["poem"], v["story"]]
    assert ids_of(library.query(Query(model="sd-turbo"))) == [v["fox"]]
    assert ids_of(library.query(Query(since=1_700_000_002.0, until=1_700_000_004.0))) == [v["poem"], v["story"]]
    assert ids_of(library.query(Query(kinds=("image",), model="sd-1.5", since=1_700_000_001.0))) == [v["castle"]]
    assert library.query(Query(kinds=("image",), generator_id="audio.music")) == []
    assert library.count(Query(kinds=("text", "audio"), search="fox")) == 2  # story (in its text) and speech
    assert ids_of(library.query(limit=2, offset=1)) == [v["speech"], v["poem"]]
    with pytest.raises(ValueError):
        library.query(limit=-1)


def test_favourites_and_tags_filter_and_show(library: Library, varied: dict[str, int]):
    v = varied
    library.set_favourite(v["fox"], True).result(timeout=WAIT)
    library.set_favourite(v["song"], True).result(timeout=WAIT)
    library.set_favourite(v["song"], False).result(timeout=WAIT)
    fox = library.get(v["fox"])
    assert fox is not None and fox.favourite
    assert ids_of(library.query(Query(favourites_only=True))) == [v["fox"]]

    for name, tag in (("fox", "animals"), ("story", "animals"), ("story", "draft"), ("castle", "draft")):
        library.add_tag(v[name], tag).result(timeout=WAIT)
    assert ids_of(library.query(Query(tag="animals"))) == [v["story"], v["fox"]]
    assert ids_of(library.query(Query(tag="animals", favourites_only=True))) == [v["fox"]]
    library.remove_tag(v["story"], "animals").result(timeout=WAIT)
    library.remove_tag(v["story"], "never-had-it").result(timeout=WAIT)
    assert library.tags(v["story"]) == ["draft"]
    assert ids_of(library.query(Query(tag="animals"))) == [v["fox"]]


def test_trash_restore_and_purge(library: Library, varied: dict[str, int]):
    v = varied
    before = db.time.time()
    library.trash([v["fox"], v["poem"], 99_999]).result(timeout=WAIT)
    fox = library.get(v["fox"])
    assert fox is not None and fox.trashed_at is not None and fox.trashed_at >= before
    assert v["fox"] not in ids_of(library.list_items()) and len(library.list_items()) == 4
    assert ids_of(library.query(Query(trashed=True))) == [v["poem"], v["fox"]]
    assert ids_of(library.query(Query(trashed=True, kinds=("text",)))) == [v["poem"]]
    assert library.count(Query(search="fox")) == 2  # story and speech; the fox itself is in the trash
    assert library.count(Query(trashed=True, search="fox")) == 1

    first = fox.trashed_at
    library.trash([v["fox"]]).result(timeout=WAIT)  # again: keeps the time it went there
    assert getattr(library.get(v["fox"]), "trashed_at", None) == first

    library.restore([v["poem"]]).result(timeout=WAIT)
    poem = library.get(v["poem"])
    assert poem is not None and poem.trashed_at is None
    assert library.count() == 5

    assert library.purge([v["poem"]], trashed_only=True).result(timeout=WAIT) == []  # restored: it stays
    assert library.get(v["poem"]) is not None
    assert ids_of(library.purge([v["poem"], v["fox"]], trashed_only=True).result(timeout=WAIT)) == [v["fox"]]
    library.add_tag(v["castle"], "gone").result(timeout=WAIT)
    purged = library.purge([v["song"], v["castle"], 12345]).result(timeout=WAIT)  # in the trash or not
    assert sorted(i.id for i in purged) == sorted([v["song"], v["castle"]])
    assert {i.prompt for i in purged} == {"a lo-fi beat", "an ancient castle"}
    assert library.get(v["fox"]) is None and library.get(v["castle"]) is None and library.tags(v["castle"]) == []
    assert library.count(Query(search="misty")) == 0 and library.count(Query(trashed=True)) == 0


def test_facets_are_sorted_and_leave_the_trash_out(library: Library, varied: dict[str, int]):
    v = varied
    library.add_tag(v["fox"], "zebra").result(timeout=WAIT)
    library.add_tag(v["story"], "apple").result(timeout=WAIT)
    library.add(new_item(50, model=None)).result(timeout=WAIT)
    library.trash([v["song"], v["fox"]]).result(timeout=WAIT)
    assert library.facets() == {
        "kind": ["audio", "image", "text"],
        "generator_id": ["audio.speech", "demo.image", "image.diffusers", "text.transformers"],
        "model": ["gpt2", "mms", "qwen", "sd-1.5"],
        "tag": ["apple"],
    }


def test_search_matches_prompt_and_text_by_word_prefix(library: Library, varied: dict[str, int]):
    v = varied

    def search(text: str) -> list[int]:
        return ids_of(library.query(Query(search=text)))

    assert search("fox") == [v["speech"], v["story"], v["fox"]]  # newest first
    assert search("FOX dawn") == [v["fox"]]          # every word must match, any case
    assert search("dawn fox") == [v["fox"]]          # in any order
    assert search("lightho") == [v["story"]]         # the last word is a prefix: search as you type
    assert search("ligh keeper") == []               # earlier words are whole words
    assert search("lighthouse ") == [v["story"]]
    assert search("riviere") == [v["poem"]]          # accents do not matter
    assert search("café") == search("cafe") == [v["poem"]]
    assert search("") == search("   ") == ids_of(library.query())
    assert search("--- *** ") == ids_of(library.query())  # nothing to look for: everything
    assert search("lo-fi") == [v["song"]]
    assert search('"misty fox"') == [v["fox"]]
    assert search("fox AND castle") == []           # AND is only a word here (and castle has no fox)
    assert search("fox OR castle") == []


HOSTILE = [
    "", " ", '"', '""', '"""', "'", "''", "'; DROP TABLE items; --", "AND", "OR", "NOT", "fox AND", "AND fox",
    "NEAR(", "NEAR(fox castle", "NEAR(fox, 2)", "*", "fox*", "*fox", "-", "-fox", "fox -", "+", "^", "^fox",
    "prompt:", "prompt:fox", "text:fox", "{prompt text}: fox", "(", ")", "(fox", "fox)", "((()))", ":", "a:b:c",
    "\\", "\x00", "fox\x00castle", "\ud800", "🐈", "🐈 fox", "東京タワー", "ﷺ", "Ω≈ç√∫", "e\u0301", "\u200b",
    "%", "_", "%_%", "fox%", "?", "?1", ":name", "@p", "$x", "fox" * 500, "a " * 300, "NEAR", "near/3",
    "\t\n\r", '"fox', 'fox"', 'f"o"x', "AND OR NOT NEAR", "* * *", "rowid", "items_fts", "MATCH",
]


def test_search_accepts_hostile_text(library: Library, varied: dict[str, int]):
    for text in HOSTILE:
        found = library.query(Query(search=text))
        assert library.count(Query(search=text)) == len(found), text
        assert [i.created for i in found] == sorted((i.created for i in found), reverse=True), text
    assert ids_of(library.query(Query(search='"fox'))) == ids_of(library.query(Query(search="fox")))
    assert ids_of(library.query(Query(search="NEAR(fox"))) == []  # the words "near" and "fox": none has both


def test_search_never_raises_for_any_text(library: Library, varied: dict[str, int]):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    alphabet = st.sampled_from(list('"\'*-+^():{}[],.;%_\\ \t\nANDORNEAR fox ámé東🐈\x00') + ["AND", "NEAR(", "OR"])
    texts = st.one_of(st.text(), st.lists(alphabet, max_size=20).map("".join))

    @settings(derandomize=True, database=None, max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(texts)
    def check(text: str) -> None:
        found = library.query(Query(search=text), limit=10)
        assert len(found) <= library.count(Query(search=text))

    check()


def test_the_search_index_follows_updates_and_deletes(library: Library):
    item_id = library.add(new_item(1, prompt="a red balloon", text="floating away")).result(timeout=WAIT)
    assert library.count(Query(search="balloon")) == 1

    def rename(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE items SET prompt = 'a blue kite', text = 'tugging' WHERE id = ?", (item_id,))

    library._submit(rename).result(timeout=WAIT)
    assert library.count(Query(search="balloon")) == 0 and library.count(Query(search="floating")) == 0
    assert library.count(Query(search="kite")) == library.count(Query(search="tugg")) == 1
    library.set_favourite(item_id, True).result(timeout=WAIT)  # not a prompt/text change: index untouched
    library.delete(item_id).result(timeout=WAIT)
    assert library.count(Query(search="kite")) == 0
    library._submit(lambda conn: conn.execute(
        "INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")).result(timeout=WAIT)


def test_text_is_kept_and_read_back_as_a_preview(library: Library):
    long_text = "word " * 1000 + "needle"
    item_id = library.add(new_item(1, kind="text", text=long_text)).result(timeout=WAIT)
    item = library.get(item_id)
    assert item is not None and item.text == long_text[: db.TEXT_PREVIEW_CHARS]
    assert ids_of(library.query(Query(search="needle"))) == [item_id]  # the whole text is searchable
    plain = library.get(library.add(new_item(2)).result(timeout=WAIT))
    assert plain is not None and plain.text is None and not plain.favourite and plain.trashed_at is None


def test_add_many_is_one_transaction(library: Library):
    ids = library.add_many([new_item(n) for n in range(5)]).result(timeout=WAIT)
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert ids_of(library.list_items()) == ids[::-1]
    with pytest.raises(LibraryError):
        library.add_many([new_item(10), new_item(11, generator_id=None)]).result(timeout=WAIT)
    assert library.count() == 5  # the good one was rolled back with the bad one
    assert library.add_many([]).result(timeout=WAIT) == []


def test_a_row_with_corrupt_metadata_still_lists(library: Library):
    item_id = library.add(new_item(1)).result(timeout=WAIT)
    library._submit(lambda conn: conn.execute(
        "UPDATE items SET metadata = '{not json' WHERE id = ?", (item_id,))).result(timeout=WAIT)
    other = library.add(new_item(2)).result(timeout=WAIT)
    library._submit(lambda conn: conn.execute(
        "UPDATE items SET metadata = '[1, 2]' WHERE id = ?", (other,))).result(timeout=WAIT)
    items = library.query()
    assert ids_of(items) == [other, item_id]
    assert [i.metadata for i in items] == [{}, {}]
    assert items[1].prompt == "a cat número 1 🐈"
