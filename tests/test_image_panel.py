"""The image generator's panel (plugins/image/panel.py), driven as a person would, offscreen.

The panel talks to the window only through ``PanelHost``: these tests give it ``RecordingHost``, a real QObject
with the host's signals, a real ``JsonPanelStorage`` in a temporary folder, and a ``submit`` that validates and
records what it is given (the real ``GeneratorHost`` needs the engine and the diffusers generator).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QPlainTextEdit,
    QWidget,
)

from desktop.api import ImageOutput, ParamError, validate
from desktop.testing.panel_host import RecordingPanelHost
from plugins.image import panel as panel_module
from plugins.image.panel import PARAMS_KEY, ImagePanel, create_panel
from plugins.image.params import ImageParams
from plugins.image.widgets import join_lora, split_lora

PLUGIN_DIR = Path(panel_module.__file__).parent


class RecordingHost(RecordingPanelHost):
    """The shared recording host, storing under this panel's generator id."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, generator_id="image", model="demo")


@pytest.fixture
def host(tmp_path: Path) -> RecordingHost:
    return RecordingHost(tmp_path / "panels")


@pytest.fixture
def make_panel(qtbot, host):
    def make(**kwargs) -> ImagePanel:
        panel = ImagePanel(host, **kwargs)
        qtbot.addWidget(panel)
        panel.resize(1200, 800)
        panel.show()
        qtbot.waitExposed(panel)
        return panel

    return make


@pytest.fixture
def panel(make_panel) -> ImagePanel:
    return make_panel()


def write_image(path: Path, size=(200, 100), color=(90, 120, 200)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def drop(widget: QWidget, path: Path | None = None, text: str | None = None) -> QDropEvent:
    """Drag a file (or text) onto the widget and drop it there; returns the drop event."""
    mime = QMimeData()
    if path is not None:
        mime.setUrls([QUrl.fromLocalFile(str(path))])
    if text is not None:
        mime.setText(text)
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)  # Qt delivers a drop only where the drag entered
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return event


def stroke(qtbot, painter, points: list[tuple[float, float]]) -> None:
    """Drag the left button through image coordinates."""
    positions = [painter.map_from_image(QPointF(x, y)) for x, y in points]
    qtbot.mousePress(painter, Qt.MouseButton.LeftButton, pos=positions[0])
    for pos in positions[1:]:
        qtbot.mouseMove(painter, pos)
    qtbot.mouseRelease(painter, Qt.MouseButton.LeftButton, pos=positions[-1])


def set_spin(qtbot, spin: QAbstractSpinBox, text: str) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    spin.interpretText()


def pil_color(image) -> tuple[int, ...]:
    return image.convert("RGB").getpixel((0, 0))


# ----------------------------------------------------------------------------------------- generating


def test_generate_submits_exactly_the_filled_in_params(qtbot, panel, host):
    qtbot.keyClicks(panel.prompt, "a red fox in the snow")
    qtbot.keyClicks(panel.negative_prompt, "blurry")
    set_spin(qtbot, panel.width_spin, "640")
    set_spin(qtbot, panel.height_spin, "448")
    set_spin(qtbot, panel.steps, "30")
    set_spin(qtbot, panel.guidance_scale, "5.5")
    panel.scheduler.setCurrentIndex(panel.scheduler.findData("euler_a"))
    set_spin(qtbot, panel.batch_size, "2")
    set_spin(qtbot, panel.batch_count, "3")
    set_spin(qtbot, panel.preview_every, "5")
    panel.loras.add_lora("/loras/style.safetensors", 0.8)
    qtbot.mouseClick(panel.memory.toggle, Qt.MouseButton.LeftButton)
    panel.dtype.setCurrentIndex(panel.dtype.findData("bfloat16"))
    qtbot.keyClick(panel.vae_tiling, Qt.Key.Key_Space)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)

    expected = validate(ImageParams(prompt="a red fox in the snow", negative_prompt="blurry", width=640, height=448,
                                    steps=30, guidance_scale=5.5, scheduler="euler_a", batch_size=2, batch_count=3,
                                    preview_every=5, loras=["/loras/style.safetensors:0.8"], dtype="bfloat16",
                                    vae_tiling=True))
    assert host.submitted == [expected]
    assert panel.generate() == "job-2"
    assert panel.status.text() == "Queued…"
    assert panel.cancel_button.isEnabled()


def test_an_invalid_value_is_marked_and_nothing_is_submitted(qtbot, panel, host):
    set_spin(qtbot, panel.width_spin, "500")  # not a multiple of 8
    assert panel.generate() is None
    assert host.submitted == []
    assert panel.width_spin.property("invalid") is True
    assert "multiple of 8" in panel.status.text()
    assert "Width" in panel.status.text()

    set_spin(qtbot, panel.width_spin, "504")
    assert panel.generate() == "job-1"
    assert host.submitted[0].width == 504
    assert not panel.width_spin.property("invalid")


def test_image_to_image_without_an_init_image_is_refused(qtbot, panel, host, tmp_path):
    qtbot.mouseClick(panel.mode_group.button(1), Qt.MouseButton.LeftButton)
    assert panel.mode() == "img2img"
    assert panel.generate() is None
    assert host.submitted == []
    assert panel.init_row.property("invalid") is True
    assert "init image" in panel.status.text()

    assert panel.set_init_image(write_image(tmp_path / "start.png"))
    assert not panel.init_row.property("invalid")
    assert panel.generate() == "job-1"
    assert host.submitted[0].init_image == tmp_path / "start.png"
    assert host.submitted[0].mode == "img2img"
    assert host.submitted[0].mask_image is None


def test_a_param_error_from_the_host_is_shown(panel, host, monkeypatch):
    def refuse(params, **kwargs):
        raise ParamError("seed", -5, "must be a whole number from 0")

    monkeypatch.setattr(host, "submit", refuse)
    assert panel.generate() is None
    assert "seed" in panel.status.text()
    assert not panel.cancel_button.isEnabled()


def test_the_mode_switch_shows_and_hides_the_relevant_controls(qtbot, panel):
    def shown(widget: QWidget) -> bool:
        return widget.isVisibleTo(panel)

    assert panel.mode() == "txt2img"
    assert not shown(panel.strength) and not shown(panel.init_row) and not panel.tabs.isTabVisible(1)
    assert shown(panel.steps) and shown(panel.width_spin)

    qtbot.mouseClick(panel.mode_group.button(1), Qt.MouseButton.LeftButton)
    assert panel.mode() == "img2img"
    assert shown(panel.strength) and shown(panel.init_row) and panel.tabs.isTabVisible(1)
    assert not panel.mask_editor.tools.isVisibleTo(panel)

    qtbot.mouseClick(panel.mode_group.button(2), Qt.MouseButton.LeftButton)
    assert panel.mode() == "inpaint"
    assert panel.tabs.currentWidget() is panel.mask_editor
    assert shown(panel.mask_editor.tools) and shown(panel.mask_editor.clear_button)
    assert shown(panel.strength)

    qtbot.mouseClick(panel.mode_group.button(0), Qt.MouseButton.LeftButton)
    assert not shown(panel.strength) and not shown(panel.init_row) and not panel.tabs.isTabVisible(1)


def test_memory_savers_fold_and_unfold(qtbot, panel):
    assert not panel.cpu_offload.isVisibleTo(panel)
    qtbot.mouseClick(panel.memory.toggle, Qt.MouseButton.LeftButton)
    assert panel.cpu_offload.isVisibleTo(panel) and panel.dtype.isVisibleTo(panel)
    qtbot.mouseClick(panel.memory.toggle, Qt.MouseButton.LeftButton)
    assert not panel.cpu_offload.isVisibleTo(panel)
    panel.apply_params(ImageParams(cpu_offload=True))  # a non-default saver is not hidden
    assert panel.memory.is_expanded() and panel.cpu_offload.isChecked()


def test_hires_fix_and_ip_adapter_are_set_in_their_sections_and_reused(qtbot, panel, host):
    assert not panel.hires_form.isVisibleTo(panel) and not panel.ip_adapter_form.isVisibleTo(panel)  # folded
    qtbot.mouseClick(panel.hires.toggle, Qt.MouseButton.LeftButton)
    set_spin(qtbot, panel.hires_form.field_widget("hires_scale"), "2")
    set_spin(qtbot, panel.hires_form.field_widget("hires_denoise"), "0.4")
    qtbot.mouseClick(panel.ip_adapter.toggle, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.ip_adapter_form.field_widget("ip_adapter"), "demo|/pictures/style.png")
    qtbot.keyClicks(panel.prompt, "a fox")
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    (sent,) = host.submitted
    assert (sent.hires_scale, sent.hires_denoise, sent.hires_upscaler) == (2.0, 0.4, "latent")
    assert sent.ip_adapter == "demo|/pictures/style.png" and sent.ip_adapter_scale == 0.6
    qtbot.mouseClick(panel.mode_group.button(1), Qt.MouseButton.LeftButton)  # hires fix is txt2img's
    assert not panel.hires.isVisibleTo(panel) and panel.ip_adapter.isVisibleTo(panel)
    fresh = ImageParams(hires_scale=1.5, ip_adapter_scale=0.3)
    panel.apply_params(ImageParams())
    assert panel.params().hires_scale == 1.0
    panel.hires.set_expanded(False)
    panel.ip_adapter.set_expanded(False)
    panel.apply_params(fresh)  # reuse: non-default sections unfold
    assert panel.hires.is_expanded() and panel.ip_adapter.is_expanded()
    assert (panel.params().hires_scale, panel.params().ip_adapter_scale) == (1.5, 0.3)


# ------------------------------------------------------------------------------------ init image, drops


def test_dropping_an_image_file_sets_the_init_image_and_switches_to_img2img(panel, tmp_path):
    path = write_image(tmp_path / "photo.png", size=(160, 120))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted()

    event = drop(panel, path)
    assert event.isAccepted()
    assert panel.init_image() == path
    assert panel.mode() == "img2img"
    assert panel.mask_editor.painter.image().size().toTuple() == (160, 120)
    assert panel.init_label.text() == "photo.png"
    assert panel.tabs.currentWidget() is panel.mask_editor


def test_a_drop_without_a_file_is_ignored(panel):
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert not enter.isAccepted()
    drop(panel, text="just text")
    assert panel.init_image() is None and panel.mode() == "txt2img"


def test_a_dropped_file_that_is_not_an_image_shows_an_error(panel, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    drop(panel, path)
    assert panel.init_image() is None
    assert "notes.txt" in panel.status.text()
    assert panel.mode() == "txt2img"


def test_a_dropped_file_with_params_is_reused_instead(make_panel, tmp_path):
    with_params = write_image(tmp_path / "made.png")
    plain = write_image(tmp_path / "plain.png")
    seen: list[Path] = []

    def reuse(path: Path):
        seen.append(path)
        return ImageParams(prompt="from the file", steps=33) if path == with_params else None

    panel = make_panel(reuse_from_file=reuse)
    drop(panel, with_params)
    assert panel.prompt.toPlainText() == "from the file" and panel.steps.value() == 33
    assert panel.init_image() is None and panel.mode() == "txt2img"
    drop(panel, plain)
    assert seen == [with_params, plain]
    assert panel.init_image() == plain and panel.mode() == "img2img"


def test_a_dropped_a1111_png_reuses_its_seed_and_model_through_the_host(make_panel, host, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from plugins.image.generator import DiffusersImageGenerator

    info = PngInfo()
    info.add_text("parameters", "a lighthouse\nNegative prompt: fog\nSteps: 12, Sampler: Euler, CFG scale: 5, "
                                "Seed: 1234, Size: 64x64, Model: acme/sd-tiny")
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    panel = make_panel(reuse_from_file=DiffusersImageGenerator().reuse_from_file)  # what the generator gives its panel
    drop(panel, path)
    assert panel.prompt.toPlainText() == "a lighthouse" and panel.steps.value() == 12
    assert host.reused[-1][1:] == (1234, "acme/sd-tiny") and host.seed == 1234 and host.model == "acme/sd-tiny"
    assert "a1111.png" in panel.status.text()


# ------------------------------------------------------------------------------------------------ mask


@pytest.fixture
def inpaint_panel(qtbot, panel, tmp_path):
    assert panel.set_init_image(write_image(tmp_path / "init.png", size=(200, 100)))
    qtbot.mouseClick(panel.mode_group.button(2), Qt.MouseButton.LeftButton)
    panel.mask_editor.brush_spin.setValue(10)
    qtbot.waitUntil(lambda: panel.mask_editor.painter.isVisible() and panel.mask_editor.painter.width() > 100)
    return panel


def read_mask(path: Path) -> Image.Image:
    mask = Image.open(path)
    mask.load()
    return mask


def test_painting_the_mask_produces_a_black_and_white_png_under_storage(qtbot, inpaint_panel, host):
    panel = inpaint_panel
    painter = panel.mask_editor.painter
    assert not painter.has_mask()
    stroke(qtbot, painter, [(20, 20), (60, 20), (100, 20), (100, 50), (100, 80)])  # along the top, then down
    assert painter.has_mask()

    job = panel.generate()
    assert job == "job-1"
    params = host.submitted[0]
    assert params.mode == "inpaint"
    assert params.mask_image is not None and params.mask_image.parent == host.storage.directory
    mask = read_mask(params.mask_image)
    assert mask.size == (200, 100) and mask.mode == "L"
    assert mask.getpixel((40, 20)) == 255 and mask.getpixel((100, 60)) == 255 and mask.getpixel((103, 77)) == 255
    assert mask.getpixel((60, 50)) == 0  # the mouse went round, not straight from the press to the release
    assert mask.getpixel((40, 35)) == 0 and mask.getpixel((180, 90)) == 0 and mask.getpixel((5, 5)) == 0
    assert set(mask.tobytes()) == {0, 255}


def test_erase_and_clear_the_mask(qtbot, inpaint_panel, host):
    panel = inpaint_panel
    painter = panel.mask_editor.painter
    stroke(qtbot, painter, [(20, 50), (120, 50)])
    qtbot.mouseClick(panel.mask_editor.erase_box, Qt.MouseButton.LeftButton)
    assert painter.erasing()
    stroke(qtbot, painter, [(60, 50), (80, 50)])
    panel.generate()
    mask = read_mask(host.submitted[-1].mask_image)
    assert mask.getpixel((70, 50)) == 0  # erased
    assert mask.getpixel((30, 50)) == 255 and mask.getpixel((110, 50)) == 255  # kept

    qtbot.mouseClick(panel.mask_editor.clear_button, Qt.MouseButton.LeftButton)
    assert not painter.has_mask()
    assert panel.generate() is None  # inpainting with nothing to repaint
    assert len(host.submitted) == 1
    assert painter.property("invalid") is True
    assert panel.tabs.currentWidget() is panel.mask_editor


def test_the_mask_cannot_be_painted_in_img2img(qtbot, inpaint_panel):
    panel = inpaint_panel
    qtbot.mouseClick(panel.mode_group.button(1), Qt.MouseButton.LeftButton)
    panel.tabs.setCurrentWidget(panel.mask_editor)
    stroke(qtbot, panel.mask_editor.painter, [(20, 50), (120, 50)])
    assert not panel.mask_editor.painter.has_mask()


# ------------------------------------------------------------------------------------------ job signals


def test_progress_preview_and_result_follow_the_panels_job(panel, host):
    job = panel.generate()
    host.job_started.emit(job)
    host.job_progressed.emit(job, 5, 20, "Step 5 of 20")
    assert (panel.progress.maximum(), panel.progress.value()) == (20, 5)
    assert panel.status.text() == "Step 5 of 20"

    host.job_progressed.emit("someone-elses-job", 1, 2, "not mine")
    host.job_previewed.emit("someone-elses-job", Image.new("RGB", (8, 8), (0, 255, 0)))
    assert panel.status.text() == "Step 5 of 20" and panel.progress.value() == 5
    assert panel.viewer.view.image().isNull()

    host.job_previewed.emit(job, Image.new("RGB", (64, 64), (255, 0, 0)))
    assert panel.viewer.view.image().pixelColor(3, 3) == QColor(255, 0, 0)
    assert panel.strip.count() == 0

    final = ImageOutput(image=Image.new("RGB", (64, 64), (0, 0, 255)), metadata={"seed": 1234})
    host.job_finished.emit(job, [final])
    assert panel.viewer.view.image().pixelColor(3, 3) == QColor(0, 0, 255)
    assert panel.strip.count() == 1 and panel.results() == [final]
    assert panel.progress.value() == panel.progress.maximum()
    assert "1234" in panel.status.text()
    assert not panel.cancel_button.isEnabled()


def test_clicking_a_result_in_the_strip_shows_it(qtbot, panel, host):
    job = panel.generate()
    red = ImageOutput(image=Image.new("RGB", (32, 32), (255, 0, 0)))
    blue = ImageOutput(image=Image.new("RGB", (32, 32), (0, 0, 255)))
    host.job_finished.emit(job, [red, blue])
    assert panel.strip.count() == 2
    assert panel.viewer.view.image().pixelColor(1, 1) == QColor(255, 0, 0)
    rect = panel.strip.visualItemRect(panel.strip.item(1))
    qtbot.mouseClick(panel.strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.strip.currentRow() == 1
    assert panel.viewer.view.image().pixelColor(1, 1) == QColor(0, 0, 255)


def test_a_failure_shows_its_message(panel, host):
    job = panel.generate()
    host.job_failed.emit(job, "Out of memory on the GPU.")
    assert panel.status.text() == "Out of memory on the GPU."
    assert panel.status.property("error") is True
    assert not panel.cancel_button.isEnabled()
    assert panel.strip.count() == 0


def test_cancel_cancels_the_panels_job_and_keeps_partial_results(qtbot, panel, host):
    panel.cancel()
    assert host.cancelled == []  # nothing running
    job = panel.generate()
    panel.cancel()
    assert host.cancelled == [job]
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert host.cancelled == [job, job]
    partial = ImageOutput(image=Image.new("RGB", (16, 16), (10, 200, 10)), partial=True)
    host.job_cancelled.emit(job, [partial])
    assert panel.strip.count() == 1
    assert panel.strip.item(0).toolTip().startswith("Partial")
    assert panel.status.text().startswith("Cancelled.")
    assert not panel.cancel_button.isEnabled()
    panel.cancel()
    assert host.cancelled == [job, job]


def test_send_a_result_to_image_to_image(qtbot, panel, host):
    job = panel.generate()
    host.job_finished.emit(job, [ImageOutput(image=Image.new("RGB", (72, 40), (200, 100, 50)))])
    assert panel.send_button.isEnabled()
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    assert panel.mode() == "img2img"
    init = panel.init_image()
    assert init is not None and init.parent == host.storage.directory
    with Image.open(init) as saved:
        assert saved.size == (72, 40) and pil_color(saved) == (200, 100, 50)
    panel.generate()
    assert host.submitted[-1].init_image == init and host.submitted[-1].mode == "img2img"


def test_zoom_buttons_and_wheel_change_the_views_scale(qtbot, panel):
    view = panel.viewer.view
    view.set_image(Image.new("RGB", (400, 300), (120, 120, 120)))
    fitted = view.zoom()
    assert view.is_fitting() and 0 < fitted < 5
    qtbot.mouseClick(panel.viewer.zoom_in_button, Qt.MouseButton.LeftButton)
    assert view.zoom() == pytest.approx(fitted * 1.25)
    assert not view.is_fitting()
    qtbot.mouseClick(panel.viewer.zoom_out_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.viewer.zoom_out_button, Qt.MouseButton.LeftButton)
    assert view.zoom() == pytest.approx(fitted / 1.25)
    qtbot.mouseClick(panel.viewer.actual_button, Qt.MouseButton.LeftButton)
    assert view.zoom() == pytest.approx(1.0)
    assert panel.viewer.zoom_label.text() == "100 %"
    qtbot.mouseClick(panel.viewer.fit_button, Qt.MouseButton.LeftButton)
    assert view.zoom() == pytest.approx(fitted) and view.is_fitting()

    center = QPointF(view.viewport().rect().center())
    wheel = QWheelEvent(center, view.viewport().mapToGlobal(center), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() == pytest.approx(fitted * 1.25)
    for button in (panel.viewer.zoom_in_button, panel.viewer.zoom_out_button, panel.viewer.fit_button,
                   panel.viewer.actual_button):
        assert button.accessibleName()


# -------------------------------------------------------------------------------------------- params


def test_apply_params_fills_every_widget_and_round_trips(qtbot, panel, host, tmp_path):
    init = write_image(tmp_path / "init.png", size=(80, 60))
    mask_file = tmp_path / "mask.png"
    mask = Image.new("L", (80, 60), 0)
    mask.paste(255, (10, 10, 40, 30))
    mask.save(mask_file)
    original = ImageParams(
        prompt="a lighthouse", negative_prompt="fog", mode="inpaint", width=768, height=640, steps=42,
        guidance_scale=9.5, scheduler="dpmpp_2m", batch_size=3, batch_count=4, strength=0.35,
        init_image=init, mask_image=mask_file, loras=["/l/a.safetensors:0.8", "C:\\l\\b.safetensors:-0.5"],
        preview_every=0, dtype="float16", attention_slicing=True, vae_tiling=True, cpu_offload=True)
    host.params_applied.emit(original)  # "reuse parameters" reaches the panel through the host

    assert panel.prompt.toPlainText() == "a lighthouse" and panel.negative_prompt.toPlainText() == "fog"
    assert panel.mode() == "inpaint" and panel.mode_group.button(2).isChecked()
    assert (panel.width_spin.value(), panel.height_spin.value(), panel.steps.value()) == (768, 640, 42)
    assert panel.guidance_scale.value() == 9.5 and panel.strength.value() == 0.35
    assert panel.scheduler.currentData() == "dpmpp_2m" and panel.dtype.currentData() == "float16"
    assert (panel.batch_size.value(), panel.batch_count.value(), panel.preview_every.value()) == (3, 4, 0)
    assert panel.loras.loras() == ["/l/a.safetensors:0.8", "C:\\l\\b.safetensors:-0.5"]
    assert panel.attention_slicing.isChecked() and panel.vae_tiling.isChecked() and panel.cpu_offload.isChecked()
    assert panel.init_image() == init and panel.mask_editor.painter.has_mask()

    first = panel.params()
    assert replace(first, mask_image=None) == replace(original, mask_image=None)
    assert first.mask_image.parent == host.storage.directory
    assert read_mask(first.mask_image).tobytes() == mask.tobytes()

    panel.apply_params(ImageParams())
    assert panel.prompt.toPlainText() == "" and panel.steps.value() == 20 and panel.mode() == "txt2img"
    panel.apply_params(first)
    assert panel.params() == first


def test_apply_params_accepts_json_and_reports_nonsense(panel):
    panel.apply_params({"prompt": "from json", "steps": 12, "unknown_key": 1})
    assert panel.prompt.toPlainText() == "from json" and panel.steps.value() == 12
    panel.apply_params("not params")
    assert "cannot be used" in panel.status.text()
    assert panel.prompt.toPlainText() == "from json"


def test_the_last_params_are_restored_on_a_new_panel(qtbot, make_panel, host, tmp_path):
    first = make_panel()
    qtbot.keyClicks(first.prompt, "remember me")
    set_spin(qtbot, first.steps, "37")
    first.loras.add_lora("/l/x.safetensors", 0.5)
    assert first.set_init_image(write_image(tmp_path / "start.png"))
    first.set_mode("img2img")
    first.generate()
    assert PARAMS_KEY in host.storage.keys()

    second = make_panel()
    assert second.params() == host.submitted[0]
    assert second.mode() == "img2img" and second.init_image() == tmp_path / "start.png"

    (tmp_path / "start.png").unlink()  # a kept init image that has gone since is dropped, not an error
    third = make_panel()
    assert third.init_image() is None and third.prompt.toPlainText() == "remember me"


def test_restoring_tolerates_params_kept_by_another_version(make_panel, host):
    host.storage.set(PARAMS_KEY, {"steps": 100000, "prompt": "x"})
    panel = make_panel()
    assert panel.params() == ImageParams()


# ------------------------------------------------------------------------------------------------ LoRAs


def test_lora_editor_adds_weights_and_removes(qtbot, panel):
    loras = panel.loras
    loras.add_lora("/l/a.safetensors")
    loras.add_lora("/l/b.safetensors", 0.6)
    loras.table.cellWidget(0, 1).setValue(0.25)
    assert loras.loras() == ["/l/a.safetensors:0.25", "/l/b.safetensors:0.6"]
    assert not loras.remove_button.isEnabled()
    loras.table.selectRow(0)
    qtbot.mouseClick(loras.remove_button, Qt.MouseButton.LeftButton)
    assert loras.loras() == ["/l/b.safetensors:0.6"]
    for i in range(10):
        loras.add_lora(f"/l/{i}.safetensors")
    assert len(loras.loras()) == 8 and not loras.add_button.isEnabled()


def test_lora_text_form():
    assert split_lora("/l/a.safetensors:0.7") == ("/l/a.safetensors", 0.7)
    assert split_lora("/l/a.safetensors") == ("/l/a.safetensors", 1.0)
    assert split_lora("C:\\loras\\a.safetensors") == ("C:\\loras\\a.safetensors", 1.0)
    assert split_lora("C:\\loras\\a.safetensors:-1.5") == ("C:\\loras\\a.safetensors", -1.5)
    assert join_lora("/l/a.safetensors", 0.75) == "/l/a.safetensors:0.75"


# ------------------------------------------------------------------------------------------ the widget


def test_the_panel_draws_something(panel, tmp_path):
    panel.set_init_image(write_image(tmp_path / "init.png"))
    image = panel.grab().toImage()
    assert image.width() >= 1000
    colors = {image.pixel(x, y) for x in range(0, image.width(), 23) for y in range(0, image.height(), 17)}
    assert len(colors) > 10


def test_inputs_and_buttons_are_named_for_assistive_technology(panel):
    checked = 0
    for widget in panel.findChildren(QWidget):
        if widget.objectName().startswith("qt_") or not isinstance(
                widget, (QAbstractSpinBox, QComboBox, QPlainTextEdit, QAbstractButton)):
            continue
        if widget.parent() is not None and widget.parent().inherits("QTabBar"):  # Qt's own scroll arrows
            continue
        assert widget.objectName() and widget.accessibleName(), widget
        checked += 1
    assert checked >= 30
    for button in (panel.clear_init_button, panel.viewer.zoom_in_button, panel.viewer.zoom_out_button):
        assert button.accessibleName() and button.toolTip()  # icon-only buttons


def test_create_panel_returns_an_image_panel(qtbot, host):
    panel = create_panel(host)
    qtbot.addWidget(panel)
    assert isinstance(panel, ImagePanel) and panel.params_type is ImageParams
    assert callable(panel.generate) and callable(panel.cancel)


@pytest.mark.parametrize("module", ["panel.py", "mask_painter.py", "image_view.py"])
def test_the_panel_imports_only_the_plugin_api_from_the_host(module):
    tree = ast.parse((PLUGIN_DIR / module).read_text(encoding="utf-8"))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    for name in names:
        assert not name.startswith("desktop") or name == "desktop.api" or name.startswith("desktop.api."), name
        assert not name.startswith(("torch", "diffusers")), name
        assert not name.startswith("plugins.image.generator"), name
