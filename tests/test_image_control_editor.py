"""The image panel's ControlNet units editor (plugins/image/control_editor.py), driven as a person would, offscreen:
units filled in through the widgets, reuse parameters, an invalid unit blocking Generate, the map previewed by a
real in-process engine, and the map edited and saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractSpinBox, QDialogButtonBox, QScrollArea

from desktop.api import ImageOutput
from desktop.api.widgets import ParamsForm
from desktop.testing.panel_host import RecordingPanelHost
from plugins.image.addon_choosers import offer_upscalers
from plugins.image.control_editor import ControlUnitRow
from plugins.image.panel import ImagePanel
from plugins.image.params import ImageParams
from plugins.image.preprocess import PREPROCESSORS, canny

WAIT = 120_000  # ms: a safety net only; every wait ends on a condition


@pytest.fixture
def host(tmp_path: Path) -> RecordingPanelHost:
    return RecordingPanelHost(tmp_path / "panels", generator_id="image", model="demo")


def show(qtbot, panel: ImagePanel) -> ImagePanel:
    qtbot.addWidget(panel)
    panel.resize(1200, 900)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


@pytest.fixture
def panel(qtbot, host) -> ImagePanel:
    return show(qtbot, ImagePanel(host))


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """64×64: a gradient with a bright square (edges for canny)."""
    yy, xx = np.mgrid[0:64, 0:64]
    pixels = np.stack([xx * 2, yy * 2, xx + yy], -1).astype(np.uint8)
    pixels[16:48, 16:48] = 255
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def set_spin(qtbot, spin: QAbstractSpinBox, text: str) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    spin.interpretText()


def type_into(qtbot, edit, text: str) -> None:
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    edit.editingFinished.emit()


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def scroll_to(widget) -> None:
    area = widget.parentWidget()
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parentWidget()
    area.ensureWidgetVisible(widget)


def pixels(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(bytes(rgb.constBits()), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return data[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3)


# ------------------------------------------------------------------------------------------- units and params


def test_two_units_filled_in_through_the_widgets_are_exactly_the_params_texts(qtbot, panel, host, photo, tmp_path):
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "map.png")
    click(qtbot, panel.controlnet.toggle)
    click(qtbot, panel.controls.add_button)
    click(qtbot, panel.controls.add_button)
    first, second = panel.controls.rows
    assert [first.preprocess.itemData(i) for i in range(first.preprocess.count())] == list(PREPROCESSORS)
    type_into(qtbot, first.model.lineEdit(), "/models/cn-canny")
    type_into(qtbot, first.image, str(photo))
    assert not first.thresholds.isVisible()
    first.preprocess.setCurrentIndex(first.preprocess.findData("canny"))
    assert first.thresholds.isVisible() and not first.annotator.isVisible()
    set_spin(qtbot, first.low, "50")
    set_spin(qtbot, first.high, "150")
    set_spin(qtbot, first.weight, "0.8")
    set_spin(qtbot, first.start, "0.1")
    set_spin(qtbot, first.end, "0.9")
    assert not first.thumbnail.pixmap().isNull()  # the control image's thumbnail
    type_into(qtbot, second.model.lineEdit(), "/models/cn-depth")
    type_into(qtbot, second.image, str(tmp_path / "map.png"))
    click(qtbot, second.enabled_box)  # disabled: kept with weight 0
    assert not second.weight.isEnabled()
    third = panel.controls.add_unit()
    assert third is not None and not panel.controls.add_button.isEnabled()  # at most three
    qtbot.waitUntil(lambda: third.remove_button.isVisible() and third.remove_button.height() > 0)  # laid out
    scroll_to(third.remove_button)  # a click lands where the button is on screen: bring it into view
    click(qtbot, third.remove_button)
    assert len(panel.controls.rows) == 2 and panel.controls.add_button.isEnabled()

    assert panel.generate() == "job-1"
    assert host.submitted[0].controlnets == [f"/models/cn-canny|{photo}|0.8|0.1|0.9|preprocess=canny|low=50|high=150",
                                             f"/models/cn-depth|{tmp_path / 'map.png'}|0|0|1"]


def test_reused_units_are_shown_and_come_back_exactly(qtbot, panel, host, photo):
    texts = [f"/models/a|{photo}|0.8|0.1|0.9|preprocess=canny|low=50|high=150",
             f"/models/b|{photo}|0|0|1",  # disabled
             f"/models/c|{photo}|0.3333|0|0.75|preprocess=depth|low=100|high=200|annotator=demo"]
    host.reuse(ImageParams(prompt="a fox", controlnets=texts))
    assert panel.controlnet.is_expanded()
    first, second, third = panel.controls.rows
    assert (first.model.currentText(), first.image.text(), first.weight.value(), first.low.value()) == \
        ("/models/a", str(photo), 0.8, 50)
    assert first.enabled_box.isChecked() and not second.enabled_box.isChecked()
    assert third.annotator.isVisible() and third.annotator.currentText() == "demo" and not third.thresholds.isVisible()
    assert not panel.controls.add_button.isEnabled()
    assert panel.params().controlnets == texts
    assert panel.panel_state()["controlnets"] == texts

    host.reuse(ImageParams(controlnets=[f"/models/a|{photo}"]))  # the short form: written out in full
    assert panel.params().controlnets == [f"/models/a|{photo}|1|0|1"]
    host.reuse(ImageParams())  # a picture without ControlNet clears the rows
    assert panel.controls.rows == [] and panel.params().controlnets == []


def test_an_invalid_unit_shows_its_error_and_blocks_generate(qtbot, panel, host, photo):
    panel.apply_params(ImageParams(controlnets=[f"/models/a|{photo}|5"]))
    (row,) = panel.controls.rows
    assert row.error.isVisible() and "the weight must be between 0 and 2" in row.error.text()
    assert panel.generate() is None and host.submitted == []
    assert "ControlNets: ControlNet unit 1: the weight must be between 0 and 2" in panel.status.text()
    assert panel.controls.property("invalid") is True

    set_spin(qtbot, row.weight, "1.5")  # edited: the unit is read from the widgets again
    assert not row.error.isVisible() and not panel.controls.property("invalid")
    set_spin(qtbot, row.start, "0.9")
    set_spin(qtbot, row.end, "0.5")
    assert row.error.isVisible() and "0 <= start < end <= 1" in row.error.text()
    assert panel.generate() is None and host.submitted == []
    set_spin(qtbot, row.start, "0.2")
    assert panel.generate() == "job-1"
    assert host.submitted[0].controlnets == [f"/models/a|{photo}|1.5|0.2|0.5"]

    click(qtbot, panel.controls.add_button)  # an empty unit: says what it needs
    assert panel.generate() is None
    assert "ControlNet unit 2: choose its ControlNet model" in panel.controls.rows[1].error.text()


# ------------------------------------------------------------------------------------------- map preview and edit


def test_preview_map_through_a_real_engine_shows_the_canny_map(qtbot, tiny_sd, photo):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.panel_host import GeneratorHost

    plugins = PluginManager(Settings()).load(third_party=False)
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache(),
                    in_process=True)  # torch is imported here already: no worker process to start
    host = GeneratorHost(engine, plugins.generator("image.diffusers"), model=lambda: str(tiny_sd), seed=lambda: 1,
                         message=lambda text, error: None)
    panel = show(qtbot, ImagePanel(host))
    try:
        panel.apply_params(ImageParams(width=64, height=64, steps=2, batch_size=2,
                                       controlnets=[f"|{photo}|1|0|1|preprocess=canny|low=100|high=200"]))
        (row,) = panel.controls.rows
        assert row.error.isVisible()  # no model yet: Generate would be refused, the preview needs none
        click(qtbot, row.preview_button)
        assert not row.preview_button.isEnabled()
        qtbot.waitUntil(lambda: not row.map_image().isNull(), timeout=WAIT)
    finally:
        assert engine.shutdown(timeout=30)
    with Image.open(photo) as image:
        expected = np.asarray(canny(image, 100, 200))
    assert np.array_equal(pixels(row.thumbnail.pixmap().toImage()), expected)
    assert expected.max() == 255 and expected.min() == 0  # edges found: the map is not blank
    assert row.preview_button.isEnabled() and panel.strip.count() == 0  # a preview is not a result


def test_edit_map_previews_then_saves_the_painted_map_as_the_units_image(qtbot, panel, host, photo):
    panel.apply_params(ImageParams(width=64, height=64, batch_count=3,
                                   controlnets=[f"/models/a|{photo}|0.5|0|1|preprocess=canny|low=100|high=200"]))
    (row,) = panel.controls.rows
    click(qtbot, row.edit_button)  # no map yet: it is previewed first
    (submitted,) = host.submitted
    assert (submitted.mode, submitted.controlnets, submitted.width, submitted.batch_count) == \
        ("control_map", [f"/models/a|{photo}|0.5|0|1|preprocess=canny|low=100|high=200"], 64, 1)
    black = Image.new("RGB", (64, 64), (0, 0, 0))
    host.job_finished.emit("job-1", [ImageOutput(image=black, metadata={"mode": "control_map"})])
    dialog = panel.controls.map_dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    painter = dialog.painter
    painter.set_brush_size(4)
    start, end = painter.map_from_image(QPointF(8, 32)), painter.map_from_image(QPointF(56, 32))
    qtbot.mousePress(painter, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(painter, end)
    qtbot.mouseRelease(painter, Qt.MouseButton.LeftButton, pos=end)
    assert pixels(painter.image())[32, 30].tolist() == [255, 255, 255]
    click(qtbot, dialog.undo_button)
    assert pixels(painter.image()).max() == 0  # the stroke taken back
    qtbot.mousePress(painter, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseRelease(painter, Qt.MouseButton.LeftButton, pos=end)
    click(qtbot, dialog.buttons.button(QDialogButtonBox.StandardButton.Save))

    (saved,) = list(host.storage.directory.glob("control-map-*.png"))
    assert row.text() == f"/models/a|{saved}|0.5|0|1"  # the map is used as it is
    assert panel.params().controlnets == [row.text()]
    with Image.open(saved) as image:
        edited = np.asarray(image.convert("RGB"))
    assert edited.shape == (64, 64, 3) and edited[32, 30].tolist() == [255, 255, 255]
    assert edited[5, 5].tolist() == [0, 0, 0] and set(np.unique(edited)) == {0, 255}
    assert np.array_equal(pixels(row.thumbnail.pixmap().toImage()), edited)
    assert isinstance(row, ControlUnitRow)


# ------------------------------------------------------------------------------------------- add-on models, canvas


def test_model_boxes_list_the_demo_and_an_imported_controlnet_and_write_references(qtbot, host, tmp_path):
    from desktop.models.store import import_model
    from plugins.image.demo import build_tiny_controlnet
    from plugins.image.generator import DiffusersImageGenerator

    host.generator = DiffusersImageGenerator()  # what addon_models lists the add-on kinds of
    import_model(build_tiny_controlnet(tmp_path / "my-cn"), generator_id="image.diffusers+controlnet")
    panel = show(qtbot, ImagePanel(host))
    click(qtbot, panel.controlnet.toggle)
    click(qtbot, panel.controls.add_button)  # a unit added: its boxes are filled
    (row,) = panel.controls.rows
    models = [(row.model.itemText(i), row.model.itemData(i)) for i in range(row.model.count())]
    assert models[0] == ("Demo model (tiny, offline)", "demo") and ("my-cn (imported)", "my-cn") in models
    assert row.annotator.itemData(0) == "demo"  # the depth estimators' demo
    row.model.activated.emit(models.index(("my-cn (imported)", "my-cn")))  # chosen from the list: the reference
    assert row.model.currentText() == "my-cn" and row.unit().model == "my-cn"
    type_into(qtbot, row.model.lineEdit(), "/models/typed")
    panel.controls.refresh_models()  # read again (as on show): what was typed is kept
    assert row.model.currentText() == "/models/typed" and row.model.count() == len(models)
    upscalers = panel.addon_choosers["upscaler"].choices()
    assert upscalers[0] == ("Demo model (tiny, offline)", "demo")
    panel.set_mode("upscale")
    edit = panel.upscale_form.field_widget("upscaler")
    assert edit.completer() is panel.addon_choosers["upscaler"].completer
    edit.activateWindow()
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus)  # a line edit takes its completer's choice while it has the focus
    qtbot.keyClicks(edit, "dem")  # completes the reference, not the label
    popup = edit.completer().popup()
    qtbot.waitUntil(popup.isVisible)
    assert popup.model().index(0, 0).data() == "Demo model (tiny, offline)"
    qtbot.mouseClick(popup.viewport(), Qt.MouseButton.LeftButton,
                     pos=popup.visualRect(popup.model().index(0, 0)).center())
    assert edit.text() == "demo" and panel.upscale_form.values()["upscaler"] == "demo"
    hires = ParamsForm(ImageParams, fields=("hires_upscaler",), scrollable=False)  # a hires fix form: latent first
    qtbot.addWidget(hires)
    assert offer_upscalers([hires], host)["hires_upscaler"].choices()[:2] == \
        [("Latent (resize the latents)", "latent"), ("Demo model (tiny, offline)", "demo")]


def test_without_add_on_models_the_boxes_stay_free_text_fields(qtbot, panel, host):
    panel.controls.add_unit("/models/a|/x.png")
    (row,) = panel.controls.rows
    assert row.model.count() == 0 and row.model.currentText() == "/models/a"
    assert panel.addon_choosers["upscaler"].choices() == []


def test_from_canvas_uses_the_selected_result_else_the_init_image(qtbot, panel, host, photo, tmp_path):
    click(qtbot, panel.controlnet.toggle)
    click(qtbot, panel.controls.add_button)
    (row,) = panel.controls.rows
    assert not row.canvas_button.isEnabled()  # no picture yet
    assert panel.set_init_image(photo)
    assert row.canvas_button.isEnabled()
    click(qtbot, row.canvas_button)
    assert row.image.text() == str(photo) and not row.thumbnail.pixmap().isNull()

    saved = tmp_path / "result.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(saved)
    result = ImageOutput(image=Image.open(saved).convert("RGB"))
    result.saved_path = saved  # as the host's writer sets it
    panel.viewer.select(panel.viewer.add_result(result))
    click(qtbot, row.canvas_button)
    assert row.image.text() == str(saved)

    unsaved = ImageOutput(image=Image.new("RGB", (64, 64), (1, 2, 3)))  # not saved by the host: kept in storage
    panel.viewer.select(panel.viewer.add_result(unsaved))
    click(qtbot, row.canvas_button)
    kept = Path(row.image.text())
    assert kept.parent == host.storage.directory and kept.is_file()
    with Image.open(kept) as image:
        assert image.convert("RGB").getpixel((5, 5)) == (1, 2, 3)

    panel.viewer.select(-1)
    panel.clear_init_image()
    assert not row.canvas_button.isEnabled()
