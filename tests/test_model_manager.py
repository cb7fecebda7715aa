"""The model manager's data: the usage record (desktop.models.usage), the per-generator inventory
(desktop.models.inventory) with real downloads from the local fake hub (tests/hub_server.py), and `models list`."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer

from desktop.api import Generator, JobCancelled, RecommendedModel, StudioloError
from desktop.api.errors import DownloadError
from desktop.cli import models_cmd
from desktop.models import hub, inventory, store, usage
from desktop.models.demo import ensure_demo_model
from desktop.models.download_child import CHUNK_SIZE
from desktop.models.resolver import imported_models_dir
from desktop.models.store import import_model, list_installed, remove_model

WAIT = 30.0
REPO = "acme/tiny-voice"
OTHER = "acme/other-voice"
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB, LFS
CONFIG = b'{"model_type": "vits"}'


class Voice(Generator):
    """Just enough of a generator for the inventory: an id, a demo model and a recommended hub model."""

    id = "test.voice"
    name = "Test voice"
    kind = "audio"
    recommended_models = (RecommendedModel(REPO, "Tiny voice", "Reads test sentences.", size_bytes=1_000_000,
                                           size_checked="2026-01", license="MIT"),)

    def build_demo_model(self, dest: Path) -> None:
        (dest / "config.json").write_text('{"demo": true}')


class Other(Generator):
    id = "test.other"
    name = "Other"
    kind = "text"


def add_voice(server: HubServer, repo_id: str = REPO) -> Any:
    return server.add_repo(repo_id, {"config.json": CONFIG, "model.safetensors": WEIGHTS}, lfs=("model.safetensors",))


def a_folder_model(tmp_path: Path, name: str = "my-voice") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "corpus.txt").write_text("hello there " * 50)
    return folder


# -- usage ----------------------------------------------------------------------------------------------------

def test_usage_round_trip() -> None:
    assert usage.last_used("acme/x") is None and usage.refs_for("test.voice") == []
    usage.record_use("test.voice", "facebook/mms-tts-eng@abc123", clock=lambda: 100.0)
    usage.record_use("test.voice", "acme/x", clock=lambda: 300.0)
    usage.record_use("text.markov", "demo", clock=lambda: 50.0)
    usage.record_use("text.markov", str(imported_models_dir() / "poems"), clock=lambda: 60.0)
    usage.tag("test.voice", "my-voice")
    usage.record_use("text.markov", "acme/x", clock=lambda: 200.0)

    assert usage.last_used("facebook/mms-tts-eng") == 100.0  # any revision counts
    assert usage.last_used("acme/x") == 300.0 and usage.last_used("demo:text.markov") == 50.0
    assert usage.last_used("poems") == 60.0  # a path into the imported folder is the imported model's name
    assert usage.last_used("my-voice") is None  # imported for it, not used yet
    assert usage.refs_for("test.voice") == ["acme/x", "facebook/mms-tts-eng@abc123", "my-voice"]
    assert usage.refs_for("text.markov") == ["acme/x", "poems", "demo:text.markov"]
    assert usage.generators_of("acme/x") == ["test.voice", "text.markov"]
    saved = json.loads(usage.usage_file().read_text())
    assert saved["version"] == 1 and saved["generators"]["test.voice"]["my-voice"] is None

    usage.tag("test.voice", "acme/x")  # tagging never erases a use
    assert usage.last_used("acme/x") == 300.0
    usage.forget("facebook/mms-tts-eng")
    assert usage.refs_for("test.voice") == ["acme/x", "my-voice"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"generators": {"g": {"r": "yesterday", "s": 5}}}',
                                     b"\xff\xfe"])
def test_a_corrupt_usage_file_is_tolerated_and_replaced(content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = usage.usage_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert usage.last_used("r") is None and usage.refs_for("x") == []
    usage.record_use("test.voice", "acme/x", clock=lambda: 7.0)
    assert usage.last_used("acme/x") == 7.0
    assert json.loads(path.read_text())["generators"]["test.voice"] == {"acme/x": 7.0}


def test_an_unwritable_usage_file_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    usage.usage_file().mkdir(parents=True)  # a folder where the file should be: unreadable and unwritable
    with caplog.at_level(logging.WARNING, logger="desktop.models.usage"):
        usage.record_use("test.voice", "acme/x")
        usage.tag("test.voice", "my-voice")
    assert usage.last_used("acme/x") is None
    assert any("could not save" in r.getMessage() for r in caplog.records)


def test_recording_from_many_threads_loses_nothing() -> None:
    def record(worker: int) -> None:
        for i in range(8):
            usage.record_use(f"gen.{worker}", f"acme/model-{i}", clock=lambda i=i: float(worker * 100 + i))

    threads = [threading.Thread(target=record, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    for worker in range(4):
        assert set(usage.refs_for(f"gen.{worker}")) == {f"acme/model-{i}" for i in range(8)}
    assert usage.last_used("acme/model-7") == 307.0


# -- inventory ------------------------------------------------------------------------------------------------

def test_note_use_writes_at_most_once_a_minute_per_model() -> None:
    now, wall = [100.0], [1_000.0]
    note = lambda ref: usage.note_use("text.markov", ref, monotonic=lambda: now[0], clock=lambda: wall[0])  # noqa: E731
    note("demo")
    assert usage.last_used("demo:text.markov") == 1_000.0
    now[0], wall[0] = 130.0, 1_030.0
    note("demo")  # within the minute: not written again
    note("org/other")  # another model: written
    assert usage.last_used("demo:text.markov") == 1_000.0
    assert usage.last_used("org/other") == 1_030.0
    now[0], wall[0] = 161.0, 1_061.0
    note("demo")
    assert usage.last_used("demo:text.markov") == 1_061.0


@pytest.fixture
def markov_engine(studiolo_site, qtbot):
    from helpers import install_markov

    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    install_markov(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def test_the_engine_records_which_model_a_job_used(markov_engine, qtbot) -> None:
    with qtbot.waitSignal(markov_engine.job_finished, timeout=60_000):
        markov_engine.submit("text.markov", {"words": 3}, model="demo")
    assert usage.refs_for("text.markov") == ["demo:text.markov"]
    assert usage.last_used("demo:text.markov") is not None


def test_the_demo_model_is_listed_once_built() -> None:
    voice = Voice()
    assert inventory.models_for(voice).installed == []
    path = ensure_demo_model(voice)
    (demo,) = inventory.models_for(voice).installed
    assert demo.ref == "demo:test.voice" and demo.use_ref == "demo" and demo.source == "demo"
    assert demo.path == path and demo.size_bytes == len('{"demo": true}')
    assert inventory.models_for(Other()).installed == []  # another generator's demo is not its model


def test_an_imported_folder_is_listed_for_its_generator(tmp_path: Path) -> None:
    voice, other = Voice(), Other()
    model = import_model(a_folder_model(tmp_path), generator_id=voice.id)
    assert model.ref == "my-voice" and model.used_by == ("test.voice",)
    (listed,) = inventory.models_for(voice).installed
    assert (listed.ref, listed.source, listed.last_used) == ("my-voice", "imported", None)
    assert listed.size_bytes == len("hello there " * 50) and listed.path == imported_models_dir() / "my-voice"
    assert inventory.models_for(other).installed == []

    usage.record_use(other.id, "my-voice", clock=lambda: 1234.0)  # used by another generator: listed there too
    (used,) = inventory.models_for(other).installed
    assert used.ref == "my-voice" and used.last_used == 1234.0
    assert remove_model("my-voice") == listed.size_bytes
    assert inventory.models_for(voice).installed == [] and usage.refs_for(voice.id) == []


def test_a_downloaded_hub_model_is_installed_and_sized_from_the_hub(hub_server: HubServer) -> None:
    voice = Voice()
    add_voice(hub_server)
    add_voice(hub_server, OTHER)
    (before,) = inventory.models_for(voice).recommended
    assert before.state == inventory.ABSENT and before.size_bytes == 1_000_000 and before.size_checked == "2026-01"
    assert before.license == "MIT" and before.description == "Reads test sentences."

    hub.download(REPO, cancel=threading.Event())
    hub.download(OTHER, cancel=threading.Event())  # in the cache, but neither recommended nor used: not listed
    found = inventory.models_for(voice)
    (model,) = found.installed
    assert (model.ref, model.source) == (REPO, "hub")
    assert len(CONFIG) + len(WEIGHTS) <= model.size_bytes < len(CONFIG) + len(WEIGHTS) + 10_000
    (after,) = found.recommended
    assert after.installed and after.size_bytes == len(CONFIG) + len(WEIGHTS) and after.size_checked is None

    usage.record_use(voice.id, OTHER, clock=lambda: 99.0)
    refs = {m.ref: m for m in inventory.models_for(voice).installed}
    assert set(refs) == {REPO, OTHER} and refs[OTHER].last_used == 99.0 and refs[REPO].last_used is None
    assert inventory.total_disk_bytes() == sum(m.size_bytes for m in refs.values())
    assert inventory.installed_refs(voice) == [("Demo model (tiny, offline)", "demo"), (f"Tiny voice ({REPO})", REPO),
                                               (OTHER, OTHER)]


def test_a_cancelled_download_is_partial_never_installed(hub_server: HubServer) -> None:
    voice = Voice()
    add_voice(hub_server)
    pause = hub_server.pause(REPO, "model.safetensors", after=700_000)
    cancel = threading.Event()

    def progress(done: int, total: int | None, _message: str) -> None:
        if done >= len(CONFIG) + CHUNK_SIZE and done < (total or 0):
            cancel.set()  # mid-file: the server holds the rest until the test releases it

    with pytest.raises(JobCancelled):
        hub.download(REPO, cancel=cancel, on_progress=progress)
    pause.release.set()
    found = inventory.models_for(voice)
    assert found.installed == [] and inventory.installed_refs(voice) == [("Demo model (tiny, offline)", "demo")]
    (status,) = found.recommended
    assert status.state == inventory.PARTIAL and not status.installed
    assert CHUNK_SIZE <= status.bytes_on_disk < len(CONFIG) + len(WEIGHTS)
    assert status.size_bytes == len(CONFIG) + len(WEIGHTS)  # the hub's listing came with the cancelled download
    assert inventory.total_disk_bytes() >= status.bytes_on_disk

    hub.download(REPO, cancel=threading.Event())  # resumes
    assert [m.ref for m in inventory.models_for(voice).installed] == [REPO]


def test_a_failed_download_is_never_installed(hub_server: HubServer) -> None:
    voice = Voice()
    add_voice(hub_server)
    hub_server.break_after(REPO, "model.safetensors", after=300_000, then_status=500)
    with pytest.raises(DownloadError):
        hub.download(REPO, cancel=threading.Event())
    found = inventory.models_for(voice)
    assert found.installed == [] and found.recommended[0].state == inventory.PARTIAL


def test_an_import_never_replaces_one_under_the_same_name(tmp_path: Path, monkeypatch) -> None:
    first, second = tmp_path / "a" / "voice.safetensors", tmp_path / "b" / "voice.safetensors"
    for path, content in ((first, b"first"), (second, b"second")):
        path.parent.mkdir()
        path.write_bytes(content)
    monkeypatch.setattr(store, "check_model_files", lambda path, **kwargs: None)  # not real weights
    copying, release = threading.Event(), threading.Event()
    copy = store.shutil.copy2

    def slow_copy(source: Any, dest: Any, *args: Any, **kwargs: Any) -> Any:  # holds the first import mid-copy
        if Path(source) == first:
            copying.set()
            assert release.wait(WAIT)
        return copy(source, dest, *args, **kwargs)

    monkeypatch.setattr(store.shutil, "copy2", slow_copy)
    errors: list[BaseException] = []

    def import_first() -> None:
        try:
            import_model(first)
        except BaseException as exc:  # checked below
            errors.append(exc)

    thread = threading.Thread(target=import_first)
    thread.start()
    assert copying.wait(WAIT)
    with pytest.raises(StudioloError, match="being imported"):
        import_model(second)
    release.set()
    thread.join(WAIT)
    assert errors == [] and (imported_models_dir() / "voice.safetensors").read_bytes() == b"first"
    with pytest.raises(StudioloError, match="already imported"):
        import_model(second)
    assert (imported_models_dir() / "voice.safetensors").read_bytes() == b"first"


def test_a_model_that_cannot_be_deleted_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    import_model(a_folder_model(tmp_path))

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(store.shutil, "rmtree", refuse)
    with pytest.raises(StudioloError) as raised:
        remove_model("my-voice")
    assert "Could not delete the model my-voice" in raised.value.message and raised.value.hint
    assert (imported_models_dir() / "my-voice").is_dir()


def test_label_for_a_loaded_models_path() -> None:
    voice = Voice()
    assert inventory.label_for_path(ensure_demo_model(voice)) == "demo"
    assert inventory.label_for_path(imported_models_dir() / "poems") == "poems"
    snapshot = hub.hub_cache_dir() / "models--acme--tiny-voice" / "snapshots" / ("0" * 40)
    assert inventory.label_for_path(snapshot) == "acme/tiny-voice"
    assert inventory.label_for_path("/somewhere/else") == "/somewhere/else"
    assert inventory.label_for_path("") == "(no model)"


# -- the command line -----------------------------------------------------------------------------------------

def test_models_list_shows_generator_and_last_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_demo_model(Voice())
    import_model(a_folder_model(tmp_path), generator_id="test.voice")
    usage.record_use("test.voice", "my-voice", clock=lambda: 0.0 + 86_400 * 400)
    assert models_cmd.list_models(argparse.Namespace(json=False)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["REF", "SOURCE", "SIZE", "GENERATOR", "LAST", "USED", "PATH"]
    demo = next(line for line in lines if line.startswith("demo:test.voice"))
    mine = next(line for line in lines if line.startswith("my-voice"))
    assert "test.voice" in demo.split()[3:] and "never" in demo
    assert mine.split()[4] == "test.voice" and "1971-02-" in mine
    listing = {m.ref: m for m in list_installed()}
    assert listing["my-voice"].used_by == ("test.voice",) and listing["my-voice"].generator_id == "test.voice"
