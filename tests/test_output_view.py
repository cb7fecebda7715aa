"""The result area of an auto-built (form) generator page: a job cancelled before it had any output leaves no
preview behind — the page shows the previous result again, or its placeholder."""

from __future__ import annotations

import pytest
from windows import open_window

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal or a condition

PLUGIN = '''
import threading
from dataclasses import dataclass

from desktop.api import Generator, ImageOutput, hookimpl, param


@dataclass(frozen=True)
class Params:
    color: str = param("blue", choices=("blue", "red"))
    wait_for_cancel: bool = param(False, help="preview, then wait for the cancel and give nothing")


class Sketch(Generator):
    """A model-less image generator: previews its colour, then returns it or (``wait_for_cancel``) waits to be
    cancelled and ends with no partial output."""
    id, name, kind, Params, default_model = "test.sketch", "Sketch", "image", Params, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        from PIL import Image

        image = Image.new("RGB", (16, 16), params.color)
        ctx.preview(image)
        if params.wait_for_cancel:
            while not ctx.cancelled:
                threading.Event().wait(0.01)
            ctx.raise_if_cancelled()
        return [ImageOutput(image=image)]


@hookimpl
def register_generators(register):
    register(Sketch())
'''


@pytest.fixture
def window(studiolo_site, qtbot):
    studiolo_site.install("studiolo-test-sketch", modules={"studiolo_test_sketch": PLUGIN},
                          entry_points={"sketch": "studiolo_test_sketch"})
    main = open_window(qtbot)
    yield main
    main.close()


def shown_color(page) -> str | None:
    """The colour of the image the page's output shows (None: it shows something else)."""
    if page.output.currentWidget() is not page.output.image:
        return None
    return page.output.image.image_pixmap().toImage().pixelColor(0, 0).name()


def cancel_after_preview(window, page, qtbot) -> None:
    """Run a red sketch that waits for the cancel, see its preview shown, cancel it from the page."""
    page.form.field_widget("color").setCurrentText("red")
    page.form.field_widget("wait_for_cancel").setChecked(True)
    with qtbot.waitSignal(window.engine.job_previewed, timeout=WAIT):
        page.generate_button.click()
    qtbot.waitUntil(lambda: shown_color(page) == "#ff0000", timeout=WAIT)
    with qtbot.waitSignal(window.engine.job_cancelled, timeout=WAIT) as cancelled:
        page.cancel_button.click()
    assert not cancelled.args[1]  # the job gave no partial output


def test_a_cancelled_job_without_output_shows_the_previous_result_again(window, qtbot):
    page = window.show_page("test.sketch")
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
        page.generate_button.click()
    assert shown_color(page) == "#0000ff"

    cancel_after_preview(window, page, qtbot)
    assert shown_color(page) == "#0000ff", "the cancelled job's preview is still shown"
    assert "Cancelled." in page.status.text()


def test_a_first_job_cancelled_without_output_leaves_the_placeholder(window, qtbot):
    page = window.show_page("test.sketch")
    cancel_after_preview(window, page, qtbot)
    assert page.output.currentWidget() is page.output.placeholder
