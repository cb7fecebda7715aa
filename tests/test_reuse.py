"""Reuse reproduces: an output reused from the gallery fills its generator's page with the params, the seed and the
model that made it, and Generate then makes the identical output; "New seed" makes a variation; a model that is not
installed here is named in a note."""

from __future__ import annotations

import pytest
import torch_plugin
from helpers import install_markov
from PySide6.QtGui import QTextCursor
from windows import open_window

from desktop.library import Gallery, Recipe

WAIT = 120_000  # ms: a safety net; every wait ends on a signal


@pytest.fixture
def window(studiolo_site, qtbot):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    window = open_window(qtbot)
    yield window
    window.close()


def pixels(path) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        return image.tobytes()


def run_page(window, qtbot, generator_id: str):
    """Press Generate on the generator's page; the finished job."""
    page = window.show_page(generator_id)
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as finished:
        job_id = page.generate()
    assert finished.args[0] == job_id
    return window.engine.job(job_id)


def test_reuse_from_the_gallery_restores_seed_and_model_and_makes_the_same_image(window, qtbot):
    page = window.show_page("test.noise")
    page.model_chooser.set_ref("demo")
    page.form.set_values({"prompt": "a field", "steps": 3})
    page.seed_box.clear()  # a random seed: reuse must bring back the one drawn
    first = run_page(window, qtbot, "test.noise")
    image = pixels(first.saved[0])
    page.form.set_values({"prompt": "something else", "steps": 5})  # the page moves on
    page.seed_box.setText("1")
    page.model_chooser.set_ref("elsewhere/other-model")

    recipe = Gallery(window.engine.library).reuse(first.item_ids[0])
    assert recipe == Recipe("test.noise", recipe.params, first.seed, "demo")
    window.apply_params("test.noise", recipe)  # what the gallery's "Reuse parameters" does
    assert page.seed_box.text() == str(first.seed) and page.model_chooser.ref() == "demo"
    assert page.form.values()["prompt"] == "a field" and page.form.values()["steps"] == 3
    assert str(first.seed) in page.status.text()
    again = run_page(window, qtbot, "test.noise")
    assert again.seed == first.seed and pixels(again.saved[0]) == image  # the identical image (its metadata differs:
    # job id, time)

    page.new_seed_button.click()  # a variation: a new random seed
    assert page.seed_box.seed() is None
    variation = run_page(window, qtbot, "test.noise")
    assert variation.seed != first.seed


def test_reusing_with_a_model_not_installed_here_says_so(window, qtbot):
    page = window.show_page("text.markov")
    messages = []
    page.message.connect(lambda text, error: messages.append((text, error)))
    window.apply_params("text.markov", Recipe("text.markov", {"words": 5}, 42, "acme/not-here"))
    assert page.seed_box.text() == "42" and page.model_chooser.ref() == "acme/not-here"
    assert messages and "acme/not-here, which is not installed here" in messages[-1][0]
    messages.clear()
    window.apply_params("text.markov", Recipe("text.markov", {"words": 5}, 42, "demo"))
    assert messages == []  # the demo needs no download


def test_reuse_from_a_text_draft_writes_the_same_again(window, qtbot):
    page = window.show_page("text.transformers")
    panel = page.custom_panel
    page.model_chooser.set_ref("demo")
    page.seed_box.setText("5")
    panel.max_new_tokens.setValue(8)

    def write_after(prefix: str) -> str:
        panel.editor.setPlainText(prefix)
        panel.editor.moveCursor(QTextCursor.MoveOperation.End)
        with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
            panel.generate()
        return panel.editor.text()

    written = write_after("Once upon")
    assert len(written) > len("Once upon")
    page.seed_box.setText("1")  # the page moves on
    panel.temperature.setValue(1.5)
    cursor = panel.editor.textCursor()
    cursor.setPosition(len(written))  # at the end of the generated text
    panel.editor.setTextCursor(cursor)
    panel.reuse_button.click()
    assert page.seed_box.text() == "5" and page.model_chooser.ref() == "demo"
    assert panel.temperature.value() == pytest.approx(0.8)
    assert write_after("Once upon") == written  # the same text after the same prefix


def test_a_dropped_image_and_the_gallery_reuse_seed_and_model_on_the_image_page(window, qtbot):
    page = window.show_page("image.diffusers")
    panel = page.custom_panel
    page.model_chooser.set_ref("demo")
    page.seed_box.clear()  # a random seed: the file must bring back the one drawn
    panel.prompt.setPlainText("a lighthouse")
    panel.width_spin.setValue(64)
    panel.height_spin.setValue(64)
    panel.steps.setValue(2)
    first = run_page(window, qtbot, "image.diffusers")
    image = pixels(first.saved[0])
    page.seed_box.setText("1")  # the page moves on
    page.model_chooser.set_ref("elsewhere/other-model")
    panel.steps.setValue(3)

    assert panel.open_file(first.saved[0])  # what dropping the PNG on the panel does
    assert page.seed_box.text() == str(first.seed) and page.model_chooser.ref() == "demo"
    assert panel.steps.value() == 2
    again = run_page(window, qtbot, "image.diffusers")
    assert again.seed == first.seed and pixels(again.saved[0]) == image

    page.seed_box.setText("1")
    window.apply_params("image.diffusers", Gallery(window.engine.library).reuse(first.item_ids[0]))  # the gallery
    assert page.seed_box.text() == str(first.seed) and panel.steps.value() == 2
