"""Nothing on disk that the library never sees: a save killed at any point is tidied at the next start (temporary
files removed, outputs without a row indexed again and tagged "recovered", orphan sidecars removed), never while
another process is still saving; a failed save (a full disk) leaves no file and no row."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from disk import enospc, fill
from helpers import ROOT, run_cli

from desktop import paths
from desktop.api import EncodedOutput
from desktop.api.errors import DiskFullError
from desktop.api.files import is_temporary_name
from desktop.library import (
    RECOVERED_TAG,
    Gallery,
    Library,
    NewItem,
    OutputSaver,
    OutputStore,
    metadata_for,
    read_embedded_metadata,
    reconcile,
    reconciliation,
)
from desktop.library import db as library_db
from desktop.library.encoders import encode_wav

BIG = 30 * 1024 * 1024
PROMPT = "a lighthouse in a storm — 灯台"
PARAMS = {"prompt": PROMPT, "steps": 20, "cfg": 7.5}
WAIT_S = 120

# A process that saves one large output through the library's real save path (OutputSaver: store, then row, under
# the files lock), told where to stop: "write" stops inside the output's write (its temporary file whole, before
# the fsync and the rename), "index" between the file's rename and its row. There it prints "paused" and waits on
# stdin: the test kills it with SIGKILL, or closes stdin to let it finish ("saved <path>").
CHILD = r"""
import json, os, struct, sys, zlib
import numpy as np
from PIL import Image
from desktop.api import EncodedOutput
from desktop.library import Library, NewItem, OutputSaver, OutputStore
from desktop.library.encoders import encode_image, encode_wav

stage, kind, job_id, metadata = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
BIG = 30 * 1024 * 1024
if kind == "png":  # a real PNG: the metadata chunk first, then 30 MB in a private ancillary chunk readers skip
    small = encode_image(Image.new("RGB", (8, 8)), metadata)
    payload = bytes(BIG)
    chunk = struct.pack(">I", BIG) + b"prVt" + payload + struct.pack(">I", zlib.crc32(b"prVt" + payload))
    encoded = EncodedOutput(small[:-12] + chunk + small[-12:], ".png", embeds_metadata=True)
else:  # a WAV whose metadata goes in a sidecar (embeds_metadata=False), written before the file
    encoded = EncodedOutput(encode_wav(np.zeros(BIG // 2, dtype=np.int16), 44100), ".wav", embeds_metadata=False)


def pause():
    print("paused", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills this process)


if stage == "write":
    real_fsync = os.fsync

    def fsync(fd):
        if os.fstat(fd).st_size >= BIG:  # the output's temporary file, whole (a sidecar is small)
            pause()
        real_fsync(fd)

    os.fsync = fsync
else:
    real_add = Library.add

    def add(self, item):
        pause()
        return real_add(self, item)

    Library.add = add

library = Library()
item = NewItem(generator_id=metadata["generator"], kind=metadata["kind"], path="", metadata=metadata, job_id=job_id,
               prompt=metadata["prompt"], seed=metadata["seed"])
saved = OutputSaver(OutputStore(), library).save(encoded, metadata, item, generator_id=metadata["generator"],
                                                 job_id=job_id)
library.close()
print("saved", saved.path, flush=True)
"""


def metadata(job_id: str, kind: str) -> dict:
    return {"generator": f"demo.{kind}", "generator_version": "1.2.0", "kind": "image" if kind == "png" else "audio",
            "model": "demo", "params": PARAMS, "prompt": PROMPT, "seed": 1234, "job_id": job_id, "partial": False}


class PausedSave:
    """A child process paused in the middle of saving (see CHILD)."""

    def __init__(self, stage: str, kind: str, job_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, stage, kind, job_id, json.dumps(metadata(job_id, kind))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = self._line()
        assert line == "paused", f"the saving process did not pause: {line!r} {self._stderr()}"

    def _line(self) -> str:
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=WAIT_S):
                self.proc.kill()
                raise AssertionError(f"no word from the saving process in {WAIT_S} s")
        return self.proc.stdout.readline().strip()

    def _stderr(self) -> str:
        self.proc.kill()
        return self.proc.communicate(timeout=WAIT_S)[1]

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=WAIT_S) == -signal.SIGKILL
        self.proc.stdout.close()
        self.proc.stdin.close()
        self.proc.stderr.close()

    def finish(self) -> Path:
        """Let it go on; the path it saved."""
        self.proc.stdin.close()
        line = self._line()
        self.proc.wait(timeout=WAIT_S)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        assert self.proc.returncode == 0 and line.startswith("saved "), (line, err)
        return Path(line.removeprefix("saved "))


def kill_mid_save(stage: str, kind: str, job_id: str) -> None:
    PausedSave(stage, kind, job_id).kill()


def files_under(root: Path) -> dict[str, int]:
    """Every file under ``root`` (hidden ones included) with its size, by path relative to ``root``."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def outputs_root() -> Path:
    return paths.data_dir() / "outputs"


# -- kill -9 mid-save, then the next start ---------------------------------------------------------------------


def test_saves_killed_at_every_point_are_tidied_and_recovered_at_the_next_start():
    kill_mid_save("write", "png", "aaaa")   # a 30 MB temporary file
    kill_mid_save("write", "wav", "bbbb")   # a temporary file and a sidecar without its output
    kill_mid_save("index", "png", "cccc")   # an output without a row (metadata embedded in the PNG)
    kill_mid_save("index", "wav", "dddd")   # an output without a row (metadata in its sidecar)

    root = outputs_root()
    left = files_under(root)
    temporary = [name for name in left if is_temporary_name(Path(name).name)]
    assert len(temporary) == 2 and all(left[name] >= BIG for name in temporary)
    assert sum(left.values()) > 4 * BIG
    with Library() as library:
        assert library.count() == 0  # the library sees none of it

        report = reconcile(library, root)

        assert not report.busy and len(report.removed_temporary) == 2 and len(report.removed_sidecars) == 1
        assert report.freed_bytes > 2 * BIG and "recovered" in report.summary()
        left = files_under(root)
        assert not [name for name in left if is_temporary_name(Path(name).name)]
        assert sorted(Path(name).name.split("-")[1] for name in left) == ["cccc", "dddd", "dddd"]  # wav + sidecar
        assert sum(left.values()) < 2 * BIG + 100_000

        items = {item.job_id: item for item in library.list_items()}
        assert sorted(items) == ["cccc", "dddd"] and sorted(report.recovered) == sorted(i.id for i in items.values())
        for job_id, kind, generator in (("cccc", "image", "demo.png"), ("dddd", "audio", "demo.wav")):
            item = items[job_id]
            assert library.tags(item.id) == [RECOVERED_TAG]
            assert (item.kind, item.generator_id, item.generator_version) == (kind, generator, "1.2.0")
            assert (item.prompt, item.seed, item.model) == (PROMPT, 1234, "demo")
            assert item.metadata["params"] == PARAMS and item.path.is_file()
            assert abs(item.created - item.path.stat().st_mtime) < 1e-3
        assert library.query(library_db.Query(search="lighthouse")) != []  # searchable like any item

        again = reconcile(library, root)  # idempotent
        assert not again.changed and library.count() == 2 and files_under(root) == left


def test_the_cli_tidies_before_a_gallery_command_and_shows_the_recovered_flag():
    kill_mid_save("index", "png", "eeee")
    kill_mid_save("write", "png", "ffff")

    listed = run_cli("gallery", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Library tidied after an interrupted save" in listed.stderr and "demo.png" in listed.stdout
    assert not [name for name in files_under(outputs_root()) if is_temporary_name(Path(name).name)]
    with Library() as library:
        (item,) = library.list_items()
    shown = run_cli("gallery", "show", str(item.id))
    assert shown.returncode == 0, shown.stderr
    assert "recovered" in shown.stdout and "indexed again from its file" in shown.stdout
    assert '"steps": 20' in shown.stdout
    assert run_cli("gallery", "list").stderr == ""  # nothing more to tidy, nothing said


# -- another Studiolo saving at the same time ------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["write", "index"])
def test_a_save_under_way_in_another_process_is_never_taken_for_debris(stage: str):
    root = outputs_root()
    other = PausedSave(stage, "png", "live")  # alive, holding the files lock, its file half-done
    try:
        before = files_under(root)
        with Library() as library:
            report = reconcile(library, root, lock_timeout=0.2)
            assert report.busy and not report.changed
            assert files_under(root) == before and library.count() == 0
            saved = other.finish()
            report = reconcile(library, root)
            assert not report.busy and not report.changed
            (item,) = library.list_items()  # the other process's own row: not a second, recovered one
            assert item.path == saved and library.tags(item.id) == []
        assert list(files_under(root)) == [str(saved.relative_to(root))]
    finally:
        if other.proc.poll() is None:
            other.kill()


def test_a_delete_under_way_is_never_taken_for_an_output_without_a_row(tmp_path: Path, monkeypatch):
    library = Library(tmp_path / "library.db")
    store = OutputStore(tmp_path / "outputs")
    saved = OutputSaver(store, library).save(EncodedOutput(b"\x89PNG\r\n\x1a\n", ".png"), {}, NewItem("g", "image", ""),
                                             generator_id="g", job_id="j")
    rows_gone, go_on, outcome = threading.Event(), threading.Event(), {}
    real_purge = library.purge

    def slow_purge(*args, **kwargs):
        future = real_purge(*args, **kwargs)
        future.result()
        rows_gone.set()
        go_on.wait(WAIT_S)  # the row is gone, the file not yet: a reconciliation now must not index it again
        return future

    monkeypatch.setattr(library, "purge", slow_purge)
    deleting = threading.Thread(target=lambda: outcome.update(n=Gallery(library).delete_now([saved.item_id])))
    deleting.start()
    try:
        assert rows_gone.wait(WAIT_S)
        assert reconcile(library, store.root, lock_timeout=0.2).busy
    finally:
        go_on.set()
        deleting.join(WAIT_S)
    assert outcome == {"n": 1} and not saved.path.exists()
    assert not reconcile(library, store.root).changed and library.count() == 0
    library.close()


# -- cheap, and only what the store wrote ----------------------------------------------------------------------


def test_reconciling_a_tidy_library_reads_no_file_and_takes_no_lock(tmp_path: Path, monkeypatch):
    library = Library(tmp_path / "library.db")
    store = OutputStore(tmp_path / "outputs")
    saver = OutputSaver(store, library)
    for index in range(20):
        saver.save(EncodedOutput(b"text %d" % index, ".txt", embeds_metadata=False), {"n": index},
                   NewItem("g", "text", ""), generator_id="g", job_id="j", index=index)
    strangers = [store.root / "notes.txt", store.root / "2024-05-17" / "g" / "holiday.png",
                 store.root / "misc" / "g" / "120000-j-0.png"]  # not the store's names or folders
    for path in strangers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"mine")

    def forbidden(*_args, **_kwargs):
        raise AssertionError("reconciling a tidy library read a file or took the lock")

    monkeypatch.setattr(reconciliation, "metadata_for", forbidden)
    monkeypatch.setattr(reconciliation, "_read_text", forbidden)
    monkeypatch.setattr(Library, "files_lock", forbidden)
    report = reconcile(library, store.root)
    assert not report.changed and not report.busy
    assert all(path.read_bytes() == b"mine" for path in strangers) and library.count() == 20
    library.close()


def test_an_output_whose_metadata_cannot_be_read_is_indexed_with_what_is_known(tmp_path: Path):
    library = Library(tmp_path / "library.db")
    folder = tmp_path / "outputs" / "2024-05-17" / "image.sd"
    folder.mkdir(parents=True)
    broken = folder / "130405-abc123-0.png"
    broken.write_bytes(b"not a png at all")
    os.utime(broken, (1_700_000_000, 1_700_000_000))
    text = folder / "130406-def456-1-2.txt"
    text.write_text("a poem about the sea", encoding="utf-8")

    report = reconcile(library, tmp_path / "outputs")

    assert len(report.recovered) == 2
    items = {item.path.name: item for item in library.list_items()}
    image = items[broken.name]
    assert (image.kind, image.generator_id, image.job_id, image.created) == ("image", "image.sd", "abc123",
                                                                                1_700_000_000)
    assert image.metadata == {} and image.prompt is None and library.tags(image.id) == [RECOVERED_TAG]
    poem = items[text.name]
    assert (poem.kind, poem.job_id, poem.text) == ("text", "def456", "a poem about the sea")
    assert library.query(library_db.Query(search="poem"))[0].id == poem.id
    library.close()


def test_embedded_metadata_is_read_from_the_audio_generators_wav_and_flac(tmp_path: Path):
    from desktop.api import AudioOutput
    from plugins.audio.metadata import encode_flac
    from plugins.audio.metadata import encode_wav as encode_tagged_wav

    meta = {"generator": "audio.music", "prompt": PROMPT, "params": {"prompt": PROMPT, "duration": 2.0}, "seed": 7}
    clip = AudioOutput(samples=np.zeros(800, dtype=np.float32), sample_rate=8000)
    for name, encoded in (("a.wav", encode_tagged_wav(clip, meta)), ("a.flac", encode_flac(clip, meta))):
        path = tmp_path / name
        path.write_bytes(encoded.data)
        assert read_embedded_metadata(path) == meta
        assert metadata_for(path) == meta
    plain = tmp_path / "plain.wav"
    plain.write_bytes(encode_wav(np.zeros(10), 8000))
    for path in (plain, tmp_path / "missing.flac"):
        assert read_embedded_metadata(path) is None


# -- a failed save leaves nothing ------------------------------------------------------------------------------


def test_a_full_output_disk_fails_clearly_and_leaves_no_file_and_no_row(tmp_path: Path, small_disk):
    disk = small_disk(1024)
    library = Library(tmp_path / "library.db")
    store = OutputStore(disk / "outputs")
    png = EncodedOutput(b"\x89PNG\r\n\x1a\n" + bytes(BIG), ".png")
    with pytest.raises(DiskFullError) as info:
        OutputSaver(store, library).save(png, {}, NewItem("g", "image", ""), generator_id="g", job_id="j")
    message = info.value.message
    folder = next((disk / "outputs").iterdir()) / "g"
    assert str(folder) in message and "needs 30.0 MB" in message and "free" in message
    assert files_under(disk) == {} and library.count() == 0
    library.close()


@pytest.mark.parametrize("embeds", [True, False], ids=["embedded", "sidecar"])
def test_a_library_on_a_full_disk_keeps_no_output_of_the_failed_save(small_disk, embeds: bool):
    """The output (and its sidecar) fit exactly; its row does not: the save fails and the output is removed."""
    disk = small_disk(2048)
    library = Library(disk / "library.db")
    store = OutputStore(disk / "outputs")
    size = 400 * 1024
    fill(disk, leave_bytes=size + (0 if embeds else 4096))  # a sidecar takes one 4 KiB page
    with pytest.raises(DiskFullError) as info:
        OutputSaver(store, library).save(EncodedOutput(bytes(size), ".png", embeds), {"a": 1},
                                         NewItem("g", "image", ""), generator_id="g", job_id="j")
    assert f"update the library in {disk}" in info.value.message  # the file was written; its row failed
    assert [p for p in (disk / "outputs").rglob("*") if p.is_file()] == []
    (disk / ".filler").unlink()
    assert library.count() == 0 and not reconcile(library, store.root).changed
    library.close()


def test_a_job_that_fails_on_its_second_output_leaves_neither(tmp_path: Path, monkeypatch):
    library = Library(tmp_path / "library.db")
    store = OutputStore(tmp_path / "outputs")
    real_insert, calls = library_db._insert, []

    def insert(conn, item):
        calls.append(item.path)
        if len(calls) == 2:
            enospc()
        return real_insert(conn, item)

    monkeypatch.setattr(library_db, "_insert", insert)
    saver = OutputSaver(store, library)
    with pytest.raises(DiskFullError), saver:
        for index in range(2):
            saver.save(EncodedOutput(b"words", ".txt", False), {}, NewItem("g", "text", ""), generator_id="g",
                       job_id="j", index=index)
    assert len(calls) == 2 and files_under(store.root) == {} and library.count() == 0
    library.close()


PAIR = """
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param


@dataclass(frozen=True)
class PairParams:
    prompt: str = param("", prompt=True)


class Pair(Generator):
    id = "test.pair"
    name = "Pair"
    kind = "text"
    Params = PairParams

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return [TextOutput(text="first " + params.prompt), TextOutput(text="second " + params.prompt)]


@hookimpl
def register_generators(register):
    register(Pair())
"""


def test_a_job_whose_second_output_cannot_be_indexed_fails_and_leaves_nothing(studiolo_site, qtbot, monkeypatch):
    """The worker's save: the first output (file and row) is removed too; the job fails naming the full disk."""
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.engine.jobs import JobState
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    studiolo_site.install("studiolo-test-pair", modules={"studiolo_test_pair": PAIR},
                          entry_points={"pair": "studiolo_test_pair"}, requires=["studiolo>=0.2,<0.3"])
    real_insert, calls = library_db._insert, []

    def insert(conn, item):
        calls.append(item.path)
        if len(calls) == 2:
            enospc()  # the library's disk is full
        return real_insert(conn, item)

    monkeypatch.setattr(library_db, "_insert", insert)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache())
    try:
        with qtbot.waitSignal(engine.job_failed, timeout=WAIT_S * 1000) as failed:
            job = engine.submit("test.pair", {"prompt": "sea"})
        assert "Not enough disk space to update the library" in failed.args[1] and job.state is JobState.FAILED
        assert len(calls) == 2 and job.saved == [] and job.item_ids == [] and len(job.outputs) == 2
        assert engine.library.count() == 0 and files_under(outputs_root()) == {}
    finally:
        assert engine.shutdown(timeout=30)


# -- the window tidies at start, off the GUI thread -------------------------------------------------------------


def test_the_window_reconciles_the_library_at_start_off_the_gui_thread(qtbot, monkeypatch):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.main_window import MainWindow

    kill_mid_save("index", "png", "gggg")
    kill_mid_save("write", "png", "hhhh")
    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    calls = []
    real = reconciliation.reconcile

    def spy(*args, **kwargs):
        report = real(*args, **kwargs)
        calls.append((threading.current_thread(), report))
        return report

    monkeypatch.setattr(reconciliation, "reconcile", spy)
    plugins = PluginManager().load()
    engine = Engine(plugins, cache=ModelCache())
    window = MainWindow(plugins, engine)  # the tidying's result comes back through the event loop: not yet
    reports, messages = [], []
    window.library_reconciled.connect(reports.append)
    window.statusBar().messageChanged.connect(messages.append)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: bool(reports), timeout=WAIT_S * 1000)
        ((thread, report),) = calls
        assert thread is not threading.main_thread() and reports == [report]
        assert len(report.recovered) == 1 and len(report.removed_temporary) == 1
        assert any("interrupted save" in message for message in messages)
        (item,) = engine.library.list_items()
        assert item.job_id == "gggg" and engine.library.tags(item.id) == [RECOVERED_TAG]
    finally:
        window.close()
