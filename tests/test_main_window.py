"""The main window, driven as a person would (offscreen): pages, jobs, activity, plugins, settings, state."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch_plugin
from helpers import builtin_plugins, install_markov, run_python
from plugin_sources import install_broken, install_panels
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QStyleOptionComboBox,
)

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.testing.layout import settle_layouts
from desktop.ui.generator_page import ErrorPage, GeneratorPage
from desktop.ui.main_window import GALLERY_PAGE, MODELS_PAGE, PLUGINS_PAGE, MainWindow

WAIT = 60_000
SHOTS = os.environ.get("STUDIOLO_SCREENSHOTS")  # a folder: the screenshot tests save what they grab there


@pytest.fixture
def installed(studiolo_site):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    install_broken(studiolo_site, ["import_error"])
    install_panels(studiolo_site)
    return studiolo_site


@pytest.fixture
def make_window(installed, qtbot):
    windows = []

    def make(*, first_run: bool = False) -> MainWindow:
        if not first_run:  # the welcome page has been dealt with (its own test below and tests/test_first_run.py)
            from desktop.settings import Settings

            settings = Settings.load()
            settings.first_run_done = True
            settings.save()
        plugins = PluginManager().load()
        engine = Engine(plugins, cache=ModelCache())
        window = MainWindow(plugins, engine)
        qtbot.addWidget(window)
        with qtbot.waitActive(window):  # keyboard shortcuts reach the active window only
            window.show()
            window.activateWindow()
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.isVisible():
            window.close()


def shot(window, name: str) -> None:
    image = window.grab().toImage()
    assert not image.isNull() and image.width() > 100
    colors = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colors) > 5, "the window looks blank"
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        image.save(str(Path(SHOTS) / f"{name}.png"))


def start_long_job(window, qtbot) -> GeneratorPage:
    """A noise job of 100,000 steps, running (its first progress arrived)."""
    page = window.show_page("test.noise")
    page.form.field_widget("steps").setValue(100000)
    with qtbot.waitSignal(window.engine.job_progressed, timeout=WAIT):
        page.generate_button.click()
    return page


def test_generators_are_grouped_by_kind_and_failed_plugins_flagged(make_window):
    window = make_window()
    kinds = {window.sidebar.topLevelItem(i).text(0): window.sidebar.topLevelItem(i)
             for i in range(window.sidebar.topLevelItemCount())}
    assert {"Text", "Image", "Studiolo"} <= set(kinds)
    names = [kinds["Text"].child(i).text(0) for i in range(kinds["Text"].childCount())]
    assert "Markov chain" in names
    host_pages = [kinds["Studiolo"].child(i).text(0) for i in range(kinds["Studiolo"].childCount())]
    assert "Plugins ⚠ 1" in host_pages and "Models" in host_pages
    assert isinstance(window.current_page(), GeneratorPage)  # a first generator is open at once
    window.show_page("text.markov")
    shot(window, "main-window")


def test_a_job_through_the_gui_with_progress_and_output(make_window, qtbot):
    window = make_window()
    page = window.show_page("text.markov")
    page.form.field_widget("words").setValue(12)
    page.seed_box.setText("5")
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as finished:
        qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    job = window.engine.jobs()[-1]
    assert job.seed == 5 and job.params.words == 12
    assert page.output.text.toPlainText() == finished.args[1][0].text
    assert page.progress.value() == page.progress.maximum() and "Done (seed 5)" in page.status.text()
    row = window.activity.row_of(job.id)
    assert window.activity.table.item(row, 2).text() == "done"


def test_an_image_job_shows_its_preview_and_thumbnail(make_window, qtbot):
    window = make_window()
    page = window.show_page("test.noise")
    previews = []
    page.host.job_previewed.connect(lambda _id, preview: previews.append(preview))
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
        page.generate_button.click()
    assert previews and not page.output.image.image_pixmap().isNull()
    job = window.engine.jobs()[-1]
    row = window.activity.row_of(job.id)
    assert not window.activity.table.item(row, 4).icon().isNull()
    shot(window, "image-job")


def test_cancel_from_the_activity_view(make_window, qtbot):
    window = make_window()
    page = start_long_job(window, qtbot)
    job = window.engine.jobs()[-1]
    window.activity.select(job.id)
    assert window.activity.buttons["cancel"].isEnabled()
    with qtbot.waitSignal(window.engine.job_cancelled, timeout=WAIT):
        window.activity.buttons["cancel"].click()
    assert job.state is JobState.CANCELLED
    assert window.activity.table.item(window.activity.row_of(job.id), 2).text() == "cancelled"
    assert "Cancelled" in page.status.text()


def test_rerun_gives_the_same_result(make_window, qtbot):
    window = make_window()
    page = window.show_page("text.markov")
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as first_done:
        page.generate()
    first = window.engine.jobs()[-1]
    assert first.outputs == [] and first.saved  # saved and delivered: only the light record is kept
    window.activity.select(first.id)
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as second_done:
        window.activity.buttons["rerun"].click()
    second = window.engine.jobs()[-1]
    assert second is not first and second.seed == first.seed
    assert second_done.args[1][0].text == first_done.args[1][0].text


def test_the_queue_can_be_paused_and_reordered_from_the_activity_view(make_window, qtbot):
    window = make_window()
    engine = window.engine
    engine.set_paused("text.markov", True)
    jobs = [engine.submit("text.markov", {"words": 2}) for _ in range(3)]
    window.activity.select(jobs[2].id)
    assert window.activity.buttons["pause"].isChecked()
    window.activity.buttons["up"].click()
    assert [j.id for j in engine.waiting("text.markov")] == [jobs[0].id, jobs[2].id, jobs[1].id]
    window.activity.select(jobs[2].id)
    with qtbot.waitSignals([engine.job_finished] * 3, timeout=WAIT):
        window.activity.buttons["pause"].click()  # resume
    assert not engine.is_paused("text.markov")


def test_invalid_input_is_marked_before_submit_and_nothing_is_queued(make_window):
    window = make_window()
    page = window.show_page("text.markov")
    page.seed_box.setText("99999999999999999999")
    assert page.generate() is None
    assert "seed" in page.status.text() and window.engine.jobs() == []


def test_esc_cancels_the_running_job(make_window, qtbot):
    window = make_window()
    start_long_job(window, qtbot)
    with qtbot.waitSignal(window.engine.job_cancelled, timeout=WAIT):
        qtbot.keyClick(window, Qt.Key.Key_Escape)


def test_a_panel_that_raises_is_replaced_by_an_error_page(make_window, qtbot):
    window = make_window()
    page = window.show_page("test.badpanel")
    error = page.findChild(ErrorPage)
    assert error is not None and "RuntimeError: the panel exploded" in error.details.toPlainText()
    shot(window, "panel-error")
    good = window.show_page("test.goodpanel")
    assert good.findChild(QLabel, "custom_panel").text() == "custom panel"
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as finished:
        qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert finished.args[1][0].text == "from the custom panel"
    shot(window, "custom-panel")


def sidebar_names(window) -> set[str]:
    return {window.sidebar.topLevelItem(i).child(j).text(0) for i in range(window.sidebar.topLevelItemCount())
            for j in range(window.sidebar.topLevelItem(i).childCount())}


def test_disabling_and_enabling_a_plugin_applies_at_once(make_window, qtbot):
    from desktop.api.errors import PluginError

    window = make_window()
    start_long_job(window, qtbot)  # a test.noise job, running
    running = window.engine.jobs()[-1]
    view = window.show_page(PLUGINS_PAGE)
    assert "Noise" in sidebar_names(window)
    with qtbot.waitSignal(window.engine.job_cancelled, timeout=WAIT):
        assert view.set_enabled("noise", False)
    assert running.cancelled and running.steps_after_cancel <= 1
    assert {"Noise", "Noise 2"}.isdisjoint(sidebar_names(window)) and "test.noise" not in window.pages
    with pytest.raises(PluginError):
        window.engine.submit("test.noise", {"steps": 1})
    assert view.notice.isHidden()  # nothing waits for a restart
    assert "disabled" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: all(m.key.generator_id != "test.noise" for m in window.engine.cache.loaded()),
                    timeout=WAIT)

    assert view.set_enabled("noise", True)
    assert {"Noise", "Noise 2"} <= sidebar_names(window) and view.notice.isHidden()
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
        window.engine.submit("test.noise", {"steps": 2})
    assert window.current_page() is view


def test_the_plugins_page_shows_a_broken_plugins_traceback(make_window):
    window = make_window()
    view = window.show_page(PLUGINS_PAGE)
    view.select("import_error")
    text = "\n".join(w.toPlainText() for w in view.findChildren(QPlainTextEdit))
    assert "Traceback (most recent call last)" in text and "studiolo_no_such_module_xyz" in text
    shot(window, "plugins")


def test_the_models_page_follows_the_open_generator_and_imports_reach_its_chooser(make_window, qtbot, tmp_path):
    from desktop.ui.models_view import ModelsView

    window = make_window()
    page = window.show_page("text.markov")
    models = window.show_page(MODELS_PAGE)
    assert isinstance(models, ModelsView) and models.generator_id() == "text.markov"
    corpus = tmp_path / "songs"
    corpus.mkdir()
    (corpus / "corpus.txt").write_text("row row row your boat gently down the stream " * 10)
    with qtbot.waitSignal(models.models_changed, timeout=WAIT):
        models.import_path(corpus)
    qtbot.waitUntil(lambda: page.model_chooser.findData("songs") >= 0, timeout=WAIT)
    qtbot.waitUntil(lambda: not models.busy() and "songs" in models.installed_refs(), timeout=WAIT)
    shot(window, "models")


def test_the_first_run_shows_the_welcome_page_once_then_the_generators(make_window, qtbot):
    from desktop.ui.welcome import WelcomePage

    window = make_window(first_run=True)
    assert isinstance(window.current_page(), WelcomePage) and not window.sidebar.isEnabled()
    assert not any(action.isEnabled() for action in window.page_actions)  # no way around the welcome page
    shot(window, "welcome")
    qtbot.mouseClick(window.welcome.skip_button, Qt.MouseButton.LeftButton)
    assert isinstance(window.current_page(), GeneratorPage) and window.sidebar.isEnabled()
    assert all(action.isEnabled() for action in window.page_actions)
    window.close()
    again = make_window(first_run=True)  # remembered: not shown again
    assert again.welcome is None and isinstance(again.current_page(), GeneratorPage)


def test_a_finished_job_reaches_the_gallery_searchable_by_its_text_and_reusable(make_window, qtbot):
    from desktop.ui.gallery import GalleryView

    window = make_window()
    gallery = window.show_page(GALLERY_PAGE)
    assert isinstance(gallery, GalleryView)
    qtbot.waitUntil(lambda: gallery.loader.pending() == 0)
    before = gallery.item_count()
    page = window.show_page("text.markov")
    page.form.field_widget("words").setValue(7)
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as finished:
        page.generate()
    made = finished.args[1][0].text
    window.show_page(GALLERY_PAGE)
    qtbot.waitUntil(lambda: gallery.item_count() == before + 1, timeout=WAIT)  # refreshed when the job finished
    qtbot.waitUntil(lambda: gallery.thumbnails.pending() == 0, timeout=WAIT)
    shot(window, "gallery")
    gallery.filters.search_timer.setInterval(0)
    gallery.filters.search.setText(made.split()[-1])  # full-text search over the generated text
    qtbot.waitUntil(lambda: gallery.loader.pending() == 0 and gallery.item_count() >= 1, timeout=WAIT)
    item_id = window.engine.jobs()[-1].item_ids[0]
    gallery.select_item(item_id)
    page.form.field_widget("words").setValue(99)
    gallery.actions_by_name["reuse"].trigger()
    qtbot.waitUntil(lambda: window.current_page() is page and page.form.field_widget("words").value() == 7,
                    timeout=WAIT)
    window.apply_params("text.gone", {"words": 1})  # a generator no longer installed: said, not raised
    assert "text.gone" in window.statusBar().currentMessage()


@pytest.mark.parametrize("generator_id, made", [
    ("image.diffusers", {"prompt": "a lighthouse at dawn", "negative_prompt": "blur", "width": 256, "height": 192,
                         "steps": 7, "guidance_scale": 5.5, "batch_count": 2}),
    ("text.transformers", {"prompt": "Once upon a time", "max_new_tokens": 33, "temperature": 0.4, "top_k": 7}),
    ("audio.speech", {"text": "Good morning. The tea is ready.", "speaking_rate": 1.25, "noise_scale": 0.3}),
    ("audio.music", {"prompt": "slow cello", "duration": 4.5, "guidance_scale": 2.5}),
])
def test_reuse_parameters_from_the_gallery_fills_each_kinds_panel(make_window, qtbot, tmp_path, generator_id, made):
    from desktop.api import from_json, to_json
    from desktop.library import NewItem

    window = make_window()
    generator = window.plugins.generator(generator_id)
    params = from_json(generator.Params, made)
    output = tmp_path / "made.bin"
    output.write_bytes(b"not opened by this test")
    item_id = window.engine.library.add(NewItem(
        generator_id=generator_id, kind=generator.kind, path=output, prompt=made.get("prompt") or made.get("text"),
        metadata={"params": to_json(params), "generator": generator_id})).result(timeout=30)
    gallery = window.show_page(GALLERY_PAGE)
    qtbot.waitUntil(lambda: gallery.loader.pending() == 0 and gallery.item_count() >= 1, timeout=WAIT)
    gallery.select_item(item_id)
    gallery.actions_by_name["reuse"].trigger()
    qtbot.waitUntil(lambda: isinstance(window.current_page(), GeneratorPage)
                    and window.current_page().generator.id == generator_id, timeout=WAIT)
    panel = window.current_page().custom_panel
    assert panel is not None  # each built-in has its own panel

    def shown() -> dict:  # the text panel keeps its prompt in the document editor, not in its settings
        if generator_id == "text.transformers":
            return to_json(panel.params(prompt=panel.editor.text()))
        return to_json(panel.params())

    qtbot.waitUntil(lambda: shown() == to_json(params), timeout=WAIT)


def test_settings_persist(make_window, studiolo_home):
    window = make_window()
    window.open_settings()
    dialog = window.settings_dialog
    device = dialog.device_combo  # (the dialog has several combo boxes: theme, device…)
    device.setCurrentIndex(device.findData("cpu"))
    assert dialog.apply()
    assert Settings.load().device == "cpu" and window.engine.services.device_preference == "cpu"
    dialog.close()


def test_state_is_restored_on_restart(make_window, qtbot):
    window = make_window()
    page = window.show_page("text.markov")
    page.form.field_widget("words").setValue(77)
    page.seed_box.setText("123")
    window.resize(700, 540)  # within the offscreen screen (800×600): restoreGeometry keeps windows on screen
    size = (window.width(), window.height())
    window.close()
    again = make_window()
    assert again.current_page_id() == "text.markov"
    restored = again.current_page()
    assert restored.form.params().words == 77 and restored.seed_box.text() == "123"
    assert (again.width(), again.height()) == size


UNSENT = {  # per built-in panel: (edit its widgets as a person would, read them back)
    "image.diffusers": (lambda p: (p.prompt.setPlainText("unsent fox"), p.steps.setValue(33),
                                   p.scheduler.setCurrentIndex(p.scheduler.findData("unipc"))),
                        lambda p: (p.prompt.toPlainText(), p.steps.value(), p.scheduler.currentData()),
                        ("unsent fox", 33, "unipc")),
    "text.transformers": (lambda p: (p.temperature.setValue(0.35), p.top_k.setValue(9),
                                     p.stop_edit.setPlainText("THE END")),
                          lambda p: (p.temperature.value(), p.top_k.value(), p.stop_edit.toPlainText()),
                          (0.35, 9, "THE END")),
    "audio.speech": (lambda p: (p.form.field_widget("text").setPlainText("unsent words"),
                                p.form.field_widget("speaking_rate").setValue(1.5)),
                     lambda p: (p.form.field_widget("text").toPlainText(),
                                p.form.field_widget("speaking_rate").value()),
                     ("unsent words", 1.5)),
}


@pytest.mark.parametrize("generator_id", list(UNSENT))
def test_edits_not_used_in_a_job_survive_a_restart(make_window, generator_id):
    edit, read, edited = UNSENT[generator_id]
    window = make_window()
    panel = window.show_page(generator_id).custom_panel
    assert read(panel) != edited
    edit(panel)
    assert read(panel) == edited and window.engine.jobs() == []  # nothing submitted
    window.close()
    again = make_window()
    assert again.current_page_id() == generator_id
    assert read(again.current_page().custom_panel) == edited


def shown_width(combo) -> int:
    """The width a combo box has for its text."""
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    return combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo).width()


def test_the_text_panel_at_900_by_600_shows_its_preset_box_whole_and_one_send_button(make_window, qtbot):
    window = make_window()
    window.resize(900, 600)
    panel = window.show_page("text.transformers").custom_panel
    qtbot.waitUntil(lambda: panel.preset_combo.isVisible() and window.width() == 900)
    settle_layouts(window)  # the layouts posted on showing have run, as they have before anyone sees the window
    combo = panel.preset_combo
    assert combo.currentText() == "Choose a preset…"
    assert shown_width(combo) >= combo.fontMetrics().horizontalAdvance(combo.currentText())  # not elided

    def sends() -> list:
        return [b for b in panel.findChildren(QPushButton) if b.objectName() in ("generate", "send") and b.isVisible()]

    assert [b.objectName() for b in sends()] == ["generate"]
    panel.set_mode("chat")
    assert [b.objectName() for b in sends()] == ["send"]
    panel.set_mode("continue")
    assert [b.objectName() for b in sends()] == ["generate"]


def test_quitting_with_a_running_job(make_window, qtbot):
    window = make_window()
    start_long_job(window, qtbot)
    job = window.engine.jobs()[-1]
    window.close()
    assert job.state is JobState.CANCELLED
    assert all(thread.isFinished() for _worker, thread in window.engine._workers.values())


def test_status_bar_and_diagnostics(make_window, qtbot):
    window = make_window()
    window.engine.settings.hf_token = "hf_secret_token"
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
        window.show_page("text.markov").generate()
    window.refresh_status()
    assert window.device_label.text() == "Device: automatic"
    assert window.models_label.text().startswith("Models loaded: 1")
    assert window.memory_label.text().startswith("Memory: ")
    text = window.copy_diagnostics()
    assert QApplication.clipboard().text() == text
    assert "markov 1.0.0 — loaded" in text and "import_error" in text and "hf_secret_token" not in text
    pid = window.engine.worker_processes()["text.markov"]
    assert pid is not None and f"text.markov: pid {pid}, " in text  # the job ran in its worker process


def test_errors_are_shown_never_silent(make_window, qtbot):
    from desktop.ui.app import install_error_hooks

    window = make_window()
    install_error_hooks(window)
    try:
        with qtbot.waitSignal(window.error_reported, timeout=WAIT) as reported:
            QTimer.singleShot(0, lambda: 1 / 0)
        assert "ZeroDivisionError" in reported.args[0]
        assert window.errors_button.isVisible() and "ZeroDivisionError" in window.errors.entries[-1]
    finally:
        sys.excepthook = sys.__excepthook__
        from PySide6.QtCore import qInstallMessageHandler

        qInstallMessageHandler(None)


def test_no_generators_installed_explains_how_to_add_one(studiolo_home, qtbot, monkeypatch):
    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", "")  # no third-party plugin; and the built-ins disabled:
    plugins = PluginManager(Settings(disabled_plugins=builtin_plugins())).load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(window)
    assert window.current_page() is window.empty_page
    assert "No generators installed" in window.empty_page.text()
    window.close()


START_UP = """
import os, sys
from PySide6.QtCore import QObject, Slot
from desktop.ui import app as app_module
from desktop.ui.main_window import MainWindow

seen = {"reported": []}
preload = MainWindow.preload_libraries
NOISE = ("test.noise", "test.noise2")


class Spy(QObject):  # a QObject made on the GUI thread: its slots run there, queued after the window's own
    def __init__(self, window):
        super().__init__(window)
        self.window = window

    @Slot(object)
    def reported(self, name):
        seen["reported"].append(name)

    @Slot(object)
    def preloaded(self, *args):
        seen["torch_after"] = "torch" in sys.modules
        seen["label_after"] = self.window.libraries_label.text()
        seen["devices"] = self.window.devices
        runners = [self.window.engine.runner(g) for g in NOISE]
        seen["workers"] = [None if r.in_process else r.process.pid for r in runners]
        first = self.window.preload_task
        self.window.show_page("test.noise2")  # showing another generator's page warms that one up
        seen["second_started"] = self.window.preload_task is not first
        self.window.preload_task.finished.connect(self.second_preloaded)

    @Slot(object)
    def second_preloaded(self, *args):
        runners = [self.window.engine.runner(g) for g in NOISE]
        seen["workers_then"] = [None if r.in_process else r.process.pid for r in runners]
        self.window.close()


def preload_spy(window):
    seen["shown_without_torch"] = window.isVisible() and "torch" not in sys.modules
    window.show_page("test.noise")  # the page on screen is the one warmed up
    preload(window)
    seen["label"] = window.libraries_label.text()
    window.spy = Spy(window)
    window.preload_task.reported.connect(window.spy.reported)
    window.preload_task.finished.connect(window.spy.preloaded)


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


MainWindow.preload_libraries = preload_spy
rc = app_module.run_app(["studiolo"])
seen["workers_gone"] = all(gone(pid) for pid in seen["workers_then"] if pid is not None)
print(seen)
sys.exit(rc)
"""


@pytest.mark.parametrize("in_process", [False, True], ids=["worker-processes", "in-process"])
def test_the_window_shows_before_torch_is_imported_then_loads_it_in_the_background(installed, in_process):
    settings = Settings.load()
    settings.disabled_plugins = builtin_plugins()  # the test plugin's two torch generators are enough
    settings.first_run_done = True  # a generator's page is shown, not the welcome page (which warms up nothing)
    settings.save()
    env = installed.env()
    env["STUDIOLO_IN_PROCESS"] = "1" if in_process else "0"
    result = run_python(START_UP, env=env)
    assert result.returncode == 0, result.stderr
    seen = eval(result.stdout.strip().splitlines()[-1])
    assert seen["shown_without_torch"] is True
    assert seen["label"].startswith("Loading")
    assert seen["label_after"] == "Libraries ready" and "cpu" in seen["devices"]
    if in_process:  # the old way: imported here, module by module
        assert seen["torch_after"] is True and seen["reported"] == ["torch", "safetensors.torch"]
        assert seen["workers"] == [None, None]
    else:  # the shown generator's worker process started and imported torch (it saw the devices); this process did
        # not. The other generator waits for its page or its first job (a warm process costs hundreds of MB).
        assert seen["torch_after"] is False and seen["reported"] == ["Noise"]
        assert isinstance(seen["workers"][0], int) and seen["workers"][1] is None
        assert seen["second_started"] is True and seen["workers_then"][0] == seen["workers"][0]
        assert isinstance(seen["workers_then"][1], int) and seen["workers_gone"] is True


CLOSE_WHILE_IMPORTING = """
import sys
from desktop.ui import app as app_module
from desktop.ui.main_window import MainWindow
from desktop.ui.preload import start_preload


def preload_blocked(window):  # a library whose import never ends (it reads a pipe nobody writes to)
    window.preload_task = start_preload(["studiolo_blocked_import"], window)
    window.preload_task.reported.connect(window.close)  # a slot of the window: runs on the GUI thread


MainWindow.preload_libraries = preload_blocked
rc = app_module.run_app(["studiolo"])
print("returned", rc)  # not reached: the process ends at once, the import still running
sys.exit(rc)
"""


def test_closing_the_window_while_a_library_imports_ends_the_process_cleanly(installed, tmp_path):
    # A thread destroyed while it runs aborts the process (SIGABRT); the import is not waited for either.
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "studiolo_blocked_import.py").write_text(f"open({str(fifo)!r}).read()\n")
    env = installed.env()
    env["PYTHONPATH"] = os.pathsep.join([str(modules), env.get("PYTHONPATH", "")])
    result = run_python(CLOSE_WHILE_IMPORTING, env=env)
    assert result.returncode == 0, result.stderr
    assert "Destroyed while thread" not in result.stderr
    assert "returned" not in result.stdout


def test_settings_saved_in_the_dialog_apply_to_the_running_engine(make_window, qtbot, tmp_path):
    window = make_window()
    window.open_settings()
    dialog = window.settings_dialog
    dialog.output_edit.setText(str(tmp_path / "elsewhere"))
    dialog.idle_spin.setValue(30)
    dialog.memory_auto_check.setChecked(False)
    dialog.memory_spin.setValue(4096)
    with qtbot.waitSignal(dialog.settings_changed):
        assert dialog.apply()
    engine = window.engine
    assert engine.services.store.root == tmp_path / "elsewhere"
    assert engine.idle_timer.isActive() and engine.cache.budget == 4096 * 1024 * 1024
