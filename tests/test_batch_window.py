"""The Batch window (issue 20) with the example Markov plugin on an in-process engine: the preview of a template's
first prompts and item count, a bad CSV row shown with its row and column, a small batch run to the end into a
dataset folder (with the estimate from its jobs after), pause stopping after the items under way, and the
not-empty folder's question answered Resume."""

from __future__ import annotations

import json

import pytest
from helpers import install_markov
from PySide6.QtCore import Qt

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.batch.batch_window import format_size
from desktop.ui.generator_page import GeneratorPage

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def engine(studiolo_site, qtbot):
    install_markov(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache(),
                    in_process=True)  # torch is imported here already: no worker process to start
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.fixture
def window(engine, qtbot):
    page = GeneratorPage(engine, engine.plugins.generator("text.markov"))
    qtbot.addWidget(page)
    page.form.set_values({"prompt": "The", "words": 3})
    page.seed_box.setText("5")
    window = page.open_batch()
    qtbot.waitUntil(lambda: not window.preview_timer.isActive(), timeout=WAIT)  # the first preview (empty)
    yield window
    window.shutdown()
    window.close()


def preview(window, qtbot):
    """Work the preview out now (Refresh) and wait for it."""
    with qtbot.waitSignal(window.preview_ready, timeout=WAIT):
        qtbot.mouseClick(window.refresh_button, Qt.MouseButton.LeftButton)


def template(window, text: str, *, count: int = 0, combinatorial: bool = True) -> None:
    window.source_box.setCurrentIndex(window.source_box.findData("template"))
    window.template_edit.setPlainText(text)
    window.combinatorial_box.setChecked(combinatorial)
    window.count_spin.setValue(count)


def run_to_end(window, qtbot):
    with qtbot.waitSignal(window.batch_started, timeout=WAIT) as started:
        qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
    run = started.args[0]
    if not run.is_finished:
        with qtbot.waitSignal(window.batch_finished, timeout=WAIT):
            pass
    return run


def data_rows(out):
    return [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]


def test_the_preview_shows_a_templates_first_prompts_and_item_count(window, qtbot, tmp_path):
    assert window.seed_edit.text() == "5" and window.format_box.currentData() == "jsonl"  # the page's; text kind
    assert not window.image_options.isVisibleTo(window)  # Markov cannot start from a picture
    template(window, "The {sea|lamp|night} {is|was}")
    window.variations_spin.setValue(2)
    assert window.preview_timer.isActive()  # the typing schedules it, after a pause
    with qtbot.waitSignal(window.preview_ready, timeout=WAIT):
        pass
    lines = [window.preview_list.item(i).text() for i in range(window.preview_list.count())]
    assert sorted(line.split(": ", 1)[1] for line in lines) == sorted(
        f"The {a} {b}" for a in ("sea", "lamp", "night") for b in ("is", "was"))
    assert window.item_count == 12 and window.count_label.text().startswith("12 items (6 rows × 2 variations)")
    assert not window.input_error.isVisibleTo(window)
    template(window, "The {a|b|c|d|e|f|g|h|i|j|k|l}")  # more rows than the preview shows
    preview(window, qtbot)
    assert window.preview_list.count() == 10 and window.item_count == 24
    template(window, "The __colours__ sea")  # an unknown wildcard: said under the input, no items
    window.wildcards_edit.setText(str(tmp_path))
    preview(window, qtbot)
    assert window.input_error.isVisibleTo(window) and "__colours__" in window.input_error.text()
    assert "colours.txt" in window.input_error.text() and window.item_count is None


def test_a_bad_csv_row_is_shown_with_its_row_and_column(window, qtbot, tmp_path):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,words\nThe sea,2\nThe lamp,lots\nThe night,3\n")
    window.source_box.setCurrentIndex(window.source_box.findData("prompts"))
    window.prompts_edit.setText(str(prompts))
    preview(window, qtbot)
    error = window.input_error.text()
    assert window.input_error.isVisibleTo(window) and "row 3" in error and "column 'words'" in error
    assert "Skip bad rows" in error and window.item_count == 2  # the good rows, listed
    assert [window.preview_list.item(i).text() for i in range(2)] == ["2: The sea  [words=2]",
                                                                     "4: The night  [words=3]"]
    window.out_edit.setText(str(tmp_path / "out"))
    qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)  # not skipped: refused, nothing runs
    qtbot.waitUntil(lambda: window.run_button.isEnabled() and window.note.property("error") is True, timeout=WAIT)
    assert "row 3" in window.note.text() and window.run is None and window.engine.jobs() == []
    window.skip_bad_box.setChecked(True)
    run = run_to_end(window, qtbot)
    assert run.complete and [r["prompt"] for r in data_rows(tmp_path / "out")] == ["The sea", "The night"]


def test_a_small_batch_runs_to_the_end_into_a_dataset_folder(window, qtbot, tmp_path):
    assert "No recent jobs to estimate from" in window.estimate_label.text()
    template(window, "The {sea|lamp|night}")
    out = tmp_path / "out"
    window.out_edit.setText(str(out))
    preview(window, qtbot)
    progress = []
    window.batch_started.connect(lambda run: run.progressed.connect(lambda d, t: progress.append((d, t))))
    run = run_to_end(window, qtbot)
    assert run.complete and progress[-1] == (3, 3) and window.progress.value() == window.progress.maximum() == 3
    rows = data_rows(out)
    assert sorted(r["prompt"] for r in rows) == ["The lamp", "The night", "The sea"]
    assert [r["seed"] for r in rows] == [5, 6, 7]  # sequential from the page's seed
    assert {"README.md", "data.jsonl"} <= {line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text()
                                           .splitlines()}
    assert "Done: 3 of 3 items; failed: 0" in window.summary_label.text() and str(out) in window.summary_label.text()
    opened = []
    window.url_opener = opened.append
    qtbot.mouseClick(window.open_folder_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(out)]
    # the estimate now goes by these jobs (their recorded generating times, their files in the gallery)
    qtbot.waitUntil(lambda: window.costs is not None, timeout=WAIT)
    assert window.costs.jobs == 3 and window.costs.seconds is not None and window.costs.bytes > 0
    assert window.estimate_label.text().startswith("Estimate for 3 items: about ")
    assert f"and {format_size(window.costs.bytes * 3)} on disk" in window.estimate_label.text()
    from desktop.testing.layout import layout_problems, settle_layouts
    from desktop.ui.screenshots import save_screenshot

    settle_layouts(window)
    print(f"screenshot: {save_screenshot(window, tmp_path / 'batch-window.png')}")
    assert layout_problems(window) == []


def test_pause_stops_after_the_items_under_way_and_a_cancelled_batch_resumes(window, qtbot, tmp_path):
    engine = window.engine
    template(window, "The {a|b|c|d|e|f}")
    out = tmp_path / "out"
    window.out_edit.setText(str(out))
    with qtbot.waitSignal(window.batch_started, timeout=WAIT) as started:
        qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
    run = started.args[0]
    run.item_done.connect(lambda index, _outputs: window.pause_button.click() if index == 0 else None)
    qtbot.waitUntil(lambda: run.paused and run.idle, timeout=WAIT)
    assert window.pause_button.text() == "Resume" and not run.is_finished
    assert 1 <= len(run.done) == len(run.submitted) < 6  # the items under way finished; nothing more started
    assert all(job.state is JobState.DONE for job in engine.jobs()) and len(engine.jobs()) == len(run.done)
    assert window.progress.value() == len(run.done)
    done_before = len(run.done)
    with qtbot.waitSignal(window.batch_finished, timeout=WAIT):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert run.cancelled and "Cancelled" in window.summary_label.text() and "Resume" in window.summary_label.text()
    assert len(data_rows(out)) == done_before
    # Run again into the same folder: asked; Resume runs only what is missing
    qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.folder_box is not None, timeout=WAIT)
    assert set(window.folder_choices) == {"resume", "replace", "cancel"} and str(out) in window.folder_box.text()
    with qtbot.waitSignal(window.batch_started, timeout=WAIT) as started:
        window.folder_choices["resume"].click()
    second = started.args[0]
    if not second.is_finished:
        with qtbot.waitSignal(window.batch_finished, timeout=WAIT):
            pass
    assert second.complete and len(second.submitted) == 6 - done_before and len(engine.jobs()) == 6
    assert sorted(r["id"] for r in data_rows(out)) == [f"{i:06d}-0" for i in range(6)]
    assert "Done: 6 of 6 items" in window.summary_label.text()


def test_the_view_menu_opens_the_batch_window_of_the_generator_on_screen(engine, qtbot):
    from desktop.ui.main_window import MainWindow

    main = MainWindow(engine.plugins, engine)
    qtbot.addWidget(main)
    main.show()
    assert main.batch_action.shortcut().toString() == "Ctrl+Shift+B"
    assert main.batch_action in main.menuBar().actions()[1].menu().actions()  # View
    page = main.show_page("text.markov")
    main.batch_action.trigger()
    assert page.batch_window is not None and page.batch_window.isVisible()
    assert page.batch_window.windowTitle() == "Batch — " + page.generator.name
    page.batch_window.shutdown()
    page.batch_window.close()
