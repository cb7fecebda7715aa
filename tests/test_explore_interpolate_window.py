"""The window's interpolation (issue 18, point 3): "Interpolate…" on the page (and in the View menu) of a generator
that offers it only; bad settings named under the fields before any job; a run through the real engine with the tiny
demo SD model filling the strip (its ends the single runs' pixels), played, cancelled after the first frame, saved as
an animated WebP/GIF, a frame opened and reused; the window fits at both sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import RunGate, install_markov
from PIL import Image
from PySide6.QtCore import Qt

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.explore.interpolate import MAX_FRAMES, MIN_FRAMES, InterpolationSpec
from desktop.explore.strip import FRAME_MS, read_record
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.explore.grid_view import CANCELLED, DONE
from desktop.ui.explore.tiles import TILE
from desktop.ui.generator_page import GeneratorPage
from plugins.image.params import ImageParams

WAIT = 120_000  # ms: a safety net only; every wait ends on a signal
FOX = {"prompt": "a red fox", "steps": 2, "width": 64, "height": 64, "preview_every": 0}


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
        if page.interpolate_window is not None:
            page.interpolate_window.shutdown()
            page.interpolate_window.close()


@pytest.fixture
def fox_window(make_page, tiny_sd):
    """The image page holding FOX, seed 1 and the tiny model, and its interpolation window to prompt "a blue
    whale" and seed 2 in 3 frames."""
    page = make_page("image.diffusers")
    page.reuse(ImageParams(**FOX), seed=1, model=str(tiny_sd))
    window = page.open_interpolation()
    window.setup.end_seed.setText("2")
    window.setup.end_prompt.setText("a blue whale")
    window.setup.frames.setValue(3)
    return page, window


def run_and_wait(window, qtbot):
    """Press Run and wait for every frame to end; the InterpolationRun."""
    with qtbot.waitSignal(window.run_started, timeout=WAIT) as started:
        qtbot.mouseClick(window.setup.run_button, Qt.MouseButton.LeftButton)
    run = started.args[0]
    if not run.is_finished:
        with qtbot.waitSignal(window.run_finished, timeout=WAIT):
            pass
    return run


def single(engine, qtbot, params, seed, model) -> np.ndarray:
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        engine.submit("image.diffusers", params, model=model, seed=seed)
    (output,) = finished.args[1]
    return np.asarray(output.image)


# -- offered where the generator offers it -------------------------------------------------------------------------


def test_interpolate_is_offered_for_the_image_generator_only(make_page, engine, qtbot):
    from desktop.testing.layout import layout_problems, settle_layouts
    from desktop.ui.main_window import MainWindow

    image = make_page("image.diffusers")
    assert image.interpolate_button.isVisibleTo(image) and image.interpolate_button.text() == "Interpolate…"
    markov = make_page("text.markov")
    assert not markov.interpolate_button.isVisibleTo(markov) and markov.grid_button.isVisibleTo(markov)
    messages = []
    markov.message.connect(lambda text, error: messages.append((text, error)))
    assert markov.open_interpolation() is None and markov.interpolate_window is None
    assert messages == [("Markov chain offers no interpolation.", True)] or "offers no interpolation" in \
        messages[0][0]
    qtbot.mouseClick(image.interpolate_button, Qt.MouseButton.LeftButton)
    assert image.interpolate_window is not None and image.interpolate_window.isVisible()

    window = MainWindow(engine.plugins, engine)
    qtbot.addWidget(window)
    window.show()
    action = window.interpolate_action
    assert action.shortcut().toString() == "Ctrl+Shift+I"
    page = window.show_page("text.markov")
    assert not action.isEnabled() and "offers interpolation" in action.toolTip()
    assert window.open_interpolation_current() is None
    page = window.show_page("image.diffusers")
    assert action.isEnabled() and page.interpolate_button.isVisible()
    window.resize(900, 600)  # the page still fits with its new button
    settle_layouts(window)
    assert layout_problems(window) == []
    action.trigger()
    assert page.interpolate_window is not None and page.interpolate_window.isVisible()
    page.interpolate_window.shutdown()
    page.interpolate_window.close()
    window.close()


# -- bad settings: named, before any job ------------------------------------------------------------------------


def test_a_setting_that_cannot_be_interpolated_is_named_under_the_fields_before_any_job(fox_window, engine, qtbot):
    page, window = fox_window
    setup = window.setup
    assert setup.run_button.isEnabled() and not setup.error.isVisibleTo(window)
    assert setup.count_label.text().startswith("3 frames")
    assert "a red fox" in setup.start_label.text() and "seed 1" in setup.start_label.text()
    cases = [
        ("width=128", "width", "same size (64×64 at the start, 128×64 at the end)"),
        ("steps=3", "steps", "only the seed and the prompt can change"),
        ("colour=red", "colour", "no such parameter"),
        ('negative_prompt="blurry', "end parameters", "cannot be read"),
        ("batch_size=2", "batch_size", "one image"),
    ]
    for words, field, reason in cases:
        setup.end_params.setText(words)
        text = setup.error.text()
        assert setup.error.isVisibleTo(window) and f"'{field}'" in text, (words, text)
        assert reason.lower() in text.lower(), (words, text)
        assert setup.end_params.property("invalid") is True and not setup.run_button.isEnabled()
        setup.request_run()  # Enter on the form: nothing runs
    assert engine.jobs() == [] and window.run is None
    setup.end_params.setText('prompt="a green owl, at dusk"')  # what may change: fine again
    assert setup.run_button.isEnabled() and not setup.error.isVisibleTo(window)
    assert setup.end_params.property("invalid") is False
    # frames: only 2 to 120 can be chosen
    assert (setup.frames.minimum(), setup.frames.maximum()) == (MIN_FRAMES, MAX_FRAMES)
    setup.frames.setValue(MAX_FRAMES + 50)
    assert setup.frames.value() == MAX_FRAMES and "2 to 120" in setup.frames.toolTip()
    setup.frames.setValue(1)
    assert setup.frames.value() == MIN_FRAMES and setup.run_button.isEnabled()
    # the engine is never asked for a plan refused another way (a spec given directly)
    bad = InterpolationSpec("image.diffusers", FOX, {**FOX, "height": 128}, 1, 2, 3, setup.start[1])
    assert window.start(bad) is None and "same size" in window.note.text() and engine.jobs() == []
    # the page's own form is checked too: a seed out of range is named, then fixed by reading the page again
    page.seed_box.setText("9" * 19)
    qtbot.mouseClick(setup.page_button, Qt.MouseButton.LeftButton)
    assert "'seed'" in setup.error.text() and not setup.run_button.isEnabled()
    page.seed_box.setText("1")
    qtbot.mouseClick(setup.page_button, Qt.MouseButton.LeftButton)
    assert setup.run_button.isEnabled()
    assert engine.jobs() == []


# -- a run through the real engine -----------------------------------------------------------------------------


def test_a_3_frame_run_fills_the_strip_its_ends_the_single_runs_then_plays_saves_opens_and_reuses(
        fox_window, engine, qtbot, tiny_sd, tmp_path):
    from desktop.testing.layout import layout_problems, settle_layouts
    from desktop.ui.screenshots import save_screenshot

    page, window = fox_window
    model = str(tiny_sd)
    run = run_and_wait(window, qtbot)
    view = window.view
    assert run.total == 3 and not run.errors and view.strip.count() == 3
    assert {k: s.status for k, s in view.states.items()} == {0: DONE, 1: DONE, 2: DONE}
    assert view.progress.value() == 3 and view.save_button.isEnabled() and not view.cancel_button.isEnabled()
    assert window.setup.run_button.isEnabled()
    qtbot.waitUntil(lambda: all(s.picture is not None for s in view.states.values()), timeout=WAIT)
    for k in range(3):
        icon = view.strip.item(k).icon()
        assert not icon.isNull() and view.strip.item(k).text() == str(k + 1)
        picture = view.states[k].picture
        assert picture.width() == TILE  # 64 px enlarged crisply to the tile
        source = run.results[(k, 0, 0)][0].image.convert("RGBA")
        assert picture.toImage().pixelColor(0, 0).getRgb() == source.getpixel((0, 0))
    frames = [np.asarray(run.results[(k, 0, 0)][0].image) for k in range(3)]
    assert np.array_equal(frames[0], single(engine, qtbot, FOX, 1, model))  # pixel-identical ends
    assert np.array_equal(frames[2], single(engine, qtbot, {**FOX, "prompt": "a blue whale"}, 2, model))
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[1], frames[2])

    # Play cycles the preview through the frames (the test drives the timer)
    assert view.strip.currentRow() >= 0 and not view.preview.pixmap().isNull()
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    assert view.play_timer.isActive() and view.play_button.text() == "Stop"
    view.strip.setCurrentRow(1)
    rows = []
    for _ in range(3):
        view.play_timer.timeout.emit()
        rows.append(view.strip.currentRow())
        assert view.preview.pixmap().cacheKey() == view.states[rows[-1]].picture.cacheKey()
    assert rows == [2, 0, 1]
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    assert not view.play_timer.isActive()

    # saved as an animated WebP (and a strip PNG) that records every frame
    for name, n_frames in (("frames.webp", 3), ("frames.png", 1)):
        out = tmp_path / name
        with qtbot.waitSignal(window.strip_saved, timeout=WAIT):
            assert window.save(out)
        with Image.open(out) as saved:
            assert getattr(saved, "n_frames", 1) == n_frames
            record = read_record(saved)
        assert [f["seed"] for f in record["frames"]] == [c.seed for c in run.cells] and record["model"] == model
    assert not window.save(tmp_path / "frames.jpg") and "not frames.jpg" in window.note.text()

    # a frame opens its saved file (Enter or double-click) and gives its parameters back to the page
    opened = []
    view.url_opener = lambda url: opened.append(Path(url.toLocalFile())) or True
    view.strip.setCurrentRow(2)
    view.strip.setFocus()
    qtbot.keyClick(view.strip, Qt.Key.Key_Return)
    assert opened == [run.saved[(2, 0, 0)][0]] and opened[0].is_file()
    page.seed_box.setText("")
    view.strip.setCurrentRow(1)
    view.reuse_action.trigger()
    params, reused_model, seed = page.grid_base()
    assert (params["prompt"], params["prompt_to"], params["prompt_mix"]) == ("a red fox", "a blue whale", 0.5)
    assert (params["variation_seed"], params["variation_strength"]) == (2, 0.5)
    assert seed == 1 and reused_model == model and "frame 2" in window.note.text()

    # the window fits, with a full strip, at both sizes
    for size in ((900, 600), (1600, 1000)):
        window.resize(*size)
        settle_layouts(window)
        print(f"screenshot: {save_screenshot(window, tmp_path / f'interpolate-{size[0]}x{size[1]}.png')}")
        assert (window.width(), window.height()) == size
        assert layout_problems(window) == []


def test_cancelling_after_the_first_frame_marks_the_rest_and_saves_them_grey(
        fox_window, engine, qtbot, monkeypatch, tmp_path):
    gate = RunGate(monkeypatch)  # the second cell waits until the first one's cancel has landed
    page, window = fox_window
    window.setup.frames.setValue(4)
    with qtbot.waitSignal(window.run_started, timeout=WAIT) as started:
        qtbot.mouseClick(window.setup.run_button, Qt.MouseButton.LeftButton)
    run = started.args[0]
    view = window.view
    assert not window.setup.run_button.isEnabled()  # one run at a time
    assert view.strip.item(3).text() == "4 · waiting"
    run.cell_done.connect(lambda *_: (view.cancel_button.click(), gate.release()))
    with qtbot.waitSignal(window.run_finished, timeout=WAIT):
        pass
    assert view.states[0].status == DONE and list(run.results) == [(0, 0, 0)]
    for k in (1, 2, 3):
        assert view.states[k].status == CANCELLED and view.strip.item(k).text() == f"{k + 1} · cancelled"
    assert "3 cancelled" in view.status.text() and window.setup.run_button.isEnabled()
    out = tmp_path / "frames.webp"
    with qtbot.waitSignal(window.strip_saved, timeout=WAIT):
        assert window.save(out)
    with Image.open(out) as saved:  # one frame per planned frame: the frames not made are grey, each numbered
        assert len(read_record(saved)["frames"]) == 4 and saved.n_frames == 4
        for n in range(saved.n_frames):
            saved.seek(n)
            saved.load()
            assert saved.info["duration"] == FRAME_MS
            corner = saved.convert("RGB").getpixel((saved.width - 1, saved.height - 1))
            assert (corner == (160, 160, 160)) == (n > 0)  # the frames not made: grey
