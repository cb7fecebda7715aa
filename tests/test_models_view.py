"""The Models page (desktop.ui.models_view) with the built-in generators, offscreen: listing, downloads from the
local fake hub (progress, cancel, resume, failure), import, remove, and the models loaded now. No sleeps: every
wait ends on a signal, a table's contents or a threading.Event the fake hub sets."""

from __future__ import annotations

import pytest
from helpers import install_markov
from hub_server import HubServer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop.api import RecommendedModel
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.models import usage
from desktop.models.demo import demo_model_dir, ensure_demo_model
from desktop.models.download_child import CHUNK_SIZE
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.models_view import ModelsView

WAIT = 30_000  # ms: a safety net only
REPO = "acme/tiny-voice"
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB, LFS
CONFIG = b'{"model_type": "vits"}'
TOTAL = len(CONFIG) + len(WEIGHTS)


@pytest.fixture
def plugins(studiolo_site):
    install_markov(studiolo_site)
    manager = PluginManager(Settings()).load()
    assert {"audio.speech", "text.markov"} <= set(manager.generators)
    return manager


@pytest.fixture
def engine(plugins, qtbot):
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.fixture
def view(engine, qtbot):
    view = ModelsView(engine)
    qtbot.addWidget(view)
    yield view
    assert view.shutdown(timeout=30)


@pytest.fixture
def tiny_voice(plugins, hub_server: HubServer, monkeypatch):
    """audio.speech recommends one model, which the fake hub serves."""
    hub_server.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS}, lfs=("model.safetensors",))
    monkeypatch.setattr(plugins.generator("audio.speech"), "recommended_models",
                        (RecommendedModel(REPO, "Tiny voice", "Reads test sentences.", size_bytes=2_000_000,
                                          size_checked="2026-01", license="MIT"),))
    return hub_server


def show(view: ModelsView, qtbot, generator_id: str, until) -> None:
    view.set_generator(generator_id)
    qtbot.waitUntil(lambda: not view.busy() and until(), timeout=WAIT)


def cells(table, row: int) -> list[str]:
    return [table.item(row, c).text() if table.item(row, c) else "" for c in range(table.columnCount())]


def test_lists_the_recommended_models_before_download_and_offline_says_why(view, qtbot):
    show(view, qtbot, "audio.speech", lambda: len(view.recommended_refs()) == 4)
    assert view.recommended_refs()[0] == "facebook/mms-tts-eng"
    name, size, licence, description = cells(view.recommended_table, 0)[:4]
    assert name == "MMS-TTS English" and size == "138.3 MB (as of 2026-11)" and licence == "CC-BY-NC-4.0"
    assert "English" in description
    button = view.action_button("facebook/mms-tts-eng")
    assert button.text() == "Download" and not button.isEnabled() and "offline" in button.toolTip()
    column = view.recommended_table.columnWidth(5)  # the button shows its whole text, whichever it shows
    for text in ("Download", "Downloaded", "Cancelling…"):
        assert column >= button.fontMetrics().horizontalAdvance(text) + 8, (text, column)
    assert not view.offline_label.isHidden()
    assert view.download("facebook/mms-tts-eng") is False
    assert "offline" in view.message_label.text() and view.message_label.property("error") is True


def test_lists_installed_models_with_source_size_and_last_used(view, plugins, qtbot):
    ensure_demo_model(plugins.generator("text.markov"))
    usage.record_use("text.markov", "demo", clock=lambda: 1_000_000_000.0)
    show(view, qtbot, "text.markov", lambda: view.installed_refs() == ["demo:text.markov"])
    ref, source, size, last_used, details = cells(view.installed_table, 0)
    assert (ref, source) == ("demo:text.markov", "demo") and size.endswith(("B", "KB")) and size != "0 B"
    assert last_used.startswith("2001-09-")
    assert details == "" and view.installed_table.isColumnHidden(4)  # no describe_model: no Details column
    assert view.recommended_refs() == [] and view.total_label.text().startswith("Models on disk: ")
    show(view, qtbot, "audio.speech", lambda: view.installed_refs() == [])  # markov's demo is not speech's model


def test_a_download_reports_progress_then_is_installed(view, tiny_voice, qtbot):
    pause = tiny_voice.pause(REPO, "model.safetensors", after=600_000)
    show(view, qtbot, "audio.speech", lambda: view.recommended_refs() == [REPO])
    assert cells(view.recommended_table, 0)[1] == "1.9 MB (as of 2026-01)"
    button = view.action_button(REPO)
    assert button.text() == "Download" and button.isEnabled()
    progress: list[tuple[int, int]] = []
    view.download_progressed.connect(lambda ref, done, total: progress.append((done, total)))
    changed: list[bool] = []
    view.models_changed.connect(lambda: changed.append(True))

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert pause.reached.wait(WAIT / 1000)
    qtbot.waitUntil(lambda: any(total == TOTAL and CHUNK_SIZE <= done < TOTAL for done, total in progress),
                    timeout=WAIT)
    assert view.action_button(REPO).text() == "Cancel" and " of 1.0 MB" in view.progress_bar(REPO).format()
    assert REPO not in view.installed_refs()
    with qtbot.waitSignal(view.download_ended, timeout=WAIT) as ended:
        pause.release.set()
    assert ended.args == [REPO, "done"] and changed == [True]
    qtbot.waitUntil(lambda: not view.busy() and view.installed_refs() == [REPO], timeout=WAIT)
    assert view.action_button(REPO).text() == "Downloaded" and not view.action_button(REPO).isEnabled()
    assert cells(view.recommended_table, 0)[1] == "1.0 MB"  # the hub's own listing, no date needed
    assert "Downloaded acme/tiny-voice" in view.message_label.text()


def test_cancel_mid_way_keeps_the_partial_download_and_resume_completes_it(view, tiny_voice, qtbot):
    pause = tiny_voice.pause(REPO, "model.safetensors", after=700_000)
    show(view, qtbot, "audio.speech", lambda: view.recommended_refs() == [REPO])
    progress: list[int] = []
    view.download_progressed.connect(lambda ref, done, total: progress.append(done))
    assert view.download(REPO)
    assert pause.reached.wait(WAIT / 1000)
    qtbot.waitUntil(lambda: any(done >= len(CONFIG) + CHUNK_SIZE for done in progress), timeout=WAIT)
    with qtbot.waitSignal(view.download_ended, timeout=WAIT) as ended:
        qtbot.mouseClick(view.action_button(REPO), Qt.MouseButton.LeftButton)  # "Cancel"
    pause.release.set()
    assert ended.args == [REPO, "cancelled"] and "cancelled" in view.message_label.text()
    qtbot.waitUntil(lambda: not view.busy() and view.action_button(REPO).text() == "Resume", timeout=WAIT)
    assert view.installed_refs() == [] and "Partly downloaded" in view.progress_bar(REPO).format()

    with qtbot.waitSignal(view.download_ended, timeout=WAIT) as ended:
        qtbot.mouseClick(view.action_button(REPO), Qt.MouseButton.LeftButton)  # "Resume"
    assert ended.args == [REPO, "done"]
    assert tiny_voice.gets("model.safetensors")[-1].headers.get("Range", "").startswith("bytes=")
    qtbot.waitUntil(lambda: not view.busy() and view.installed_refs() == [REPO], timeout=WAIT)


def test_a_failed_download_shows_why_and_is_not_installed(view, plugins, hub_server, qtbot, monkeypatch):
    monkeypatch.setattr(plugins.generator("audio.speech"), "recommended_models",
                        (RecommendedModel("acme/missing", "Missing voice"),))
    show(view, qtbot, "audio.speech", lambda: view.recommended_refs() == ["acme/missing"])
    assert cells(view.recommended_table, 0)[1:3] == ["unknown", "unknown"]  # no size, no licence known
    messages: list[tuple[str, bool]] = []
    view.message.connect(lambda text, error: messages.append((text, error)))
    with qtbot.waitSignal(view.download_ended, timeout=WAIT) as ended:
        view.download("acme/missing")
    assert ended.args == ["acme/missing", "failed"]
    text, error = messages[-1]
    assert error and "There is no model named acme/missing" in text and view.message_label.text() == text
    qtbot.waitUntil(lambda: not view.busy(), timeout=WAIT)
    assert view.installed_refs() == [] and view.action_button("acme/missing").text() == "Download"


def test_import_a_folder_for_the_chosen_generator(view, qtbot, tmp_path):
    folder = tmp_path / "poems"
    folder.mkdir()
    (folder / "corpus.txt").write_text("roses are red " * 30)
    show(view, qtbot, "text.markov", lambda: view.installed_refs() == [])
    with qtbot.waitSignal(view.models_changed, timeout=WAIT):
        view.import_path(folder)
    qtbot.waitUntil(lambda: not view.busy() and view.installed_refs() == ["poems"], timeout=WAIT)
    assert cells(view.installed_table, 0)[1:4] == ["imported", "420 B", "never"]
    assert usage.refs_for("text.markov") == ["poems"] and "Imported poems" in view.message_label.text()

    view.import_path(folder)  # the same name again: refused, said in the view
    qtbot.waitUntil(lambda: view.message_label.property("error") is True, timeout=WAIT)
    assert "already imported" in view.message_label.text()


def test_remove_asks_first_and_removes_only_when_confirmed(view, plugins, qtbot, tmp_path):
    markov = plugins.generator("text.markov")
    ensure_demo_model(markov)
    folder = tmp_path / "poems"
    folder.mkdir()
    (folder / "corpus.txt").write_text("roses are red " * 30)
    show(view, qtbot, "text.markov", lambda: view.installed_refs() == ["demo:text.markov"])
    with qtbot.waitSignal(view.models_changed, timeout=WAIT):
        view.import_path(folder)
    qtbot.waitUntil(lambda: not view.busy() and len(view.installed_refs()) == 2, timeout=WAIT)

    view.remove("demo:text.markov")
    box = view.confirm_box
    assert box is not None and box.isVisible() and "demo:text.markov" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert view.confirm_box is None and not view.busy() and demo_model_dir(markov).is_dir()

    view.installed_table.selectRow(0)
    qtbot.mouseClick(view.remove_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(view.models_changed, timeout=WAIT):
        view.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert not demo_model_dir(markov).exists()

    with qtbot.waitSignal(view.models_changed, timeout=WAIT):
        view.remove("poems", confirm=False)
    qtbot.waitUntil(lambda: not view.busy() and view.installed_refs() == [], timeout=WAIT)
    assert "Removed poems" in view.message_label.text()


def test_loaded_now_shows_the_model_of_a_job_and_unload_empties_it(view, engine, qtbot):
    assert view.loaded_table.rowCount() == 0
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("text.markov", {"words": 5}, model="demo", seed=1)
    qtbot.waitUntil(lambda: view.loaded_table.rowCount() == 1, timeout=WAIT)
    generator, model, device, memory, state = cells(view.loaded_table, 0)[:5]
    assert (generator, model, device) == ("Markov chain", "demo", "cpu") and memory.endswith("B")
    assert state.startswith("idle")
    (key,) = view.loaded_keys()
    assert key.generator_id == "text.markov"

    qtbot.mouseClick(view.loaded_table.cellWidget(0, 5), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.loaded_table.rowCount() == 0, timeout=WAIT)
    assert engine.cache.loaded() == [] and "Unloaded demo" in view.message_label.text()


def test_a_generator_pages_model_chooser_shows_the_model_jobs_will_use(engine, plugins, qtbot):
    """Issue 16: the Model field was blank on every page (jobs silently ran the default, the demo)."""
    from desktop.ui.generator_page import GeneratorPage

    page = GeneratorPage(engine, plugins.generator("audio.speech"))
    qtbot.addWidget(page)
    chooser = page.model_chooser
    for _ in range(2):  # as built, and once the installed models are listed
        assert chooser.currentText() == chooser.itemText(0) and chooser.currentText().startswith("Demo model")
        assert chooser.ref() == "demo" and page.host.current_model() == "demo"
        with qtbot.waitSignal(chooser.installed_listed, timeout=WAIT):
            chooser.refresh_installed()
    chooser.setEditText("org/typed-model")  # a typed reference survives a refresh
    with qtbot.waitSignal(chooser.installed_listed, timeout=WAIT):
        chooser.refresh_installed()
    assert chooser.ref() == "org/typed-model"


def test_a_generator_pages_model_chooser_lists_the_models_installed_for_it(engine, plugins, qtbot, tmp_path):
    from desktop.models.store import import_model
    from desktop.ui.generator_page import GeneratorPage

    corpus = tmp_path / "poems"
    corpus.mkdir()
    (corpus / "corpus.txt").write_text("the moon is bright tonight over the sea " * 20)
    import_model(corpus, name="poems", generator_id="text.markov")
    import_model(corpus, name="someone-elses", generator_id="audio.speech")
    page = GeneratorPage(engine, plugins.generator("text.markov"))
    qtbot.addWidget(page)
    chooser = page.model_chooser
    qtbot.waitUntil(lambda: chooser.findData("poems") >= 0, timeout=WAIT)  # listed off the GUI thread
    assert chooser.itemText(chooser.findData("poems")) == "poems (imported)"
    assert chooser.findData("someone-elses") < 0  # imported for another generator
    chooser.setCurrentIndex(chooser.findData("poems"))
    assert chooser.ref() == "poems"
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        page.generate()
    chooser.set_ref("demo")
    from desktop.models.store import remove_model

    remove_model("poems")
    with qtbot.waitSignal(chooser.installed_listed, timeout=WAIT):
        chooser.refresh_installed()
    assert chooser.findData("poems") < 0 and chooser.ref() == "demo"  # gone, and the choice kept


def test_the_generator_list_follows_plugins_enabled_and_disabled_while_open(view, plugins, qtbot):
    def listed() -> list[str]:
        combo = view.generator_combo
        return [combo.itemData(i) for i in range(combo.count())]

    show(view, qtbot, "text.markov", lambda: view.generator_id() == "text.markov")
    plugins.set_enabled("markov", False)
    assert plugins.apply_enabled("markov") == ([], ["text.markov"])
    with qtbot.waitSignal(view.refreshed, timeout=WAIT):
        view.sync_generators()
    assert "text.markov" not in listed() and view.generator_id() == listed()[0]
    plugins.set_enabled("markov", True)
    assert plugins.apply_enabled("markov") == (["text.markov"], [])
    view.hide()
    view.show()  # showing the page syncs the list too
    assert "text.markov" in listed()
    qtbot.waitUntil(lambda: not view.busy(), timeout=WAIT)
