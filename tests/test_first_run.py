"""The first run: telling a fresh machine apart, building every demo model, and the welcome page (offline demo
models, then a job at once; downloads from a local stand-in for the hub; cancel; errors shown in the page)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hub_server import HubServer
from PySide6.QtCore import Qt

from desktop.api import RecommendedModel
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.models import hub
from desktop.models.demo import demo_model_dir, ensure_demo_model
from desktop.models.first_run import (
    build_all_demos,
    mark_done,
    needs_first_run,
    offered_downloads,
    size_text,
    total_bytes,
)
from desktop.models.resolver import imported_models_dir
from desktop.plugins import PluginManager, discover
from desktop.settings import Settings
from desktop.ui.welcome import WelcomePage

WAIT = 120_000  # ms: a safety net only; every wait ends on a signal or a condition
BUILTINS = {"image.diffusers", "text.transformers", "text.llamacpp", "audio.speech", "audio.music", "remote.text",
            "remote.image", "remote.audio"}
LOCAL = BUILTINS - {"remote.text", "remote.image", "remote.audio"}  # the remote ones' models are on servers
REPO = "studiolo-tests/tiny-welcome"


@pytest.fixture
def plugins(monkeypatch) -> PluginManager:
    """The built-in generators only: a third-party plugin installed in the environment must not change the tests."""
    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", "")
    manager = PluginManager(Settings()).load()
    assert set(manager.generators) == BUILTINS
    return manager


def fake_demo(dest: Path) -> None:
    """A stand-in for a generator's demo build: instant, and enough for the folder to count as built."""
    (dest / "config.json").write_text("{}")


@pytest.fixture
def fast_demos(plugins, monkeypatch) -> PluginManager:
    """Every generator's demo build replaced by :func:`fake_demo` (for tests about the page, not the models)."""
    for generator in plugins.generators.values():
        monkeypatch.setattr(generator, "build_demo_model", fake_demo)
    return plugins


@pytest.fixture
def make_page(qtbot):
    pages: list[WelcomePage] = []

    def make(plugins: PluginManager, settings: Settings) -> WelcomePage:
        page = WelcomePage(plugins, settings)
        qtbot.addWidget(page)
        page.show()
        pages.append(page)
        return page

    yield make
    for page in pages:
        assert page.shutdown()


@pytest.fixture
def make_engine(qtbot):
    """Engines shut down at teardown (an engine must outlive the events the test left queued)."""
    engines: list[Engine] = []

    def make(plugins: PluginManager) -> Engine:
        engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        assert engine.shutdown(timeout=30)


def demos_built(plugins: PluginManager) -> set[str]:
    return {gid for gid, g in plugins.generators.items() if demo_model_dir(g).is_dir()}


# -- needs_first_run ------------------------------------------------------------------------------------------------


def test_an_empty_home_needs_the_first_run_until_it_is_marked_done(plugins):
    settings = Settings.load()
    assert needs_first_run(plugins, settings)
    mark_done(settings)
    assert not needs_first_run(plugins, settings)
    reloaded = Settings.load()
    assert reloaded.first_run_done and not needs_first_run(plugins, reloaded)


def test_a_built_demo_model_means_no_first_run(plugins, monkeypatch):
    generator = plugins.generator("text.transformers")
    monkeypatch.setattr(generator, "build_demo_model", fake_demo)
    ensure_demo_model(generator)
    assert not needs_first_run(plugins, Settings.load())


def test_an_interrupted_demo_build_still_needs_the_first_run(plugins):
    leftover = demo_model_dir(plugins.generator("audio.music")).parent / ".building-x1y2"
    leftover.mkdir(parents=True)
    assert needs_first_run(plugins, Settings.load())


def test_an_imported_model_means_no_first_run(plugins):
    imported_models_dir().mkdir(parents=True)
    (imported_models_dir() / "my-model.safetensors").write_bytes(b"x")
    assert not needs_first_run(plugins, Settings.load())


def test_only_a_finished_hub_download_means_no_first_run(plugins):
    repo = hub.hub_cache_dir() / "models--someone--a-model"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc.incomplete").write_bytes(b"x")  # a download that never finished
    assert needs_first_run(plugins, Settings.load())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    assert not needs_first_run(plugins, Settings.load())


def test_no_generator_to_set_up_means_no_first_run(monkeypatch):
    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", "")  # no third-party plugin; and the built-ins disabled:
    builtins = [ep.name for ep in discover() if ep.dist is not None and ep.dist.metadata["Name"] == "studiolo"]
    empty = PluginManager(Settings(disabled_plugins=builtins)).load()
    assert not empty.generators and not needs_first_run(empty, Settings.load())


# -- offers and demos -----------------------------------------------------------------------------------------------


def test_every_generator_offers_its_recommended_models_with_sizes(plugins):
    offers = {offer.generator_id: offer for offer in offered_downloads(plugins)}
    assert set(offers) >= LOCAL
    for gid, offer in offers.items():
        generator = plugins.generator(gid)
        assert offer.models == tuple(generator.recommended_models) and offer.generator_name == generator.name
        assert offer.total_bytes == sum(m.size_bytes or 0 for m in generator.recommended_models)
    sd_turbo = next(m for m in offers["image.diffusers"].models if m.ref == "stabilityai/sd-turbo")
    assert sd_turbo.size_bytes and sd_turbo.size_checked and sd_turbo.license
    assert size_text(1_610_612_736) == "1.5 GB" and size_text(None) == "?"  # as the model manager writes sizes
    same = RecommendedModel("a/b", "B", size_bytes=10)
    assert total_bytes([same, same, RecommendedModel("a/c", "C")]) == 10  # a repo counted once, unknown as 0


def test_build_all_demos_reports_a_failing_generator_and_builds_the_others(plugins, monkeypatch):
    broken = plugins.generator("image.diffusers")

    def explode(dest: Path) -> None:
        raise RuntimeError("the tiny UNet would not fit")

    monkeypatch.setattr(broken, "build_demo_model", explode)
    steps: list[tuple[int, int, str]] = []
    failures = build_all_demos(plugins, lambda *step: steps.append(step), threading.Event())
    assert demos_built(plugins) == LOCAL - {"image.diffusers"}
    (failure,) = failures
    assert broken.name in failure and "the tiny UNet would not fit" in failure
    total = len(LOCAL)
    assert [s[:2] for s in steps] == [(i, total) for i in range(total + 1)]
    assert {s[2] for s in steps[:-1]} == {plugins.generator(g).name for g in LOCAL} and steps[-1][2] == ""


def test_build_all_demos_builds_nothing_once_cancelled(fast_demos):
    cancel = threading.Event()
    cancel.set()
    assert build_all_demos(fast_demos, lambda *step: None, cancel) == []
    assert demos_built(fast_demos) == set()


# -- the welcome page ---------------------------------------------------------------------------------------------


def test_offline_the_demo_button_sets_everything_up_and_a_job_runs_at_once(plugins, make_page, make_engine, qtbot):
    settings = plugins.settings
    page = make_page(plugins, settings)
    assert page.offline and not page.download_button.isEnabled()
    assert "No network" in page.download_button.toolTip() and page.offline_label.isVisible()
    page.checkbox("stabilityai/sd-turbo").setChecked(True)
    assert not page.download_button.isEnabled()  # ticking a model does not make it downloadable offline
    with qtbot.waitSignal(page.finished, timeout=WAIT):
        qtbot.mouseClick(page.demo_button, Qt.MouseButton.LeftButton)
    assert demos_built(plugins) == LOCAL
    assert not page.is_busy() and not page.errors_label.isVisible()
    assert Settings.load().first_run_done and settings.first_run_done
    assert not needs_first_run(plugins, Settings.load())

    engine = make_engine(plugins)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        job = engine.submit("text.transformers", {"prompt": "Hello", "temperature": 0.0, "max_new_tokens": 4},
                            model="demo", seed=1)
    assert finished.args[0] == job.id and job.state is JobState.DONE and job.outputs[0].text


def test_the_total_follows_the_ticked_models(fast_demos, make_page):
    page = make_page(fast_demos, Settings())
    assert page.total_label.text() == "Nothing selected."
    speech = fast_demos.generator("audio.speech").recommended_models
    page.checkbox(speech[0].ref).setChecked(True)
    page.checkbox(speech[1].ref).setChecked(True)
    assert page.total_label.text() == (f"Selected: 2 model(s), "
                                       f"{size_text(speech[0].size_bytes + speech[1].size_bytes)} to download.")
    page.checkbox(speech[0].ref).setChecked(False)
    assert f"1 model(s), {size_text(speech[1].size_bytes)}" in page.total_label.text()


def test_skip_leaves_at_once_and_is_remembered(fast_demos, make_page, qtbot):
    page = make_page(fast_demos, Settings())
    with qtbot.waitSignal(page.finished, timeout=WAIT):
        qtbot.mouseClick(page.skip_button, Qt.MouseButton.LeftButton)
    assert demos_built(fast_demos) == set() and Settings.load().first_run_done


def test_cancelling_the_demo_build_stops_after_the_current_one(fast_demos, make_page, qtbot, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    built: list[Path] = []

    def slow_demo(dest: Path) -> None:
        entered.set()
        release.wait(30)
        fake_demo(dest)
        built.append(dest)

    for generator in fast_demos.generators.values():
        monkeypatch.setattr(generator, "build_demo_model", slow_demo)
    page = make_page(fast_demos, Settings())
    finished: list[bool] = []
    page.finished.connect(lambda: finished.append(True))
    qtbot.mouseClick(page.demo_button, Qt.MouseButton.LeftButton)
    try:
        assert page.is_busy() and not page.demo_button.isEnabled() and page.cancel_button.isVisible()
        qtbot.waitUntil(entered.is_set, timeout=WAIT)
        qtbot.waitUntil(lambda: "Building the demo model of" in page.status_label.text(), timeout=WAIT)  # queued
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    finally:
        release.set()  # never leave the worker waiting, whatever failed above
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=WAIT)
    assert len(built) == 1 and len(demos_built(fast_demos)) == 1
    assert not finished and not Settings.load().first_run_done
    assert "Cancelled" in page.status_label.text() and page.demo_button.isEnabled()


def test_download_selected_fetches_the_model_and_builds_the_demos(plugins, make_page, qtbot, monkeypatch,
                                                                  hub_server: HubServer):
    files = {"config.json": b'{"tiny": true}', "model.safetensors": bytes(range(256)) * 64}
    hub_server.add_repo(REPO, files, lfs=("model.safetensors",))
    generator = plugins.generator("audio.music")
    monkeypatch.setattr(generator, "recommended_models",
                        (RecommendedModel(REPO, "Tiny welcome", "A test model.", size_bytes=16_398),))
    page = make_page(plugins, Settings())
    assert not page.offline and not page.download_button.isEnabled()  # nothing ticked yet
    page.checkbox(REPO).setChecked(True)
    assert page.download_button.isEnabled()
    reports: list[list[str]] = []
    page.downloads_finished.connect(reports.append)
    with qtbot.waitSignal(page.finished, timeout=WAIT):
        qtbot.mouseClick(page.download_button, Qt.MouseButton.LeftButton)
    assert reports == [[]] and not page.errors_label.isVisible()  # downloaded, no failure
    snapshot = hub.cached_snapshot(REPO)
    assert snapshot is not None and (snapshot / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert demos_built(plugins) == LOCAL and Settings.load().first_run_done


def test_a_failed_download_is_shown_in_the_page(fast_demos, make_page, qtbot, monkeypatch, hub_server: HubServer):
    generator = fast_demos.generator("audio.speech")
    monkeypatch.setattr(generator, "recommended_models", (RecommendedModel("studiolo-tests/not-there", "Missing"),))
    page = make_page(fast_demos, Settings())
    finished: list[bool] = []
    page.finished.connect(lambda: finished.append(True))
    page.checkbox("studiolo-tests/not-there").setChecked(True)
    with qtbot.waitSignal(page.downloads_finished, timeout=WAIT) as failed:
        qtbot.mouseClick(page.download_button, Qt.MouseButton.LeftButton)
    (message,) = failed.args[0]
    assert "studiolo-tests/not-there" in message
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=WAIT)
    assert page.errors_label.isVisible() and "studiolo-tests/not-there" in page.errors_label.text()
    assert not finished and demos_built(fast_demos) == LOCAL  # the app works anyway
    assert page.continue_button.isVisible() and page.continue_button.text() == "Continue to Studiolo"
    with qtbot.waitSignal(page.finished, timeout=WAIT):
        qtbot.mouseClick(page.continue_button, Qt.MouseButton.LeftButton)
    assert Settings.load().first_run_done


@pytest.fixture
def tiny_offer(fast_demos, monkeypatch, hub_server: HubServer) -> dict[str, bytes]:
    """A recommended model of audio.music that the local hub serves: its files."""
    files = {"config.json": b'{"tiny": true}', "model.safetensors": bytes(range(256)) * 64}
    hub_server.add_repo(REPO, files, lfs=("model.safetensors",))
    monkeypatch.setattr(fast_demos.generator("audio.music"), "recommended_models",
                        (RecommendedModel(REPO, "Tiny welcome", size_bytes=len(files["model.safetensors"])),))
    return files


def test_the_app_can_start_while_the_downloads_go_on(fast_demos, tiny_offer, make_page, qtbot, hub_server):
    pause = hub_server.pause(REPO, "model.safetensors", after=1024)
    page = make_page(fast_demos, Settings())
    reports: list[list[str]] = []
    page.downloads_finished.connect(reports.append)
    page.checkbox(REPO).setChecked(True)
    qtbot.mouseClick(page.download_button, Qt.MouseButton.LeftButton)
    assert pause.reached.wait(timeout=30)
    qtbot.waitUntil(lambda: "Downloading Tiny welcome (1 of 1)" in page.status_label.text(), timeout=WAIT)
    assert demos_built(fast_demos) == LOCAL  # built before the downloads
    assert page.continue_button.isVisible() and "background" in page.continue_button.text()
    with qtbot.waitSignal(page.finished, timeout=WAIT):
        qtbot.mouseClick(page.continue_button, Qt.MouseButton.LeftButton)
    assert page.is_busy() and Settings.load().first_run_done and not reports
    pause.release.set()
    with qtbot.waitSignal(page.downloads_finished, timeout=WAIT) as done:
        pass
    assert done.args == [[]] and hub.cached_snapshot(REPO) is not None


def test_cancelling_a_download_keeps_the_page(fast_demos, tiny_offer, make_page, qtbot, hub_server):
    pause = hub_server.pause(REPO, "model.safetensors", after=1024)
    page = make_page(fast_demos, Settings())
    signals: list[str] = []
    page.finished.connect(lambda: signals.append("finished"))
    page.downloads_finished.connect(lambda _failures: signals.append("downloads_finished"))
    page.checkbox(REPO).setChecked(True)
    qtbot.mouseClick(page.download_button, Qt.MouseButton.LeftButton)
    assert pause.reached.wait(timeout=30)
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=WAIT)
    pause.release.set()
    assert "Cancelled" in page.status_label.text() and not signals and hub.cached_snapshot(REPO) is None
    assert page.download_button.isEnabled() and not page.continue_button.isVisible()
