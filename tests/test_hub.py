"""desktop.models.hub against a local stand-in for the Hugging Face hub (tests/hub_server.py): no network beyond
127.0.0.1, no sleeps (threading.Event waits with timeouts)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer

from desktop.api.errors import DiskFullError, DownloadError, JobCancelled, ModelNotFoundError
from desktop.models import hub
from desktop.models.download_child import CHUNK_SIZE

WAIT = 30.0
REPO = "acme/tiny-model"
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB, LFS
CONFIG = b'{"hidden_size": 32}'


def add_tiny(server: HubServer, repo_id: str = REPO) -> Any:
    return server.add_repo(repo_id, {"config.json": CONFIG, "model.safetensors": WEIGHTS}, lfs=("model.safetensors",))


def blobs(repo_id: str = REPO) -> Path:
    return hub.hub_cache_dir() / ("models--" + repo_id.replace("/", "--")) / "blobs"


class Progress:
    """Records on_progress calls; ``wait_for(pred)`` blocks until a call satisfies pred."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None, str]] = []
        self._cond = threading.Condition()

    def __call__(self, done: int, total: int | None, message: str) -> None:
        with self._cond:
            self.calls.append((done, total, message))
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[int, int | None], bool]) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(pred(d, t) for d, t, _ in self.calls), timeout=WAIT)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_download_reports_progress_and_gives_identical_files(hub_server: HubServer) -> None:
    add_tiny(hub_server)
    pause = hub_server.pause(REPO, "model.safetensors", after=600_000)
    progress = Progress()
    assert hub.cached_snapshot(REPO) is None

    thread, box = in_thread(lambda: hub.download(REPO, cancel=threading.Event(), on_progress=progress))
    assert pause.reached.wait(WAIT)
    total = len(CONFIG) + len(WEIGHTS)
    assert progress.wait_for(lambda d, t: t == total and CHUNK_SIZE <= d < total), progress.calls  # mid-file
    pause.release.set()
    thread.join(WAIT)

    path = box["result"]
    assert (path / "config.json").read_bytes() == CONFIG
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).digest() == hashlib.sha256(WEIGHTS).digest()
    assert progress.calls[-1][:2] == (total, total)
    dones = [d for d, _, _ in progress.calls]
    assert dones == sorted(dones) and all(m for _, _, m in progress.calls)
    assert hub.cached_snapshot(REPO) == path
    assert hub.cached_snapshot(REPO, hub_server.repos[REPO].sha) == path
    assert hub.cached_snapshot(REPO, "v2") is None
    assert hub.cached_snapshot("acme/other") is None


def test_download_of_some_files_is_not_a_complete_snapshot(hub_server: HubServer) -> None:
    add_tiny(hub_server)
    path = hub.download(REPO, cancel=threading.Event(), allow_patterns="*.json")
    assert sorted(p.name for p in path.iterdir()) == ["config.json"]
    assert [r.path.rsplit("/", 1)[1] for r in hub_server.gets()] == ["config.json"]
    assert hub.cached_snapshot(REPO) is None
    assert hub.cached_snapshot(REPO, allow_patterns="*.json") == path


def test_offline_and_not_cached_says_how_to_get_the_model() -> None:
    assert hub.is_offline()  # the test default
    with pytest.raises(DownloadError) as info:
        hub.download(REPO, cancel=threading.Event())
    assert REPO in info.value.message
    assert "HF_HUB_OFFLINE" in str(info.value) and f"studiolo models pull {REPO}" in info.value.hint


def test_offline_and_cached_gives_the_cached_snapshot(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    add_tiny(hub_server)
    path = hub.download(REPO, cancel=threading.Event())
    seen = len(hub_server.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.download(REPO, cancel=threading.Event()) == path
    assert len(hub_server.requests) == seen


def test_unreachable_hub_names_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(DownloadError) as info:
        hub.download(REPO, cancel=threading.Event())
    assert f"http://127.0.0.1:{port}" in info.value.message and REPO in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(("status", "code", "files_only"), [
    (401, None, False), (403, None, False),  # a private repo: nothing is visible
    (401, "GatedRepo", True), (403, "GatedRepo", True),  # a gated repo: its listing is public, its files are not
])
def test_refused_access_explains_gated_models_and_tokens(
        hub_server: HubServer, status: int, code: str | None, files_only: bool) -> None:
    hub_server.add_repo(REPO, {"config.json": CONFIG}, status=status, error_code=code, files_only=files_only)
    with pytest.raises(DownloadError) as info:
        hub.download(REPO, cancel=threading.Event())
    assert REPO in info.value.message and "gated or private" in info.value.message
    assert f"HTTP {status}" in info.value.message
    assert "HF_TOKEN" in info.value.hint and "licence" in info.value.hint
    assert hub.cached_snapshot(REPO) is None


def test_unknown_model_or_revision_is_model_not_found(hub_server: HubServer) -> None:
    add_tiny(hub_server)
    with pytest.raises(ModelNotFoundError) as info:
        hub.download("acme/no-such-model", cancel=threading.Event())
    assert "acme/no-such-model" in info.value.message and info.value.hint
    with pytest.raises(ModelNotFoundError, match="v9"):
        hub.download(REPO, revision="v9", cancel=threading.Event())
    with pytest.raises(ModelNotFoundError):
        hub.download("../../etc", cancel=threading.Event())


def test_cancel_mid_file_keeps_the_partial_file_and_the_next_download_resumes(hub_server: HubServer) -> None:
    repo = add_tiny(hub_server)
    pause = hub_server.pause(REPO, "model.safetensors", after=700_000)
    cancel, progress = threading.Event(), Progress()
    thread, box = in_thread(lambda: hub.download(REPO, cancel=cancel, on_progress=progress))
    assert progress.wait_for(lambda d, t: d >= len(CONFIG) + CHUNK_SIZE and d < (t or 0)), progress.calls
    cancel.set()
    thread.join(WAIT)
    assert isinstance(box.get("error"), JobCancelled), box
    pause.release.set()

    partial = blobs() / (repo.etag("model.safetensors") + ".incomplete")
    size = partial.stat().st_size
    assert 0 < size < len(WEIGHTS) and partial.read_bytes() == WEIGHTS[:size]
    assert hub.cached_snapshot(REPO) is None

    path = hub.download(REPO, cancel=threading.Event())
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert hub_server.gets("model.safetensors")[-1].headers.get("Range") == f"bytes={size}-"
    assert not partial.exists() and hub.cached_snapshot(REPO) == path


def test_failure_halfway_is_a_download_error_and_nothing_looks_complete(hub_server: HubServer) -> None:
    repo = add_tiny(hub_server)
    hub_server.break_after(REPO, "model.safetensors", after=300_000, then_status=500)
    with pytest.raises(DownloadError) as info:
        hub.download(REPO, cancel=threading.Event())
    assert REPO in info.value.message and "resume" in info.value.hint
    assert hub.cached_snapshot(REPO) is None
    partial = blobs() / (repo.etag("model.safetensors") + ".incomplete")
    size = partial.stat().st_size
    assert 0 < size <= 300_000

    hub_server.heal(REPO)
    path = hub.download(REPO, cancel=threading.Event())
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert hub_server.gets("model.safetensors")[-1].headers.get("Range") == f"bytes={size}-"


def test_a_damaged_partial_file_is_detected_and_discarded(hub_server: HubServer) -> None:
    repo = add_tiny(hub_server)
    partial = blobs() / (repo.etag("model.safetensors") + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * 1000)  # not a prefix of the real file
    with pytest.raises(DownloadError, match="damaged"):
        hub.download(REPO, cancel=threading.Event())
    assert not partial.exists() and hub.cached_snapshot(REPO) is None
    path = hub.download(REPO, cancel=threading.Event())
    assert (path / "model.safetensors").read_bytes() == WEIGHTS


def test_not_enough_disk_space_stops_before_any_file_request(
        hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    add_tiny(hub_server)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=5_000))
    with pytest.raises(DiskFullError) as info:
        hub.download(REPO, cancel=threading.Event())
    assert "1.0 MB" in info.value.message and "5.0 kB" in info.value.message
    assert hub_server.gets() == []
    assert not blobs().exists()


def test_list_and_remove_cached_models(hub_server: HubServer) -> None:
    assert hub.list_cached_models() == []
    repo = add_tiny(hub_server)
    path = hub.download(REPO, cancel=threading.Event())
    (hub.hub_cache_dir() / "datasets--acme--data" / "snapshots").mkdir(parents=True)  # not a model: not listed

    (model,) = hub.list_cached_models()
    assert model.repo_id == REPO and model.size_bytes == len(CONFIG) + len(WEIGHTS)
    assert model.revisions == (repo.sha,) and model.snapshot == path and model.path == path.parents[1]
    assert model.last_modified > 0 and model.last_accessed > 0

    freed = hub.remove_cached(REPO)
    assert len(CONFIG) + len(WEIGHTS) <= freed < len(CONFIG) + len(WEIGHTS) + 10_000
    assert not model.path.exists() and hub.list_cached_models() == [] and hub.cached_snapshot(REPO) is None
    with pytest.raises(ModelNotFoundError):
        hub.remove_cached(REPO)


def test_list_cached_models_survives_a_broken_cache() -> None:
    cache = hub.hub_cache_dir()
    cache.mkdir(parents=True)
    (cache / "models--acme--file").write_text("not a folder")
    (cache / "models--acme--nosnap" / "refs").mkdir(parents=True)
    (cache / "models--acme--badref" / "snapshots").mkdir(parents=True)
    (cache / "models--acme--badref" / "refs").mkdir()
    (cache / "models--acme--badref" / "refs" / "main").write_text("0" * 40)
    (cache / "junk").mkdir()
    assert hub.list_cached_models() == []
    shutil.rmtree(cache)
    cache.write_text("the cache is a file")
    assert hub.list_cached_models() == []


def test_paths_and_offline_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert hub.hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hub.hub_cache_dir() == tmp_path / "elsewhere"
    for value, offline in [("1", True), ("true", True), ("0", False), ("", False)]:
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert hub.is_offline() is offline
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example/")
    assert hub.hub_endpoint() == "http://mirror.example"


def test_cancel_before_start_downloads_nothing(hub_server: HubServer) -> None:
    add_tiny(hub_server)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobCancelled):
        hub.download(REPO, cancel=cancel)
    assert hub_server.requests == []
