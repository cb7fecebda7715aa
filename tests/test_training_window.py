"""The Training window (issue 22) with the third-party toy.line trainer (tests/training_plugin.py) on an in-process
engine: a run started from the window finishes with the trained model's reference shown (and copied); pause then
resume from the window is one run (each step once in the imported model's log); bad input is said in the window
(no files, a bad name, a folder that is not there); the gallery's "Train a LoRA on these…" and View → Train… open
the window of the generator that trains, with the selected files as its data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from training_plugin import install_line, line_data

from desktop.api import param
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.train_job import read_provenance
from desktop.models.resolver import imported_models_dir
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.generator_page import GeneratorPage
from desktop.ui.training import params_using

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def engine(studiolo_site):
    install_line(studiolo_site)
    plugins = PluginManager(Settings(idle_unload_minutes=0)).load()
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.fixture
def window(engine, qtbot):
    page = GeneratorPage(engine, engine.plugins.generator("toy.line"))
    qtbot.addWidget(page)
    window = page.open_training()
    assert window is page.training_window and window.windowTitle() == "Train — Line"
    yield window
    window.shutdown()
    window.close()


@pytest.fixture
def data(tmp_path) -> Path:
    return line_data(tmp_path / "data")


def fill(window, name: str, paths, **values) -> None:
    window.setup.name_edit.setText(name)
    window.setup.data.set_paths(paths)
    window.setup.form().set_values(values)


def run(window, qtbot, button) -> str:
    """Click ``button`` and wait for the window's training to end (and its loss curve read from the run's log);
    its end ("done", "paused", …)."""
    with qtbot.waitSignal(window.log_loaded, timeout=WAIT), \
            qtbot.waitSignal(window.training_ended, timeout=WAIT) as ended:
        button.click()
    return ended.args[0]


def test_a_training_started_from_the_window_finishes_with_its_model_to_use(window, qtbot, data):
    assert window.setup.data.isVisibleTo(window) and "data" not in window.setup.form().field_names()
    fill(window, "line-ui", [data], steps=40, work=1)
    assert run(window, qtbot, window.start_button) == "done"
    assert window.result == "line-ui.safetensors" and window.result_box.isVisibleTo(window)
    assert "Trained line-ui" in window.result_label.text() and "line-ui.safetensors" in window.result_label.text()
    progress = window.progress
    assert (progress.bar.value(), progress.bar.maximum()) == (40, 40)
    assert [step for step, _loss in progress.curve.points] == list(range(1, 41))  # the log's, every step
    assert progress.curve.points[-1][1] < progress.curve.points[0][1]  # it learnt
    assert progress.loss_label.text() == f"{progress.curve.points[-1][1]:.4f}"
    assert progress.estimate_label.text().startswith("Estimate from the warm-up")
    assert not window.use_button.isVisibleTo(window)  # toy.line's params take no trained model: copy it
    window.copy_button.click()
    assert QGuiApplication.clipboard().text() == "line-ui.safetensors"
    assert (imported_models_dir() / "line-ui.safetensors").is_file()
    assert window.start_button.isEnabled() and not window.pause_button.isEnabled()


def test_pause_then_resume_from_the_window_is_one_run(window, engine, qtbot, data):
    fill(window, "line-p", [data], steps=300, checkpoint_every=1000, work=200_000)

    def pause_at_first_step(job_id, done, _total, _message):
        if job_id == window.job_id and done >= 1 and window.pause_button.isEnabled():
            window.pause_button.click()

    engine.job_progressed.connect(pause_at_first_step)
    try:
        with qtbot.waitSignal(window.checked, timeout=WAIT):  # the run's folder looked at after the pause
            assert run(window, qtbot, window.start_button) == "paused"
    finally:
        engine.job_progressed.disconnect(pause_at_first_step)
    step = window.stopped
    assert step is not None and 0 < step < 300
    assert window.resume_button.isVisibleTo(window) and window.restart_button.isVisibleTo(window)
    assert not window.start_button.isEnabled() and f"Paused after step {step}" in window.status.text()
    assert run(window, qtbot, window.resume_button) == "done"
    assert f"Resuming from the checkpoint of step {step}." in window.progress.notes_label.text()
    assert [s for s, _loss in window.progress.curve.points] == list(range(1, 301))  # cut back, then continued
    log = read_provenance(imported_models_dir() / window.result)["log"]
    assert [e["step"] for e in log] == list(range(1, 301))  # one run's log: each step once


def test_bad_input_is_said_in_the_window(window, qtbot, data, tmp_path):
    fill(window, "line-bad", [], steps=5, work=1)  # no files: said before anything is queued
    with qtbot.waitSignal(window.checked, timeout=WAIT):
        window.start_button.click()
    assert window.job_id is None and window.error_label.isVisibleTo(window)
    assert "'data'" in window.error_label.text() and "Add files" in window.error_label.text()
    fill(window, "bad name!", [data])  # the engine's ParamError at submit
    with qtbot.waitSignal(window.checked, timeout=WAIT):
        window.start_button.click()
    assert window.job_id is None and "letters, digits" in window.error_label.text()
    fill(window, "line-bad", [tmp_path / "nowhere"])  # the trainer's, from the job: job_failed
    with qtbot.waitSignal(window.training_ended, timeout=WAIT) as ended:
        window.start_button.click()
    assert ended.args == ["failed"] and "no such file or folder" in window.error_label.text()
    assert window.error_label.isVisibleTo(window) and window.start_button.isEnabled()


def test_params_using_puts_a_trained_model_into_loras_or_the_adapter():
    @dataclass(frozen=True)
    class Image:
        loras: list[str] = param(default_factory=list)

    @dataclass(frozen=True)
    class Text:
        adapter: str = param("")

    assert params_using(Image, {"loras": ["old.safetensors:0.5", "me.safetensors:0.3"]}, "me.safetensors") == {
        "loras": ["old.safetensors:0.5", "me.safetensors:1.0"]}
    assert params_using(Text, {"adapter": ""}, "mine") == {"adapter": "mine"}


def test_the_gallery_and_the_view_menu_open_the_training_window(engine, qtbot, data):
    from desktop.library import NewItem
    from desktop.ui.main_window import GALLERY_PAGE, MainWindow

    main = MainWindow(engine.plugins, engine)
    qtbot.addWidget(main)
    main.show()
    files = [data / "a.csv", data / "b.csv"]
    for path in files:
        engine.library.add(NewItem(generator_id="toy.line", kind="text", path=path, prompt="")).result(timeout=30)
    gallery = main.show_page(GALLERY_PAGE)
    qtbot.waitUntil(lambda: gallery.loader.pending() == 0 and gallery.item_count() == 2, timeout=WAIT)
    gallery.select_rows([0, 1])
    action = gallery.actions_by_name["train"]
    assert action.isEnabled() and action.text() == "Train a LoRA on these…"
    action.trigger()
    page = main.current_page()
    assert isinstance(page, GeneratorPage) and page.generator.id == "toy.line"
    window = page.training_window
    assert window is not None and window.isVisible()
    assert sorted(window.setup.data.paths()) == sorted(str(p) for p in files)
    assert main.train_action.isEnabled() and main.train_action.shortcut().toString() == "Ctrl+Shift+T"
    assert main.open_training_current() is window
    window.shutdown()
    window.close()
