"""The window's grids (issue 18): the setup checks axes as they are typed, asks before a big grid, and the grid
view fills through the real engine with the demo models of each kind (text, image, audio); cancel, open, reuse; a
saved grid opens again and runs again; a saved grid that is damaged or for another generator is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import RunGate, install_markov, run_cli
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QMessageBox, QToolButton

from desktop.api import ParamError, from_json
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.explore.axes import parse_axis
from desktop.explore.export import GRID_CHUNK, GridFileError, grid_html, read_grid_record, read_grid_spec
from desktop.explore.grid import CONFIRM_JOBS, GridSpec, expand
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.explore.grid_view import CANCELLED, DONE, INDEX_ROLE
from desktop.ui.explore.tiles import TILE, WAVE_WIDTH
from desktop.ui.generator_page import GeneratorPage

WAIT = 120_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def engine(studiolo_site, qtbot):
    install_markov(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache(),
                    in_process=True)  # torch is imported here already: no worker process to start
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.fixture
def make_page(engine, qtbot):
    pages = []

    def make(generator_id: str) -> GeneratorPage:
        page = GeneratorPage(engine, engine.plugins.generator(generator_id))
        qtbot.addWidget(page)
        page.show()
        pages.append(page)
        return page

    yield make
    for page in pages:
        if page.grid_window is not None:
            page.grid_window.shutdown()
            page.grid_window.close()


def run_and_wait(window, qtbot, spec=None):
    """Press Run (or run ``spec``) and wait for every cell to end; the GridRun."""
    with qtbot.waitSignal(window.grid_started, timeout=WAIT) as started:
        if spec is None:
            qtbot.mouseClick(window.setup.run_button, Qt.MouseButton.LeftButton)
        else:
            window.run_grid(spec)
    run = started.args[0]
    if not run.is_finished:
        with qtbot.waitSignal(window.grid_finished, timeout=WAIT):
            pass
    return run


def shot(window, path: Path) -> None:
    """A screenshot of ``window`` (for people; its path is printed)."""
    from desktop.testing.layout import settle_layouts
    from desktop.ui.screenshots import save_screenshot

    settle_layouts(window)
    print(f"screenshot: {save_screenshot(window, path)}")


def markov_window(make_page, x="3,6", y="1,2"):
    page = make_page("text.markov")
    page.form.set_values({"prompt": "The", "temperature": 0.5})
    page.seed_box.setText("7")
    window = page.open_grid()
    window.setup.set_axis(0, "words", x)
    window.setup.set_axis(1, "seed", y)
    return page, window


# -- the setup -----------------------------------------------------------------------------------------------------


def test_the_setup_checks_an_axis_as_it_is_typed_and_names_the_bad_value(make_page, qtbot):
    page = make_page("text.markov")
    window = page.open_grid()
    setup = window.setup
    assert window.isVisible() and setup.rows[0].field.currentData() == "prompt"  # x: the first param, no values
    assert not setup.run_button.isEnabled()
    setup.set_axis(0, "words", "3,0")
    error = setup.rows[0].error
    assert error.isVisibleTo(window) and "'words': 0" in error.text() and "between 1 and 5000" in error.text()
    assert setup.rows[0].values.property("invalid") is True and not setup.run_button.isEnabled()
    assert setup.rows[1].field.isEnabled() and not setup.rows[1].values.isEnabled()  # y: none chosen yet
    assert not setup.rows[2].field.isEnabled()  # z once y is chosen
    qtbot.keyClick(setup.rows[0].values, Qt.Key.Key_Backspace)  # "3," : an empty value, named
    assert "empty value" in error.text() and not setup.run_button.isEnabled()
    qtbot.keyClicks(setup.rows[0].values, "6")
    assert not error.isVisibleTo(window) and setup.rows[0].values.property("invalid") is False
    assert setup.run_button.isEnabled() and setup.count_label.text().startswith("2 jobs")
    setup.set_axis(1, "words", "1,2")  # a field twice
    assert "already an axis" in setup.rows[1].error.text() and not setup.run_button.isEnabled()
    setup.set_axis(1, "seed", "1-50")
    setup.set_axis(2, "temperature", "0.1-2.0 (+0.1)")  # 2 × 50 × 20 = 2000 jobs: refused
    assert "2000 jobs" in setup.count_label.text() and "at most 1000" in setup.count_label.text()
    assert not setup.run_button.isEnabled()
    setup.set_axis(2, "temperature", "0.5,1")
    assert setup.count_label.text().startswith("200 jobs (2 × 50 × 2)") and "confirm" in setup.count_label.text()
    assert setup.run_button.isEnabled()


def test_a_grid_past_the_confirmation_threshold_runs_only_once_confirmed(make_page, engine, qtbot):
    page, window = markov_window(make_page, x="1-11", y="1-10")
    assert 11 * 10 > CONFIRM_JOBS
    started = []
    window.grid_started.connect(started.append)
    qtbot.mouseClick(window.setup.run_button, Qt.MouseButton.LeftButton)
    box = window.setup.confirm_box
    assert isinstance(box, QMessageBox) and box.isVisible() and "110 jobs" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert started == [] and engine.jobs() == [] and window.setup.status.text() == "Not run."
    qtbot.mouseClick(window.setup.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.grid_started, timeout=WAIT):
        window.setup.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    run = started[0]
    assert run.total == 110 and len(engine.jobs()) == 110
    qtbot.mouseClick(window.view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: run.is_finished, timeout=WAIT)


# -- 2×2 grids through the real engine -------------------------------------------------------------------------------


def check_filled(window, run):
    view = window.view
    assert view.table.columnCount() == 2 and view.table.rowCount() == 2
    axes = run.spec.axes
    assert [view.table.horizontalHeaderItem(i).text() for i in range(2)] == \
        [f"{axes[0].label}: {v}" for v in axes[0].value_labels]
    assert [view.table.verticalHeaderItem(i).text() for i in range(2)] == \
        [f"{axes[1].label}: {v}" for v in axes[1].value_labels]
    assert {i: s.status for i, s in view.states.items()} == {c.index: DONE for c in run.cells}
    for cell in run.cells:
        x, y, _ = cell.index
        assert view.table.item(y, x).data(INDEX_ROLE) == cell.index
        assert view.states[cell.index].paths == run.saved[cell.index] and run.saved[cell.index][0].is_file()
    assert view.progress.value() == 4 and view.save_button.isEnabled() and not view.cancel_button.isEnabled()


def test_a_2x2_text_grid_fills_the_view_with_excerpts_from_the_page_s_params(make_page, qtbot):
    page, window = markov_window(make_page)
    run = run_and_wait(window, qtbot)
    check_filled(window, run)
    assert run.spec.base_params["prompt"] == "The" and run.spec.base_params["temperature"] == 0.5
    assert run.spec.model == page.model_ref() == "demo" and run.spec.seed == 7  # the page's model and seed
    for cell in run.cells:
        x, y, _ = cell.index
        text = run.results[cell.index][0].text
        assert window.view.table.item(y, x).text() == text and len(text.split()) == 1 + cell.params["words"]


def test_a_2x2_image_grid_fills_the_view_with_pictures_and_saves_as_a_png_that_runs_again(make_page, qtbot, tiny_sd,
                                                                                          tmp_path):
    page = make_page("image.diffusers")
    generator = page.generator
    base = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 1, "preview_every": 0}
    spec = GridSpec(generator.id, (parse_axis(generator, "seed", "1,2"), parse_axis(generator, "guidance_scale",
                                                                                       "1|7.5")),
                    base, str(tiny_sd), None)
    window = page.open_grid()
    run = run_and_wait(window, qtbot, spec)
    check_filled(window, run)
    view = window.view
    qtbot.waitUntil(lambda: all(s.picture is not None for s in view.states.values()), timeout=WAIT)
    for cell in run.cells:
        x, y, _ = cell.index
        picture = view.table.item(y, x).data(Qt.ItemDataRole.DecorationRole)
        assert isinstance(picture, QPixmap) and picture.width() == TILE  # 64 px enlarged crisply to the tile
        source = run.results[cell.index][0].image.convert("RGBA")
        assert picture.toImage().pixelColor(0, 0).getRgb() == source.getpixel((0, 0))
    out = tmp_path / "grid.png"
    with qtbot.waitSignal(window.grid_saved, timeout=WAIT):
        assert window.save(out)
    with Image.open(out) as grid:
        assert grid.size[0] > 2 * 64 and json.loads(grid.info[GRID_CHUNK])["generator"] == generator.id
    with qtbot.waitSignal(window.grid_loaded, timeout=WAIT) as loaded:
        window.open_file(out)
    assert loaded.args[0] == spec
    shot(window, tmp_path / "image-grid.png")
    # a cell's own file reproduces it: its metadata, run again as a single job, makes the same pixels
    cell = run.cells[3]
    (saved,) = run.saved[cell.index]
    reuse = generator.reuse_from_file(saved)
    assert reuse.seed == cell.seed and reuse.params.guidance_scale == 7.5
    with qtbot.waitSignal(page.engine.job_finished, timeout=WAIT) as again:
        page.engine.submit(generator.id, reuse.params, model=str(tiny_sd), seed=reuse.seed)
    assert np.array_equal(np.asarray(again.args[1][0].image), np.asarray(run.results[cell.index][0].image))


def test_a_2x2_audio_grid_fills_the_view_with_waveforms_that_play(make_page, qtbot, tiny_vits, tmp_path):
    page = make_page("audio.speech")
    generator = page.generator
    spec = GridSpec(generator.id, (parse_axis(generator, "speaking_rate", "1,2"),
                                   parse_axis(generator, "noise_scale", "0.1|0.9")),
                    {"text": "Hi."}, str(tiny_vits), 3)
    window = page.open_grid()
    run = run_and_wait(window, qtbot, spec)
    check_filled(window, run)
    view = window.view
    qtbot.waitUntil(lambda: all(s.picture is not None for s in view.states.values()), timeout=WAIT)
    played = []
    view.player.play = lambda path: played.append(path) or True
    for cell in run.cells:
        x, y, _ = cell.index
        box = view.table.cellWidget(y, x)
        wave = box.findChild(QLabel, "waveform")
        assert not wave.pixmap().isNull() and wave.pixmap().width() == WAVE_WIDTH
        play = box.findChild(QToolButton, "play")
        qtbot.mouseClick(play, Qt.MouseButton.LeftButton)
    assert played == [run.saved[c.index][0] for c in run.cells]
    out = tmp_path / "grid.html"
    with qtbot.waitSignal(window.grid_saved, timeout=WAIT):
        assert window.save(out)
    page_html = out.read_text()
    assert page_html.count("<audio controls") == 4 and run.saved[(1, 1, 0)][0].as_uri() in page_html
    assert read_grid_spec(out, generator) == spec
    shot(window, tmp_path / "audio-grid.png")


def test_cancelling_mid_grid_marks_the_cells_not_made_cancelled(make_page, qtbot, monkeypatch):
    gate = RunGate(monkeypatch)  # the second cell waits until the first one's cancel has landed
    page, window = markov_window(make_page)
    view = window.view
    with qtbot.waitSignal(window.grid_started, timeout=WAIT) as started:
        qtbot.mouseClick(window.setup.run_button, Qt.MouseButton.LeftButton)
    run = started.args[0]
    assert not window.setup.run_button.isEnabled()  # one grid at a time
    window.run_grid(run.spec)
    assert "A grid is running" in window.setup.status.text() and window.run is run
    assert {s.status for s in view.states.values()} == {"pending"} or run.ended
    assert view.table.item(1, 1).text() == "Waiting…"
    run.cell_done.connect(lambda *_: (view.cancel_button.click(), gate.release()))
    with qtbot.waitSignal(window.grid_finished, timeout=WAIT):
        pass
    assert view.states[(0, 0, 0)].status == DONE
    for index in [(1, 0, 0), (0, 1, 0), (1, 1, 0)]:
        assert view.states[index].status == CANCELLED
        assert view.table.item(index[1], index[0]).text() == "Cancelled"
    assert "3 cancelled" in view.status.text() and window.setup.run_button.isEnabled()


def test_a_cell_opens_its_file_and_gives_its_params_back_to_the_page(make_page, qtbot):
    page, window = markov_window(make_page)
    run = run_and_wait(window, qtbot)
    view = window.view
    opened = []
    view.url_opener = lambda url: opened.append(Path(url.toLocalFile())) or True
    view.select_cell((1, 1, 0))
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened == [run.saved[(1, 1, 0)][0]]
    page.form.set_values({"words": 40})
    page.seed_box.setText("")
    view.select_cell((1, 0, 0))  # words 6, seed 1
    view.reuse_action.trigger()
    assert page.form.params().words == 6 and page.form.params().prompt == "The" and page.seed_box.text() == "1"
    assert "(Words 6, Seed 1)" in window.note.text()


def test_a_saved_text_grid_opens_in_the_setup_and_runs_again(make_page, qtbot, tmp_path):
    page, window = markov_window(make_page)
    run = run_and_wait(window, qtbot)
    for name in ("grid.md", "grid.html"):
        with qtbot.waitSignal(window.grid_saved, timeout=WAIT):
            assert window.save(tmp_path / name)
    other = make_page("text.markov")  # a fresh page, with other params
    fresh = other.open_grid()
    with qtbot.waitSignal(fresh.grid_loaded, timeout=WAIT) as loaded:
        fresh.open_file(tmp_path / "grid.html")
    assert loaded.args[0] == run.spec
    assert fresh.setup.rows[0].values.text() == "3,6" and fresh.setup.rows[1].field.currentData() == "seed"
    again = run_and_wait(fresh, qtbot)
    assert [c.params for c in again.cells] == [c.params for c in run.cells]
    assert [r[0].text for r in again.results.values()] == [r[0].text for r in run.results.values()]
    with qtbot.waitSignal(fresh.grid_loaded, timeout=WAIT) as loaded:
        fresh.open_file(tmp_path / "grid.md")
    assert loaded.args[0] == run.spec


def test_the_window_menu_opens_the_grid_of_the_generator_on_screen(make_page, engine, qtbot):
    from desktop.ui.main_window import MainWindow

    window = MainWindow(engine.plugins, engine)
    qtbot.addWidget(window)
    window.show()
    assert window.grid_action.shortcut().toString() == "Ctrl+Shift+G"
    page = window.show_page("text.markov")
    assert page.grid_button.isVisible()
    window.grid_action.trigger()
    assert page.grid_window is not None and page.grid_window.isVisible()
    page.grid_window.shutdown()
    page.grid_window.close()


# -- saved grids read back: hostile files ------------------------------------------------------------------------


@pytest.fixture
def markov(studiolo_site):
    install_markov(studiolo_site)
    return PluginManager(Settings()).load().generator("text.markov")


def png_with(path: Path, text: str | None) -> Path:
    info = PngInfo()
    if text is not None:
        info.add_text(GRID_CHUNK, text)
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    return path


def record(**changes):
    base = {"generator": "text.markov", "axes": [{"field": "words", "values": "1,2"}], "params": {}, "model": None,
            "seed": 3}
    return json.dumps({**base, **changes})


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not JSON"),
    ("[]", "not a JSON object"),
    (record(generator=""), "names no generator"),
    (record(axes=[]), "1 to 3 axes"),
    (record(axes=[{"field": "words"}] * 4), "1 to 3 axes"),
    (record(axes=[{"field": 3, "values": "1"}]), "an axis is not"),
    (record(params=[1]), "params are not a JSON object"),
    (record(seed=True), "seed is not a whole number"),
    (record(model=5), "model is not text"),
    ("[" * 100_000, "is not JSON"),
    ('"' + "a" * 300_000 + '"', "too long"),
])
def test_a_damaged_grid_record_is_refused_naming_the_file_and_the_problem(tmp_path, content, message):
    path = png_with(tmp_path / "g.png", content)
    with pytest.raises(GridFileError, match=message) as caught:
        read_grid_record(path)
    assert "g.png" in str(caught.value) and caught.value.hint


def test_files_that_hold_no_grid_are_refused_clearly(tmp_path):
    cases = {
        "plain.png": png_with(tmp_path / "plain.png", None),
        "cut.png": tmp_path / "cut.png",
        "notes.md": tmp_path / "notes.md",
        "binary.md": tmp_path / "binary.md",
        "page.html": tmp_path / "page.html",
    }
    whole = png_with(tmp_path / "whole.png", record()).read_bytes()
    cases["cut.png"].write_bytes(whole[:20])  # the signature and half a header
    cases["notes.md"].write_text("---\ntitle: notes\n---\n# nothing\n")
    cases["binary.md"].write_bytes(b"\xff\xfe\x00 not text" * 10)
    cases["page.html"].write_text('<html><script id="other">{}</script></html>')
    expected = {"plain.png": "holds no Studiolo grid", "cut.png": "not a readable PNG", "notes.md": "holds no",
                "binary.md": "not UTF-8", "page.html": "holds no"}
    for name, path in cases.items():
        with pytest.raises(GridFileError, match=expected[name]):
            read_grid_record(path)
    with pytest.raises(GridFileError, match="There is no file"):
        read_grid_record(tmp_path / "missing.png")
    with pytest.raises(GridFileError, match="Cannot read"):
        read_grid_record(tmp_path)


def test_a_grid_for_another_generator_or_with_values_it_refuses_is_named(tmp_path, markov):
    other = png_with(tmp_path / "other.png", record(generator="image.diffusers"))
    with pytest.raises(GridFileError, match="made with image.diffusers, not text.markov") as caught:
        read_grid_spec(other, markov)
    assert "image.diffusers" in caught.value.hint
    with pytest.raises(ParamError, match="'words': 0"):
        read_grid_spec(png_with(tmp_path / "bad.png", record(axes=[{"field": "words", "values": "0"}])), markov)
    with pytest.raises(ParamError, match="'colour'"):
        read_grid_spec(png_with(tmp_path / "bad2.png", record(params={"colour": "red"})), markov)


def test_an_html_page_keeps_a_record_with_markup_in_it_intact(tmp_path, markov):
    prompt = 'a </script><script>alert(1)</script> & "quotes" é'
    spec = GridSpec("text.markov", (parse_axis(markov, "prompt", f"{prompt}|b"),), {"words": 2}, "demo", 5)
    page = grid_html(spec, expand(spec, markov), {(0, 0, 0): prompt})
    assert page.count("</script>") == 1  # the record's own end only
    path = tmp_path / "g.html"
    path.write_text(page)
    assert read_grid_spec(path, markov) == spec
    assert from_json(markov.Params, read_grid_record(path)["params"]).words == 2


def test_the_cli_runs_a_saved_grid_again(studiolo_site, tmp_path):
    install_markov(studiolo_site)
    env = studiolo_site.env()
    first, again = tmp_path / "first.md", tmp_path / "again.md"
    result = run_cli("explore", "grid", "text.markov", "--axis", "words=2,3", "--axis", "seed=4|5",
                     "--param", "prompt=The", "--output", str(first), env=env)
    assert result.returncode == 0, result.stderr
    result = run_cli("explore", "grid", "--from", str(first), "--output", str(again), env=env)
    assert result.returncode == 0, result.stderr
    assert again.read_text() == first.read_text()  # the same grid: the same record, the same texts
    result = run_cli("explore", "grid", "--from", str(tmp_path / "nothing.md"), "--output", str(again), env=env)
    assert result.returncode == 2 and "There is no file" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("size", [(900, 600), (1600, 1000)])
def test_the_grid_window_fits_with_a_z_axis_and_no_cut_text(make_page, qtbot, tmp_path, size):
    from desktop.testing.layout import layout_problems, settle_layouts
    from desktop.ui.screenshots import save_screenshot

    page, window = markov_window(make_page, x="2,4", y="1,2")
    window.setup.set_axis(2, "temperature", "0.5,1.5")
    run = run_and_wait(window, qtbot)
    assert window.view.z_combo.isVisible() and window.view.z_label.text() == "Temperature"
    window.view.z_combo.setCurrentIndex(1)  # the second z value's table
    x, y, _ = run.cells[-1].index
    assert window.view.table.item(y, x).data(INDEX_ROLE) == (1, 1, 1)
    assert window.view.table.item(y, x).text() == run.results[(1, 1, 1)][0].text
    window.resize(*size)
    settle_layouts(window)
    save_screenshot(window, tmp_path / f"grid-{size[0]}x{size[1]}.png")
    print(f"screenshot in {tmp_path}")
    assert (window.width(), window.height()) == size
    assert layout_problems(window) == []
