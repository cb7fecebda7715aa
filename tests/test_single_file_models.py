"""Single-file models (API 0.2.1, issue 17): a hub reference to one file of a repo (``org/name/file.gguf``), a
generator whose models are single files (``model_file_patterns``) and the facts it gives about them
(``describe_model``) — resolved, downloaded (only that file), listed, described, imported and removed, from the
local fake hub (tests/hub_server.py). No sleeps: waits end on events, signals or a table's contents."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import run_cli
from hub_server import HubServer
from PySide6.QtCore import Qt

from desktop.api import Generator, ModelFormatError, ModelNotFoundError, ModelSource, param
from desktop.api.errors import DownloadError, JobCancelled
from desktop.models import hub, inventory
from desktop.models.download_child import CHUNK_SIZE
from desktop.models.resolver import ModelRef, ModelResolver, imported_models_dir, parse_ref
from desktop.models.store import import_model, remove_model

WAIT = 30.0
REPO = "acme/tiny-gguf"
Q4 = b"FAKE qwen2 Q4_K_M 32768 " + bytes(range(256)) * 2048  # ~512 kB, LFS
Q8 = b"FAKE qwen2 Q8_0 32768 " + bytes(range(256)) * 1024
F16 = b"FAKE qwen2 F16 512 " + bytes(range(256)) * 512
FILES = {"README.md": b"# tiny", "config.json": b"{}", "tiny-Q4_K_M.gguf": Q4, "tiny-Q8_0.gguf": Q8,
         "fp16/tiny-F16.gguf": F16}
LFS = ("tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf", "fp16/tiny-F16.gguf")

# A generator whose models are single *.gguf files; it describes a "model" from its first line.
ONE_FILE = '''
from dataclasses import dataclass
from pathlib import Path
from desktop.api import Generator, RecommendedModel, TextOutput, hookimpl, param


@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)


class OneFile(Generator):
    id = "test.onefile"
    name = "One file"
    kind = "text"
    Params = Params
    default_model = "acme/tiny-gguf/tiny-Q8_0.gguf"
    recommended_models = (
        RecommendedModel("acme/tiny-gguf", "Tiny GGUF", "All its quantisations."),
        RecommendedModel("acme/tiny-gguf/tiny-Q8_0.gguf", "Tiny Q8", "One quantisation."),
    )
    model_file_patterns = ("*.gguf",)

    def describe_model(self, path):
        words = Path(path).read_bytes()[:64].split()
        if words[:1] != [b"FAKE"]:
            raise ValueError("not a fake model")  # the host must survive this
        arch, quant, context = (w.decode() for w in words[1:4])
        return {"architecture": arch, "quantisation": quant, "context": f"{context} tokens"}

    def load(self, model_path, device, options):
        return Path(model_path).read_bytes()[:24].decode()

    def generate(self, handle, params, ctx):
        return [TextOutput(text=handle)]


@hookimpl
def register_generators(register):
    register(OneFile())
'''


def install_one_file(site) -> None:
    site.install("studiolo-test-onefile", modules={"studiolo_test_onefile": ONE_FILE},
                 entry_points={"onefile": "studiolo_test_onefile"}, requires=["studiolo>=0.2,<0.3"])


@dataclass(frozen=True)
class NoParams:
    text: str = param("hi", prompt=True)


class GGUFish(Generator):
    """The resolver's view of a single-file generator (nothing is loaded)."""

    id, name, kind, Params = "test.ggufish", "GGUFish", "text", NoParams
    model_file_patterns = ("*.gguf",)


class WholeRepos(Generator):
    """A generator whose models are whole repos (as before API 0.2.1)."""

    id, name, kind, Params = "test.whole", "Whole", "text", NoParams


@pytest.fixture
def gguf_repo(hub_server: HubServer) -> HubServer:
    hub_server.add_repo(REPO, FILES, lfs=LFS)
    return hub_server


def fetched(server: HubServer) -> list[str]:
    """The files the hub sent (GET of /resolve/), by path in the repo."""
    return [r.path.split("/resolve/", 1)[1].split("/", 1)[1] for r in server.gets()]


def blobs(repo_id: str = REPO) -> Path:
    return hub.hub_cache_dir() / ("models--" + repo_id.replace("/", "--")) / "blobs"


# -- references ---------------------------------------------------------------------------------------------

def test_a_reference_may_name_one_file_of_a_hub_repo(tmp_path, monkeypatch):
    assert parse_ref("acme/tiny-gguf/tiny-Q4_K_M.gguf") == ModelRef(ModelSource.HUB, REPO, None, "tiny-Q4_K_M.gguf")
    assert parse_ref("acme/tiny-gguf/fp16/tiny-F16.gguf@v2") == ModelRef(ModelSource.HUB, REPO, "v2",
                                                                          "fp16/tiny-F16.gguf")
    assert parse_ref("acme/tiny-gguf/model.ckpt").filename == "model.ckpt"  # pickle rules apply when resolved
    assert parse_ref("acme/tiny-gguf@refs/pr/1") == ModelRef(ModelSource.HUB, REPO, "refs/pr/1")  # a repo, as before
    assert parse_ref("acme/tiny-gguf") == ModelRef(ModelSource.HUB, REPO)
    with pytest.raises(ModelNotFoundError):
        parse_ref("acme/tiny-gguf/../../etc/passwd")
    local = tmp_path / "acme" / "tiny-gguf" / "tiny-Q4_K_M.gguf"  # the same text, as a path that exists here
    local.parent.mkdir(parents=True)
    local.write_bytes(Q4)
    monkeypatch.chdir(tmp_path)
    assert parse_ref("acme/tiny-gguf/tiny-Q4_K_M.gguf") == ModelRef(ModelSource.FILE, str(local))


# -- resolving and downloading one file ---------------------------------------------------------------------

def test_resolving_a_file_downloads_only_that_file_and_gives_its_path(gguf_repo):
    progress: list[tuple[int, int | None]] = []
    path = ModelResolver().resolve(GGUFish(), "acme/tiny-gguf/tiny-Q4_K_M.gguf",
                                   on_progress=lambda done, total, _m: progress.append((done, total)))
    assert path.name == "tiny-Q4_K_M.gguf" and path.is_file() and path.read_bytes() == Q4
    assert fetched(gguf_repo) == ["tiny-Q4_K_M.gguf"]
    assert [p.name for p in blobs().iterdir()] == [gguf_repo.repos[REPO].etag("tiny-Q4_K_M.gguf")]
    assert progress[-1] == (len(Q4), len(Q4))  # the total is that file's size, not the repo's
    assert hub.cached_snapshot(REPO) is None  # the repo is not complete, and not taken for complete
    requests = len(gguf_repo.requests)
    assert ModelResolver().resolve(GGUFish(), "acme/tiny-gguf/tiny-Q4_K_M.gguf") == path  # from the cache
    assert len(gguf_repo.requests) == requests

    nested = ModelResolver().resolve(GGUFish(), "acme/tiny-gguf/fp16/tiny-F16.gguf")  # a file in a folder
    assert nested.read_bytes() == F16 and fetched(gguf_repo) == ["tiny-Q4_K_M.gguf", "fp16/tiny-F16.gguf"]
    assert ModelResolver().resolve(GGUFish(), "acme/tiny-gguf/tiny-Q4_K_M.gguf") == path  # still there


def test_a_file_that_is_not_in_the_repo_names_the_repo_and_lists_its_model_files(hub_server):
    many = {f"big-{i:02d}.gguf": b"x" for i in range(12)} | {"README.md": b"#", "notes.txt": b"n"}
    hub_server.add_repo("acme/many", many)
    with pytest.raises(ModelNotFoundError) as info:
        ModelResolver().resolve(GGUFish(), "acme/many/big-99.gguf")
    error = info.value
    assert "acme/many" in error.message and "'big-99.gguf'" in error.message
    assert "big-00.gguf" in error.hint and "big-09.gguf" in error.hint and "(and 2 more)" in error.hint
    assert "big-10.gguf" not in error.hint and "README.md" not in error.hint and "notes.txt" not in error.hint
    assert fetched(hub_server) == []
    with pytest.raises(ModelNotFoundError, match="takes \\*.gguf files"):  # not a model file of this generator
        ModelResolver().resolve(GGUFish(), "acme/many/notes.txt")


def test_a_whole_repo_gives_a_single_file_generator_its_one_file_or_the_list_to_choose_from(gguf_repo):
    gguf_repo.add_repo("acme/one", {"README.md": b"#", "only-Q4_0.gguf": b"FAKE llama Q4_0 2048"})
    path = ModelResolver().resolve(GGUFish(), "acme/one")
    assert path.name == "only-Q4_0.gguf" and fetched(gguf_repo) == ["only-Q4_0.gguf"]
    with pytest.raises(ModelNotFoundError) as info:
        ModelResolver().resolve(GGUFish(), REPO)
    assert "holds 3 *.gguf files" in info.value.message
    assert "tiny-Q4_K_M.gguf" in info.value.hint and f"{REPO}/FILE" in info.value.hint
    assert fetched(gguf_repo) == ["only-Q4_0.gguf"]  # nothing of the repo with several was downloaded


def test_a_pickle_file_is_refused_before_anything_is_downloaded(hub_server):
    hub_server.add_repo("acme/old", {"model.ckpt": b"\x80\x04K\x01.", "config.json": b"{}"})
    with pytest.raises(ModelFormatError, match="model.ckpt is a pickle-format weights file"):
        ModelResolver().resolve(WholeRepos(), "acme/old/model.ckpt")
    assert fetched(hub_server) == []
    path = ModelResolver().resolve(WholeRepos(), "acme/old/model.ckpt", allow_pickle=True)
    assert path.read_bytes() == b"\x80\x04K\x01." and fetched(hub_server) == ["model.ckpt"]


def test_cancelling_a_file_download_keeps_what_arrived_and_the_next_one_resumes(gguf_repo):
    repo = gguf_repo.repos[REPO]
    pause = gguf_repo.pause(REPO, "tiny-Q4_K_M.gguf", after=300_000)
    cancel, seen = threading.Event(), threading.Event()
    box: dict = {}

    def progress(done: int, total: int | None, _message: str) -> None:
        if total == len(Q4) and done >= CHUNK_SIZE:
            seen.set()

    def run() -> None:
        try:
            hub.download_file(REPO, "tiny-Q4_K_M.gguf", cancel=cancel, on_progress=progress)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert pause.reached.wait(WAIT) and seen.wait(WAIT)
    cancel.set()
    thread.join(WAIT)
    pause.release.set()
    assert isinstance(box.get("error"), JobCancelled), box
    partial = blobs() / (repo.etag("tiny-Q4_K_M.gguf") + ".incomplete")
    size = partial.stat().st_size
    assert 0 < size < len(Q4) and hub.cached_file(REPO, "tiny-Q4_K_M.gguf") is None

    path = hub.download_file(REPO, "tiny-Q4_K_M.gguf", cancel=threading.Event())
    assert path.read_bytes() == Q4 and not partial.exists()
    assert gguf_repo.gets("tiny-Q4_K_M.gguf")[-1].headers.get("Range") == f"bytes={size}-"
    assert set(fetched(gguf_repo)) == {"tiny-Q4_K_M.gguf"}


def test_offline_a_downloaded_file_is_used_and_a_missing_one_says_how_to_get_it(gguf_repo, monkeypatch):
    path = hub.download_file(REPO, "tiny-Q8_0.gguf", cancel=threading.Event())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests = len(gguf_repo.requests)
    assert ModelResolver().resolve(GGUFish(), "acme/tiny-gguf/tiny-Q8_0.gguf") == path
    assert ModelResolver().resolve(GGUFish(), REPO) == path  # the repo's one downloaded file
    with pytest.raises(DownloadError) as info:
        ModelResolver().resolve(GGUFish(), "acme/tiny-gguf/tiny-Q4_K_M.gguf")
    assert "studiolo models pull acme/tiny-gguf/tiny-Q4_K_M.gguf" in info.value.hint
    assert len(gguf_repo.requests) == requests


def test_the_welcome_pages_download_of_a_recommended_file_fetches_only_that_file(gguf_repo):
    from desktop.api import RecommendedModel
    from desktop.models.first_run import download_models

    failures = download_models([RecommendedModel(f"{REPO}/tiny-Q8_0.gguf", "Tiny Q8")], lambda *_: None,
                               threading.Event())
    assert failures == [] and fetched(gguf_repo) == ["tiny-Q8_0.gguf"]
    assert hub.cached_file(REPO, "tiny-Q8_0.gguf").read_bytes() == Q8


# -- listing a repo's files ------------------------------------------------------------------------------------

def test_list_repo_files_gives_every_file_with_its_size(gguf_repo):
    listing = hub.list_repo_files(REPO)
    assert [(f.path, f.size_bytes) for f in listing] == sorted((p, len(d)) for p, d in FILES.items())
    assert fetched(gguf_repo) == []  # listing downloads nothing


@pytest.mark.parametrize(("status", "code", "error", "words"), [
    (None, None, ModelNotFoundError, "no model named acme/absent"),
    (403, "GatedRepo", DownloadError, "gated or private"),
])
def test_list_repo_files_explains_a_missing_or_gated_repo(hub_server, status, code, error, words):
    if status is not None:
        hub_server.add_repo("acme/absent", {"a.gguf": b"x"}, status=status, error_code=code)
    with pytest.raises(error) as info:
        hub.list_repo_files("acme/absent")
    assert words in info.value.message and info.value.hint


def test_list_repo_files_offline_says_so_without_asking_the_hub():
    assert hub.is_offline()  # the tests' default
    with pytest.raises(DownloadError, match="offline") as info:
        hub.list_repo_files(REPO)
    assert "HF_HUB_OFFLINE" in info.value.hint


# -- installed, described, removed ---------------------------------------------------------------------------

@pytest.fixture
def one_file(studiolo_site):
    """The test.onefile generator, installed by entry point and loaded as the app loads it."""
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    install_one_file(studiolo_site)
    return PluginManager(Settings()).load().generator("test.onefile")


def test_a_plugin_whose_patterns_are_not_a_tuple_of_strings_is_refused_with_the_reason(studiolo_site):
    from desktop.plugins import PluginManager, Status
    from desktop.settings import Settings

    source = ONE_FILE.replace('model_file_patterns = ("*.gguf",)', 'model_file_patterns = "*.gguf"')
    studiolo_site.install("studiolo-test-onefile", modules={"studiolo_test_onefile": source},
                          entry_points={"onefile": "studiolo_test_onefile"}, requires=["studiolo>=0.2,<0.3"])
    record = PluginManager(Settings()).load().plugins["onefile"]
    assert record.status == Status.FAILED and "model_file_patterns must be a tuple" in record.error


def test_each_downloaded_file_is_its_own_model_and_removing_one_keeps_the_others(one_file, gguf_repo):
    q4 = hub.download_file(REPO, "tiny-Q4_K_M.gguf", cancel=threading.Event())
    hub.download_file(REPO, "tiny-Q8_0.gguf", cancel=threading.Event())
    q4_ref, q8_ref = f"{REPO}/tiny-Q4_K_M.gguf", f"{REPO}/tiny-Q8_0.gguf"
    assert sorted(ref for _label, ref in inventory.installed_refs(one_file)) == [q4_ref, q8_ref]
    models = {m.ref: m for m in inventory.models_for(one_file).installed}
    assert set(models) == {q4_ref, q8_ref}
    assert models[q4_ref].size_bytes == len(Q4) and models[q4_ref].path == q4
    assert models[q4_ref].details == {"architecture": "qwen2", "quantisation": "Q4_K_M", "context": "32768 tokens"}
    assert inventory.details_text(models[q8_ref].details) == "qwen2 · Q8_0 · 32768 tokens"
    status = {s.ref: s for s in inventory.models_for(one_file).recommended}
    assert status[REPO].choose_file and status[REPO].files == ("tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf")
    assert status[q8_ref].installed and not status[q8_ref].choose_file
    assert inventory.label_for_path(q4) == q4_ref

    freed = remove_model(q4_ref)
    assert freed >= len(Q4) and not q4.exists()
    assert [ref for _label, ref in inventory.installed_refs(one_file)] == [q8_ref]
    assert hub.cached_file(REPO, "tiny-Q8_0.gguf").read_bytes() == Q8
    assert len(list(blobs().iterdir())) == 1  # the removed file's blob went with it
    remove_model(q8_ref)
    assert not blobs().parent.exists()  # nothing left of the repo: its folder went too
    with pytest.raises(ModelNotFoundError):
        remove_model(q8_ref)


def test_an_imported_file_is_a_model_and_a_description_that_fails_shows_nothing(one_file, tmp_path):
    good, odd = tmp_path / "mine-Q4_K_M.gguf", tmp_path / "odd.gguf"
    good.write_bytes(Q4)
    odd.write_bytes(b"GGUF but not what the test plugin reads")
    import_model(good)
    import_model(odd)
    models = {m.ref: m for m in inventory.models_for(one_file).installed}
    assert set(models) == {"mine-Q4_K_M.gguf", "odd.gguf"}  # matching files, imported for no one in particular
    assert models["mine-Q4_K_M.gguf"].details["quantisation"] == "Q4_K_M"
    assert models["odd.gguf"].details == {}  # describe_model raised: nothing shown, nothing broken
    assert ModelResolver().resolve(one_file, "mine-Q4_K_M.gguf") == imported_models_dir() / "mine-Q4_K_M.gguf"


def test_the_cli_pulls_lists_describes_imports_and_removes_single_files(studiolo_site, gguf_repo, tmp_path):
    install_one_file(studiolo_site)
    env = studiolo_site.env()
    files = run_cli("models", "files", REPO, env=env)
    assert files.returncode == 0, files.stderr
    assert "tiny-Q4_K_M.gguf" in files.stdout and "512.0 KB" in files.stdout
    listed = json.loads(run_cli("models", "files", REPO, "--json", env=env).stdout)
    assert {"path": "tiny-Q8_0.gguf", "size_bytes": len(Q8), "ref": f"{REPO}/tiny-Q8_0.gguf"} in listed
    pulled = run_cli("models", "pull", f"{REPO}/tiny-Q8_0.gguf", env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip().endswith("/tiny-Q8_0.gguf") and fetched(gguf_repo) == ["tiny-Q8_0.gguf"]
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(F16)
    imported = run_cli("models", "import", str(gguf), env=env)
    assert imported.returncode == 0, imported.stderr

    listing = {m["ref"]: m for m in json.loads(run_cli("models", "list", "--json", env=env).stdout)}
    assert set(listing) == {f"{REPO}/tiny-Q8_0.gguf", "mine.gguf"}
    assert listing[f"{REPO}/tiny-Q8_0.gguf"]["size_bytes"] == len(Q8)
    assert listing["mine.gguf"]["details"] == {"architecture": "qwen2", "quantisation": "F16",
                                               "context": "512 tokens"}
    table = run_cli("models", "list", env=env).stdout
    assert "DETAILS" in table and "qwen2 · Q8_0 · 32768 tokens" in table

    missing = run_cli("models", "pull", f"{REPO}/tiny-Q2_K.gguf", env=env)
    assert missing.returncode == 1 and "has no file named 'tiny-Q2_K.gguf'" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert run_cli("models", "remove", f"{REPO}/tiny-Q8_0.gguf", env=env).returncode == 0
    assert [m["ref"] for m in json.loads(run_cli("models", "list", "--json", env=env).stdout)] == ["mine.gguf"]


# -- the Models page ---------------------------------------------------------------------------------------

@pytest.fixture
def view(studiolo_site, qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.models_view import ModelsView

    install_one_file(studiolo_site)
    plugins = PluginManager(Settings()).load()
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
    view = ModelsView(engine)
    qtbot.addWidget(view)
    yield view
    assert view.shutdown(timeout=30)
    assert engine.shutdown(timeout=30)


def show_one_file(view, qtbot) -> None:
    view.set_generator("test.onefile")
    qtbot.waitUntil(lambda: not view.busy() and view.recommended_refs() == [REPO, f"{REPO}/tiny-Q8_0.gguf"],
                    timeout=WAIT * 1000)


def test_the_models_page_lists_a_repos_files_with_sizes_and_downloads_the_one_picked(view, gguf_repo, qtbot):
    show_one_file(view, qtbot)
    assert view.repo_row.isVisibleTo(view) and view.action_button(REPO).text() == "Choose file…"
    view.repo_edit.setText(REPO)
    with qtbot.waitSignal(view.files_listed, timeout=WAIT * 1000) as listed:
        qtbot.mouseClick(view.download_file_button, Qt.MouseButton.LeftButton)
    assert listed.args[0] == REPO
    picker = view.file_picker
    assert picker is not None and picker.isVisible()
    assert picker.files() == ["fp16/tiny-F16.gguf", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf"]  # README, config: no
    assert picker.sizes() == ["128.0 KB", "512.0 KB", "256.0 KB"]
    assert fetched(gguf_repo) == []

    with qtbot.waitSignal(view.download_ended, timeout=WAIT * 1000) as ended:
        assert picker.choose("tiny-Q4_K_M.gguf")
    assert ended.args == [f"{REPO}/tiny-Q4_K_M.gguf", "done"] and not picker.isVisible()
    assert fetched(gguf_repo) == ["tiny-Q4_K_M.gguf"]
    qtbot.waitUntil(lambda: not view.busy() and view.installed_refs() == [f"{REPO}/tiny-Q4_K_M.gguf"],
                    timeout=WAIT * 1000)
    assert view.installed_details(f"{REPO}/tiny-Q4_K_M.gguf") == "qwen2 · Q4_K_M · 32768 tokens"
    assert not view.installed_table.isColumnHidden(4)
    assert view.progress_bar(REPO).format() == "1 file(s) downloaded"


def test_the_models_page_cancels_and_resumes_a_picked_file_from_its_repos_row(view, gguf_repo, qtbot):
    pause = gguf_repo.pause(REPO, "tiny-Q4_K_M.gguf", after=300_000)
    show_one_file(view, qtbot)
    with qtbot.waitSignal(view.files_listed, timeout=WAIT * 1000):
        qtbot.mouseClick(view.action_button(REPO), Qt.MouseButton.LeftButton)  # "Choose file…"
    progress: list[int] = []
    view.download_progressed.connect(lambda _ref, done, _total: progress.append(done))
    view.file_picker.choose("tiny-Q4_K_M.gguf")
    assert pause.reached.wait(WAIT)
    qtbot.waitUntil(lambda: any(d >= CHUNK_SIZE for d in progress), timeout=WAIT * 1000)
    assert view.action_button(REPO).text() == "Cancel" and " of 512.0 KB" in view.progress_bar(REPO).format()
    with qtbot.waitSignal(view.download_ended, timeout=WAIT * 1000) as ended:
        qtbot.mouseClick(view.action_button(REPO), Qt.MouseButton.LeftButton)
    pause.release.set()
    assert ended.args == [f"{REPO}/tiny-Q4_K_M.gguf", "cancelled"]
    qtbot.waitUntil(lambda: not view.busy() and view.action_button(REPO).text() == "Choose file…",
                    timeout=WAIT * 1000)
    assert view.installed_refs() == []

    with qtbot.waitSignal(view.download_ended, timeout=WAIT * 1000) as ended:
        assert view.download(f"{REPO}/tiny-Q4_K_M.gguf")
    assert ended.args[1] == "done"
    assert gguf_repo.gets("tiny-Q4_K_M.gguf")[-1].headers.get("Range", "").startswith("bytes=")


def test_the_models_page_downloads_a_recommended_file_directly(view, gguf_repo, qtbot):
    show_one_file(view, qtbot)
    ref = f"{REPO}/tiny-Q8_0.gguf"
    assert view.action_button(ref).text() == "Download"
    with qtbot.waitSignal(view.download_ended, timeout=WAIT * 1000) as ended:
        qtbot.mouseClick(view.action_button(ref), Qt.MouseButton.LeftButton)
    assert ended.args == [ref, "done"] and fetched(gguf_repo) == ["tiny-Q8_0.gguf"]
    qtbot.waitUntil(lambda: not view.busy() and view.installed_refs() == [ref], timeout=WAIT * 1000)
    assert view.action_button(ref).text() == "Downloaded"
    assert view.installed_details(ref) == "qwen2 · Q8_0 · 32768 tokens"


def test_the_models_page_says_why_a_repo_cannot_be_listed(view, hub_server, qtbot):
    show_one_file(view, qtbot)
    with qtbot.waitSignal(view.files_listed, timeout=WAIT * 1000) as listed:
        assert view.choose_file("acme/absent")
    assert listed.args == ["acme/absent", None] and view.file_picker is None
    assert "Could not list the files of acme/absent" in view.message_label.text()
    assert view.message_label.property("error") is True
