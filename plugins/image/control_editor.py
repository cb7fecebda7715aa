"""The image panel's ControlNet units: a row per unit, its map previewed and edited before the job.

:class:`ControlNetEditor` holds up to :data:`~plugins.image.controlnet.MAX_UNITS` :class:`ControlUnitRow`\\ s. Each
row edits one unit of ``ImageParams.controlnets`` (``MODEL|IMAGE|WEIGHT|START|END[|preprocess=…]``): its text is
:func:`~plugins.image.controlnet.format_unit` of what the widgets hold, and a text given to it is read with
:func:`~plugins.image.controlnet.parse_unit`, so units round-trip exactly. A disabled unit is written with weight 0
(kept in the params and the picture's metadata; the job skips it). A row that is not a valid unit shows why, and
:meth:`ControlNetEditor.units` raises that :class:`~desktop.api.ParamError` (the panel marks the field and does
not submit).

"Preview map" submits a ``control_map`` job through the panel's host (the panel's params with that unit alone):
its one output, the unit's preprocessed map at the job's size, is shown in the row's thumbnail. "Edit map…" opens
the map in :class:`~plugins.image.map_editor.MapEditDialog` (a white and a black brush, undo); Save writes it as a
PNG into the panel's
storage folder (on the GUI thread, like the inpainting mask: one small PNG) and makes it the unit's image, with no
preprocessor (the map is used as it is).

The model box offers the ControlNets usable now and the depth model box the depth estimators
(``host.addon_models``: the demo first, then imported and downloaded ones; the label shown, the reference written into
the unit; either box stays a free text field). They are read again whenever the editor is shown and when a unit is
added. "From canvas" makes the panel's current picture (the selected result, else the init image) the unit's image.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ImageOutput, PanelHost, ParamError, StudioloError
from desktop.api.widgets import JobFollower
from plugins.image import preprocess as preprocessors
from plugins.image.addons import CONTROLNET as CONTROLNET_KIND
from plugins.image.addons import DEPTH as DEPTH_KIND
from plugins.image.controlnet import FIELD, MAX_UNITS, ControlUnit, format_unit, parse_unit
from plugins.image.image_view import png_bytes, save_png, to_qimage
from plugins.image.map_editor import MapEditDialog

__all__ = ["ControlNetEditor", "ControlUnitRow"]

log = logging.getLogger(__name__)

THUMBNAIL = 72
"""The thumbnail's largest side (pixels); smaller images are shown at their size."""
PREVIEW_MODE = "control_map"
"""The mode whose one output is the first unit's preprocessed map (plugins/image/control_map.py)."""
MAP_PREFIX = "control-map"
"""Edited maps are saved in the panel's storage folder as ``control-map-HASH.png``."""
_PREPROCESSOR_TEXTS = {"none": "None (use the image as it is)", "canny": "Canny edges", "depth": "Depth"}


def _spin(parent: QWidget, name: str, accessible: str, low: float, high: float, step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(parent)
    spin.setObjectName(name)
    spin.setAccessibleName(accessible)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(3)
    return spin


def _exact(spin: QDoubleSpinBox, loaded: float) -> float:
    """The spin box's value, or the value it was given when it shows that one (more decimals than it shows)."""
    value = spin.value()
    return loaded if round(loaded, spin.decimals()) == value else value


class ControlUnitRow(QFrame):
    """One ControlNet unit: model, control image (with a thumbnail), preprocessor, weight, start, end, enabled."""

    changed = Signal()
    remove_requested = Signal(object)
    preview_requested = Signal(object)
    edit_requested = Signal(object)
    canvas_requested = Signal(object)

    def __init__(self, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        tr = self.tr
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._number = number
        self._loaded = ControlUnit(model="", image=None)  # the unit last given (for exact numbers)
        self._raw: str | None = None  # a text given that is not a valid unit, kept until the row is edited
        self._filling = False
        self._map = QImage()  # the previewed or edited map, null when none
        self.title = QLabel(self)
        self.enabled_box = QCheckBox(tr("Enabled"), self)
        self.enabled_box.setChecked(True)
        self.enabled_box.setToolTip(tr("A disabled unit is kept with weight 0: the job runs without it"))
        self.remove_button = QToolButton(self)
        self.remove_button.setText("✕")
        self.remove_button.setToolTip(tr("Remove this ControlNet"))
        self.model = QComboBox(self)
        self.model.setEditable(True)
        self.model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model.lineEdit().setPlaceholderText(tr("ControlNet folder or .safetensors file"))
        self.model_browse = QToolButton(self)
        self.model_browse.setText(tr("Browse…"))
        self.model_browse.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        browse_menu = QMenu(self.model_browse)
        browse_menu.addAction(tr("Folder…"), self._browse_model_folder)
        browse_menu.addAction(tr(".safetensors file…"), self._browse_model_file)
        self.model_browse.setMenu(browse_menu)
        self.image = QLineEdit(self)
        self.image.setPlaceholderText(tr("Control image (a map, or a photo to preprocess)"))
        self.image_browse = QToolButton(self)
        self.image_browse.setText(tr("Browse…"))
        self.canvas_button = QToolButton(self)
        self.canvas_button.setText(tr("From canvas"))
        self.canvas_button.setToolTip(tr("Use the picture shown in the panel (the selected result, else the init "
                                         "image)"))
        self.canvas_button.setEnabled(False)
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedSize(THUMBNAIL, THUMBNAIL)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setFrameShape(QFrame.Shape.Box)
        self.preprocess = QComboBox(self)
        for name in preprocessors.PREPROCESSORS:  # read now: preprocessors added later show up
            self.preprocess.addItem(tr(_PREPROCESSOR_TEXTS.get(name, name.capitalize())), name)
        self.low = QSpinBox(self)
        self.high = QSpinBox(self)
        for spin, value in ((self.low, 100), (self.high, 200)):
            spin.setRange(0, 255)
            spin.setValue(value)
        self.annotator = QComboBox(self)
        self.annotator.setEditable(True)
        self.annotator.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.annotator.lineEdit().setPlaceholderText(tr("Depth model: a folder, demo or a downloaded hub id "
                                                        "(empty: the recommended one)"))
        self.thresholds = QWidget(self)
        thresholds = QHBoxLayout(self.thresholds)
        thresholds.setContentsMargins(0, 0, 0, 0)
        thresholds.addWidget(QLabel(tr("Low"), self.thresholds))
        thresholds.addWidget(self.low)
        thresholds.addWidget(QLabel(tr("High"), self.thresholds))
        thresholds.addWidget(self.high)
        self.weight = _spin(self, "", tr("Weight"), 0.0, 2.0, 0.05)
        self.weight.setValue(1.0)
        self.start = _spin(self, "", tr("Start"), 0.0, 1.0, 0.05)
        self.end = _spin(self, "", tr("End"), 0.0, 1.0, 0.05)
        self.end.setValue(1.0)
        self.preview_button = QPushButton(tr("Preview map"), self)
        self.preview_button.setToolTip(tr("Run the preprocessor and show the map the ControlNet will read"))
        self.edit_button = QPushButton(tr("Edit map…"), self)
        self.edit_button.setToolTip(tr("Paint over the map in white and black; it is then used as it is"))
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setProperty("error", True)
        self.error.hide()
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.enabled_box)
        top.addStretch(1)
        top.addWidget(self.remove_button)
        grid = QGridLayout()
        grid.addWidget(QLabel(tr("Model"), self), 0, 0)
        grid.addWidget(self.model, 0, 1)
        grid.addWidget(self.model_browse, 0, 2)
        grid.addWidget(QLabel(tr("Image"), self), 1, 0)
        grid.addWidget(self.image, 1, 1)
        grid.addWidget(self.image_browse, 1, 2)
        grid.addWidget(self.canvas_button, 1, 3)
        grid.addWidget(QLabel(tr("Preprocessor"), self), 2, 0)
        grid.addWidget(self.preprocess, 2, 1, 1, 3)
        grid.addWidget(self.thresholds, 3, 1, 1, 3)
        grid.addWidget(self.annotator, 4, 1, 1, 3)
        numbers = QHBoxLayout()
        for label, spin in ((tr("Weight"), self.weight), (tr("Start"), self.start), (tr("End"), self.end)):
            numbers.addWidget(QLabel(label, self))
            numbers.addWidget(spin)
        grid.addLayout(numbers, 5, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.thumbnail)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.edit_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addLayout(buttons)
        layout.addWidget(self.error)
        self.set_number(number)
        for signal in (self.model.currentTextChanged, self.image.textChanged, self.preprocess.currentIndexChanged,
                       self.low.valueChanged, self.high.valueChanged, self.weight.valueChanged,
                       self.start.valueChanged, self.end.valueChanged, self.enabled_box.toggled,
                       self.annotator.currentTextChanged):
            signal.connect(self._on_edited)
        for box in (self.model, self.annotator):  # a model chosen from the list: its reference, not its label
            box.activated.connect(lambda index, box=box: self._choose(box, index))
        self.image.editingFinished.connect(self._show_image_thumbnail)
        self.image_browse.clicked.connect(self._browse_image)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))
        self.canvas_button.clicked.connect(lambda: self.canvas_requested.emit(self))
        self.preview_button.clicked.connect(lambda: self.preview_requested.emit(self))
        self.edit_button.clicked.connect(lambda: self.edit_requested.emit(self))
        self._update_visibility()

    # -- the unit ----------------------------------------------------------------------------------------------

    def number(self) -> int:
        """The unit's number (1 to 3), as errors name it."""
        return self._number

    def set_number(self, number: int) -> None:
        self._number = number
        tr = self.tr
        self.setObjectName(f"controlnet_{number}")
        self.title.setText(tr("Unit %1").replace("%1", str(number)))
        names = {self.enabled_box: "enabled", self.remove_button: "remove", self.model: "model",
                 self.model_browse: "model_browse", self.image: "image", self.image_browse: "image_browse",
                 self.thumbnail: "thumbnail", self.preprocess: "preprocess", self.low: "low", self.high: "high",
                 self.annotator: "annotator", self.canvas_button: "canvas",
                 self.weight: "weight", self.start: "start", self.end: "end", self.preview_button: "preview",
                 self.edit_button: "edit", self.error: "error"}
        texts = {"enabled": tr("Enabled"), "remove": tr("Remove"), "model": tr("Model"),
                 "model_browse": tr("Browse for the model"), "image": tr("Control image"),
                 "image_browse": tr("Browse for the control image"), "thumbnail": tr("Map preview"),
                 "preprocess": tr("Preprocessor"), "low": tr("Canny low threshold"),
                 "high": tr("Canny high threshold"), "annotator": tr("Depth model"),
                 "canvas": tr("Use the panel's picture as the control image"),
                 "weight": tr("Weight"), "start": tr("Start"), "end": tr("End"),
                 "preview": tr("Preview map"), "edit": tr("Edit map"), "error": tr("Problem")}
        for widget, name in names.items():
            widget.setObjectName(f"controlnet_{number}_{name}")
            widget.setAccessibleName(tr("ControlNet %1: %2").replace("%1", str(number)).replace("%2", texts[name]))

    def unit(self) -> ControlUnit:
        """What the widgets hold (not checked)."""
        image = self.image.text().strip()
        loaded = self._loaded
        return ControlUnit(
            model=_reference(self.model),
            image=Path(image).expanduser() if image else None,
            weight=_exact(self.weight, loaded.weight) if self.enabled_box.isChecked() else 0.0,
            start=_exact(self.start, loaded.start), end=_exact(self.end, loaded.end),
            preprocess=self.preprocess.currentData() or "none", low=self.low.value(), high=self.high.value(),
            annotator=_reference(self.annotator))

    def text(self) -> str:
        """The unit as ``ImageParams.controlnets`` carries it (a text given that was not valid: as given)."""
        return self._raw if self._raw is not None else format_unit(self.unit())

    def set_text(self, text: str) -> None:
        """Show this unit (a text :func:`parse_unit` refuses is kept as it is, with its error shown)."""
        raw: str | None = None
        try:
            unit = parse_unit(text, self._number)
        except ParamError:
            parts = [part.strip() for part in str(text).split("|")]
            found: ControlUnit | None = None
            if not parts[0] and len(parts) > 1:  # only the model missing: the widgets hold the rest
                with contextlib.suppress(ParamError):
                    found = replace(parse_unit("model" + str(text), self._number), model="")
            if found is None:
                found = ControlUnit(model=parts[0], image=Path(parts[1]) if len(parts) > 1 and parts[1] else None)
                raw = str(text)
            unit = found
        self._filling = True
        try:
            self._loaded = unit
            self.model.setCurrentText(unit.model)
            self.image.setText("" if unit.image is None else str(unit.image))
            self.preprocess.setCurrentIndex(max(0, self.preprocess.findData(unit.preprocess)))
            self.low.setValue(unit.low)
            self.high.setValue(unit.high)
            self.annotator.setCurrentText(unit.annotator)
            self.enabled_box.setChecked(unit.weight > 0)
            self.weight.setValue(unit.weight if unit.weight > 0 else 1.0)
            self.start.setValue(unit.start)
            self.end.setValue(unit.end)
        finally:
            self._filling = False
        self._raw = raw
        self._map = QImage()
        self._show_image_thumbnail()
        self._update_visibility()
        self.check()

    def check(self) -> ParamError | None:
        """Why this row is not a unit a job can use (also shown under it), or None."""
        error = self._problem()
        self.error.setText("" if error is None else error.allowed + ".")
        self.error.setVisible(error is not None)
        return error

    def preview_unit(self) -> str:
        """The unit a map preview runs: this one, enabled, its model any text (a preview does not load it);
        :class:`ParamError` if the image or a setting is wrong (shown under the row)."""
        unit = self.unit()
        unit = replace(unit, model=unit.model or "preview", weight=unit.weight or 1.0)
        error = self._problem(format_unit(unit), unit)
        self.error.setText("" if error is None else error.allowed + ".")
        self.error.setVisible(error is not None)
        if error is not None:
            raise error
        return format_unit(unit)

    def _problem(self, text: str | None = None, unit: ControlUnit | None = None) -> ParamError | None:
        number = self._number
        text = self.text() if text is None else text
        if unit is not None or self._raw is None:  # a text given as it is: parse_unit says what is wrong
            unit = self.unit() if unit is None else unit
            if not unit.model:
                return ParamError(FIELD, text, self.tr("ControlNet unit %1: choose its ControlNet model")
                                  .replace("%1", str(number)),
                                  hint=self.tr("A diffusers ControlNet folder or a .safetensors file."))
            if unit.image is None:
                return ParamError(FIELD, text, self.tr("ControlNet unit %1: choose its control image")
                                  .replace("%1", str(number)),
                                  hint=self.tr("A map, or a photo with a preprocessor to make its map."))
            if "|" in unit.model or "|" in str(unit.image):
                return ParamError(FIELD, text, self.tr("ControlNet unit %1: a path with | cannot be used")
                                  .replace("%1", str(number)), hint=self.tr("Rename or move the file."))
        try:
            parse_unit(text, number)
        except ParamError as exc:
            return exc
        return None

    # -- the map -----------------------------------------------------------------------------------------------

    def map_image(self) -> QImage:
        """The previewed or edited map (null when there is none)."""
        return self._map

    def set_map(self, image: QImage) -> None:
        """Show a map (the preview's output, or the edited map) in the thumbnail."""
        self._map = QImage(image)
        self._set_thumbnail(self._map, self.tr("The map the ControlNet reads"))

    def set_busy(self, busy: bool) -> None:
        self.preview_button.setEnabled(not busy)
        self.edit_button.setEnabled(not busy)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def set_image_path(self, path: Path, preprocess: str | None = None) -> None:
        """Use this file as the control image (and this preprocessor, if given)."""
        self.image.setText(str(path))
        if preprocess is not None:
            self.preprocess.setCurrentIndex(max(0, self.preprocess.findData(preprocess)))
        self._show_image_thumbnail()

    @Slot()
    def _show_image_thumbnail(self) -> None:
        """The control image's thumbnail (the map preview, if one is shown, is dropped: it may be stale)."""
        self._map = QImage()
        text = self.image.text().strip()
        image = QImage()
        if text:
            reader = QImageReader(str(Path(text).expanduser()))
            reader.setAutoTransform(True)
            size = reader.size()
            if size.isValid() and (size.width() > THUMBNAIL or size.height() > THUMBNAIL):
                reader.setScaledSize(size.scaled(QSize(THUMBNAIL, THUMBNAIL), Qt.AspectRatioMode.KeepAspectRatio))
            image = reader.read()
        self._set_thumbnail(image, self.tr("The control image"))

    def _set_thumbnail(self, image: QImage, tip: str) -> None:
        if image.isNull():
            self.thumbnail.setPixmap(QPixmap())
            self.thumbnail.setText(self.tr("No image"))
            self.thumbnail.setToolTip("")
            return
        if image.width() > THUMBNAIL or image.height() > THUMBNAIL:
            image = image.scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        self.thumbnail.setPixmap(QPixmap.fromImage(image))
        self.thumbnail.setToolTip(tip)

    # -- editing -----------------------------------------------------------------------------------------------

    def _on_edited(self, *_args: Any) -> None:
        if self._filling:
            return
        self._raw = None
        self._update_visibility()
        self.check()
        self.changed.emit()

    def _update_visibility(self) -> None:
        self.thresholds.setVisible(self.preprocess.currentData() == "canny")
        self.annotator.setVisible(self.preprocess.currentData() == "depth")
        self.weight.setEnabled(self.enabled_box.isChecked())

    def set_models(self, models: list[str] | list[tuple[str, str]]) -> None:
        """The ControlNets offered in the model box: references, or ``(label, reference)`` as
        ``host.addon_models`` gives them (the text stays editable; what it holds is kept)."""
        self._offer(self.model, models)

    def set_annotators(self, models: list[str] | list[tuple[str, str]]) -> None:
        """The depth models offered in the depth model box (as :meth:`set_models`)."""
        self._offer(self.annotator, models)

    def _offer(self, box: QComboBox, models: list[str] | list[tuple[str, str]]) -> None:
        text = _reference(box)
        self._filling = True
        try:
            box.clear()
            for model in models:
                label, ref = (model, model) if isinstance(model, str) else model
                box.addItem(label, ref)
                box.setItemData(box.count() - 1, ref, Qt.ItemDataRole.ToolTipRole)
            box.setCurrentIndex(-1)
            box.setCurrentText(text)
        finally:
            self._filling = False

    def _choose(self, box: QComboBox, index: int) -> None:
        """An item chosen from the list: the box shows (and the unit gets) its reference."""
        ref = box.itemData(index)
        if isinstance(ref, str) and box.currentText() != ref:
            box.setEditText(ref)

    @Slot()
    def _browse_model_folder(self) -> None:  # never called by tests: opens a modal dialog
        name = QFileDialog.getExistingDirectory(self, self.tr("ControlNet model folder"))
        if name:
            self.model.setCurrentText(name)

    @Slot()
    def _browse_model_file(self) -> None:  # never called by tests: opens a modal dialog
        name, _ = QFileDialog.getOpenFileName(self, self.tr("ControlNet model file"), "",
                                              self.tr("ControlNet weights (*.safetensors);;All files (*)"))
        if name:
            self.model.setCurrentText(name)

    @Slot()
    def _browse_image(self) -> None:  # never called by tests: opens a modal dialog
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Control image"), "",
                                              self.tr("Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)"))
        if name:
            self.set_image_path(Path(name))


def _reference(box: QComboBox) -> str:
    """What an editable model box holds: the reference of the item whose label it shows, else its text."""
    text = box.currentText().strip()
    index = box.currentIndex()
    if index >= 0 and text == box.itemText(index).strip():
        ref = box.itemData(index)
        if isinstance(ref, str):
            return ref
    return text


class ControlNetEditor(QWidget):
    """The panel's ControlNet units (up to three rows), with their map previews and the map editor.

    ``host`` is the panel's :class:`~desktop.api.PanelHost` (previews are jobs; edited maps go into its storage
    folder; the model boxes offer its ``addon_models``); ``params`` returns the panel's current params (called while
    :meth:`units` does not check the rows). ``canvas`` returns the file of the panel's current picture, or None;
    ``has_canvas`` whether there is one (cheap: "From canvas" is enabled by it; call :meth:`update_canvas` when it
    may have changed).
    """

    changed = Signal()

    def __init__(self, host: PanelHost, params: Callable[[], Any], parent: QWidget | None = None, *,
                 canvas: Callable[[], Path | None] | None = None,
                 has_canvas: Callable[[], bool] | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self._has_canvas = has_canvas
        self._choices: dict[str, list[tuple[str, str]]] | None = None  # add-on kind: models, read on show
        self.setObjectName("controlnets")
        self.setAccessibleName(self.tr("ControlNets"))
        self.host = host
        self._params = params
        self._lenient = 0
        self.rows: list[ControlUnitRow] = []
        self._previews: dict[str, tuple[ControlUnitRow, bool]] = {}  # job id: (row, open the editor after)
        self.map_dialog: MapEditDialog | None = None
        """The map editor last opened (tests drive it)."""
        self.follower = JobFollower(host, self)
        self.follower.finished.connect(self._on_preview_finished)
        self.follower.failed.connect(self._on_preview_failed)
        self.follower.cancelled.connect(self._on_preview_cancelled)
        self.add_button = QPushButton(self.tr("Add ControlNet"), self)
        self.add_button.setObjectName("controlnet_add")
        self.add_button.setAccessibleName(self.tr("Add ControlNet"))
        self.add_button.setToolTip(self.tr("Guide the composition with a map: edges, depth… (at most %1)")
                                   .replace("%1", str(MAX_UNITS)))
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._rows_layout)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self.add_unit)
        self._update_buttons()

    # -- rows --------------------------------------------------------------------------------------------------

    @Slot()
    def add_unit(self, text: str | None = None) -> ControlUnitRow | None:
        """Add a row (empty, or showing ``text``); None past the maximum."""
        if len(self.rows) >= MAX_UNITS:
            return None
        row = ControlUnitRow(len(self.rows) + 1, self)
        if isinstance(text, str):
            row.set_text(text)
        else:
            row.check()
        row.changed.connect(self.changed)
        row.remove_requested.connect(self.remove_unit)
        row.preview_requested.connect(self.preview)
        row.edit_requested.connect(self.edit_map)
        row.canvas_requested.connect(self.use_canvas)
        self._offer_models(row, self.refresh_models() if self.isVisible() else None)
        row.canvas_button.setEnabled(self._canvas_available())
        self.rows.append(row)
        self._rows_layout.addWidget(row)
        if self.isVisible():
            row.show()  # at once (a layout shows a new child only once events are processed)
        self._update_buttons()
        self.changed.emit()
        return row

    @Slot(object)
    def remove_unit(self, row: ControlUnitRow) -> None:
        if row not in self.rows:
            return
        self.rows.remove(row)
        self._rows_layout.removeWidget(row)
        row.deleteLater()
        for number, other in enumerate(self.rows, start=1):
            other.set_number(number)
            other.check()
        self._update_buttons()
        self.changed.emit()

    def _update_buttons(self) -> None:
        self.add_button.setEnabled(len(self.rows) < MAX_UNITS)

    # -- params ------------------------------------------------------------------------------------------------

    def texts(self) -> list[str]:
        """Every row's text, as it is (not checked)."""
        return [row.text() for row in self.rows]

    def units(self) -> list[str]:
        """Every row's text; :class:`ParamError` for the first row that is not a valid unit (every row shows its
        own problem)."""
        if self._lenient:
            return self.texts()
        errors = [row.check() for row in self.rows]
        first = next((error for error in errors if error is not None), None)
        if first is not None:
            raise first
        return self.texts()

    def set_units(self, texts: list[str]) -> None:
        """Replace the rows with these units (as ``ImageParams.controlnets`` carries them)."""
        for row in list(self.rows):
            self.remove_unit(row)
        for text in texts[:MAX_UNITS]:
            self.add_unit(str(text))

    def set_models(self, models: list[str] | list[tuple[str, str]]) -> None:
        """Offer these models in every row's model box (each stays a free text field)."""
        for row in self.rows:
            row.set_models(models)

    # -- add-on models -----------------------------------------------------------------------------------------

    def refresh_models(self) -> dict[str, list[tuple[str, str]]]:
        """Read the ControlNets and depth models usable now (``host.addon_models``) and offer them in every row."""
        choices: dict[str, list[tuple[str, str]]] = {}
        for kind in (CONTROLNET_KIND, DEPTH_KIND):
            try:
                choices[kind] = list(self.host.addon_models(kind))
            except (StudioloError, OSError):  # a host that lists none: the boxes stay free text fields
                log.warning("could not list the %s models", kind, exc_info=True)
                choices[kind] = []
        self._choices = choices
        for row in self.rows:
            self._offer_models(row, choices)
        return choices

    def _offer_models(self, row: ControlUnitRow, choices: dict[str, list[tuple[str, str]]] | None) -> None:
        choices = self._choices if choices is None else choices
        if choices is not None:
            row.set_models(choices.get(CONTROLNET_KIND, []))
            row.set_annotators(choices.get(DEPTH_KIND, []))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt)
        super().showEvent(event)
        self.refresh_models()  # models imported or downloaded meanwhile show up
        self.update_canvas()

    # -- from canvas -------------------------------------------------------------------------------------------

    def _canvas_available(self) -> bool:
        if self._has_canvas is not None:
            return bool(self._has_canvas())
        return self._canvas is not None

    @Slot()
    def update_canvas(self) -> None:
        """Enable "From canvas" in every row when the panel has a current picture."""
        available = self._canvas_available()
        for row in self.rows:
            row.canvas_button.setEnabled(available)

    @Slot(object)
    def use_canvas(self, row: ControlUnitRow) -> Path | None:
        """Make the panel's current picture the row's control image; its file, or None (the problem shown)."""
        try:
            path = self._canvas() if self._canvas is not None else None
        except (StudioloError, OSError) as exc:
            row.show_error(str(exc))
            return None
        if path is None:
            row.show_error(self.tr("There is no picture in the panel yet: generate one, or load an init image."))
            self.update_canvas()
            return None
        if row in self.rows:
            row.set_image_path(Path(path))
        return Path(path)

    @contextlib.contextmanager
    def _not_checking(self) -> Iterator[None]:
        self._lenient += 1
        try:
            yield
        finally:
            self._lenient -= 1

    # -- map preview -------------------------------------------------------------------------------------------

    @Slot(object)
    def preview(self, row: ControlUnitRow, edit_after: bool = False) -> str | None:
        """Submit a ``control_map`` job for this row's unit; its map shows in the row's thumbnail when it ends.
        Returns the job id, or None (the problem shown under the row)."""
        try:
            unit = row.preview_unit()  # a disabled unit's map can still be looked at
        except ParamError:
            return None
        try:
            with self._not_checking():
                base = self._params()
            params = replace(base, mode=PREVIEW_MODE, controlnets=[unit], batch_size=1, batch_count=1,
                             init_image=None, mask_image=None)
            job_id = self.follower.submit(params)
        except ParamError as exc:
            row.show_error(f"{exc.allowed}." + (f" {exc.hint}" if exc.hint else ""))
            return None
        except (StudioloError, OSError) as exc:
            row.show_error(str(exc))
            return None
        self._previews[job_id] = (row, edit_after)
        row.set_busy(True)
        row.show_error("")
        return job_id

    def _ended(self, job_id: str) -> tuple[ControlUnitRow, bool] | None:
        found = self._previews.pop(job_id, None)
        if found is None or found[0] not in self.rows:
            return None
        found[0].set_busy(False)
        return found

    @Slot(str, object)
    def _on_preview_finished(self, job_id: str, outputs: object) -> None:
        found = self._ended(job_id)
        if found is None:
            return
        row, edit_after = found
        images = [o for o in (outputs or ()) if isinstance(o, ImageOutput)]  # type: ignore[union-attr]
        if not images:
            row.show_error(self.tr("The preview made no map."))
            return
        row.set_map(to_qimage(images[0].image))
        if edit_after:
            self.edit_map(row)

    @Slot(str, str)
    def _on_preview_failed(self, job_id: str, message: str) -> None:
        found = self._ended(job_id)
        if found is not None:
            found[0].show_error(message)

    @Slot(str, object)
    def _on_preview_cancelled(self, job_id: str, _partial: object) -> None:
        self._ended(job_id)

    # -- map editing -------------------------------------------------------------------------------------------

    @Slot(object)
    def edit_map(self, row: ControlUnitRow) -> MapEditDialog | None:
        """Open the row's map in the map editor (its image as it is without a preprocessor; otherwise the map is
        previewed first and the editor opens when it comes)."""
        image = row.map_image()
        if image.isNull():
            if row.unit().preprocess != "none":
                self.preview(row, edit_after=True)
                return None
            path = row.image.text().strip()
            reader = QImageReader(str(Path(path).expanduser()))
            reader.setAutoTransform(True)
            image = reader.read() if path else QImage()
            if image.isNull():
                row.show_error(self.tr("Choose a readable control image first."))
                return None
        dialog = MapEditDialog(image, self)
        self.map_dialog = dialog
        dialog.accepted.connect(lambda: self._save_map(row, dialog))
        dialog.open()
        return dialog

    def _save_map(self, row: ControlUnitRow, dialog: MapEditDialog) -> Path | None:
        """Write the edited map into the panel's storage folder (one small PNG, on the GUI thread as the
        inpainting mask is) and make it the unit's image, used as it is."""
        image = dialog.map_image()
        try:
            path = save_png(png_bytes(image), self.host.storage.directory, MAP_PREFIX)
        except OSError as exc:
            row.show_error(self.tr("Could not save the map: %1").replace("%1", str(exc)))
            return None
        if row not in self.rows:
            return path
        row.set_image_path(path, preprocess="none")
        row.set_map(image)
        return path
