"""The Activity dock with a real engine (worker processes) and model-less test generators of every kind: newest
first, generators' names, a preview of every kind (a waveform for audio), progress kept at cancel, six rows at
900×600, hidden and shown from the View menu."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeySequence
from windows import open_window

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.activity import VISIBLE_ROWS, ActivityView
from desktop.ui.thumbnails import WAVE

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal or a condition

PLUGIN = '''
import threading
from dataclasses import dataclass

import numpy as np

from desktop.api import AudioOutput, Generator, ImageOutput, TextOutput, hookimpl, param


@dataclass(frozen=True)
class Params:
    prompt: str = param("once upon a time", prompt=True)


class Model_less(Generator):
    kind, Params, default_model = "text", Params, None

    def load(self, model_path, device, options):
        return None


class Hum(Model_less):
    id, name, kind = "test.hum", "Low hum", "audio"

    def generate(self, handle, params, ctx):
        t = np.arange(4000) / 8000.0
        return [AudioOutput(samples=0.8 * np.sin(2 * np.pi * 3 * t), sample_rate=8000)]


class Tile(Model_less):
    id, name, kind = "test.tile", "Blue tile", "image"

    def generate(self, handle, params, ctx):
        from PIL import Image

        return [ImageOutput(image=Image.new("RGB", (16, 8), (20, 40, 200)))]


class Echo(Model_less):
    id, name = "test.echo", "Echo"

    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.prompt)]


class Halfway(Model_less):
    """Reports 3 of 8 steps, then waits for the cancel (as a long step that checks ctx.cancelled would)."""
    id, name = "test.halfway", "Halfway"

    def generate(self, handle, params, ctx):
        ctx.progress(3, 8)
        while not ctx.cancelled:
            threading.Event().wait(0.01)
        ctx.raise_if_cancelled()


@hookimpl
def register_generators(register):
    for generator in (Hum(), Tile(), Echo(), Halfway()):
        register(generator)
'''

STORY = "once upon a time there was a tiny studio in the hills above a town far away from the sea"


@pytest.fixture
def installed(studiolo_site):
    studiolo_site.install("studiolo-test-activity", modules={"studiolo_test_activity": PLUGIN},
                          entry_points={"activity": "studiolo_test_activity"})
    return studiolo_site


@pytest.fixture
def make_view(installed, qtbot):
    """An ActivityView on its own engine (saving to the test's library), shut down at teardown."""
    engines: list[Engine] = []

    def make() -> tuple[ActivityView, Engine]:
        engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache())
        engines.append(engine)
        view = ActivityView(engine)
        qtbot.addWidget(view)
        return view, engine

    yield make
    for engine in engines:
        assert engine.shutdown(timeout=30)


@pytest.fixture
def window(installed, qtbot):
    window = open_window(qtbot)
    yield window
    if window.isVisible():
        window.close()


def test_rows_are_newest_first_and_name_the_generator(make_view, qtbot):
    view, engine = make_view()
    engine.set_paused("test.echo", True)
    echoes = [engine.submit("test.echo", {"prompt": f"job {i}"}) for i in range(3)]
    engine.set_paused("test.hum", True)
    hum = engine.submit("test.hum", {})
    assert view.job_ids() == [hum.id, echoes[2].id, echoes[1].id, echoes[0].id]
    assert [view.table.item(r, 0).text() for r in range(4)] == ["Low hum", "Echo", "Echo", "Echo"]
    assert view.table.item(0, 0).toolTip() == "test.hum"

    view.select(echoes[2].id)
    view.buttons["up"].click()  # run it sooner: the queue is 0, 2, 1; newest first shows 1, 2, 0
    assert [j.id for j in engine.waiting("test.echo")] == [echoes[0].id, echoes[2].id, echoes[1].id]
    assert view.job_ids() == [hum.id, echoes[1].id, echoes[2].id, echoes[0].id]
    assert [view.table.item(r, 1).text() for r in range(1, 4)] == ["job 1", "job 2", "job 0"]
    assert [view.table.item(r, 0).text() for r in range(1, 4)] == ["Echo"] * 3

    with qtbot.waitSignals([engine.job_finished] * 4, timeout=WAIT):
        engine.set_paused("test.echo", False)
        engine.set_paused("test.hum", False)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        again = engine.submit("test.echo", {})
    assert view.job_ids()[0] == again.id  # the newest at the top, above the finished ones


def test_every_kind_has_a_preview(make_view, qtbot):
    view, engine = make_view()
    with qtbot.waitSignals([engine.job_finished] * 3, timeout=WAIT):
        hum = engine.submit("test.hum", {})
        tile = engine.submit("test.tile", {})
        echo = engine.submit("test.echo", {"prompt": STORY})

    wave = view.table.item(view.row_of(hum.id), 4).icon().pixmap(view.table.iconSize())
    assert not wave.isNull() and wave.width() > wave.height()  # a waveform, wide
    image = wave.toImage()
    assert any(QColor(image.pixel(x, y)) == WAVE for x in range(image.width()) for y in range(image.height()))
    assert "second" in view.table.item(view.row_of(hum.id), 4).toolTip()

    assert not view.table.item(view.row_of(tile.id), 4).icon().isNull()

    words = view.table.item(view.row_of(echo.id), 4).text()
    assert words.startswith("once upon a time there was") and words.endswith("…") and len(words) < len(STORY)
    assert STORY.startswith(words[:-1].rstrip())  # cut at a word


def test_a_cancelled_job_keeps_the_progress_it_reached(make_view, qtbot):
    view, engine = make_view()
    with qtbot.waitSignal(engine.job_progressed, timeout=WAIT):
        job = engine.submit("test.halfway", {})
    bar = view.table.cellWidget(view.row_of(job.id), 3)
    assert (bar.value(), bar.maximum()) == (3, 8)
    with qtbot.waitSignal(engine.job_cancelled, timeout=WAIT):
        engine.cancel(job.id)
    assert job.state is JobState.CANCELLED
    assert view.table.item(view.row_of(job.id), 2).text() == "cancelled"
    assert (bar.value(), bar.maximum()) == (3, 8) and bar.text() == "37%"


def test_the_dock_shows_six_jobs_at_900_by_600(window, qtbot):
    engine = window.engine
    engine.set_paused("test.echo", True)
    for i in range(VISIBLE_ROWS + 2):
        engine.submit("test.echo", {"prompt": f"job {i}"})
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.height() == 600)
    table = window.activity.table
    table.scrollToTop()
    viewport = table.viewport().rect()
    shown = [r for r in range(table.rowCount()) if viewport.contains(table.visualRect(table.model().index(r, 0)))]
    assert len(shown) >= VISIBLE_ROWS, f"{len(shown)} rows of {table.rowHeight(0)} px in {viewport.height()} px"
    assert window.centralWidget().height() >= 250  # the page keeps the larger part of the window


def test_the_view_menu_hides_and_shows_the_dock(window, qtbot):
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    action = next(a for a in view_menu.actions() if a.text() == "Activity")
    assert action.isCheckable() and action.isChecked() and action.shortcut() == QKeySequence("Ctrl+J")
    page_height = window.centralWidget().height()
    action.trigger()
    assert not window.activity_dock.isVisible() and not action.isChecked()
    qtbot.waitUntil(lambda: window.centralWidget().height() > page_height)  # the page takes the dock's room
    qtbot.keyClick(window, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier)
    assert window.activity_dock.isVisible() and action.isChecked()
    qtbot.waitUntil(lambda: window.centralWidget().height() == page_height)
