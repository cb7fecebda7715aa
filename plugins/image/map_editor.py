"""The control map editor: a map painted over in white or black (brush size, undo), for the ControlNet units of
:mod:`plugins.image.control_editor` ("Edit map…")."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Slot
from PySide6.QtGui import QImage, QKeySequence, QMouseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from plugins.image.mask_painter import MAX_BRUSH, MaskPainter, draw_stroke

__all__ = ["MapEditDialog", "MapPainter"]


class MapPainter(MaskPainter):
    """The mask painter's canvas and mouse handling, painting straight onto the map in white or black, with undo."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("map_painter")
        self.setAccessibleName(self.tr("Control map"))
        self._white = True
        self._undo: list[QImage] = []

    def set_map(self, image: QImage) -> None:
        self.set_image(image)
        self._undo.clear()

    @Slot(bool)
    def set_white(self, white: bool) -> None:
        """Paint white (True) or black."""
        self._white = bool(white)

    def can_undo(self) -> bool:
        return bool(self._undo)

    @Slot()
    def undo(self) -> None:
        """Take back the last stroke."""
        if self._undo:
            self._image = self._undo.pop()
            self._changed()

    def _stroke(self, start: QPointF, end: QPointF) -> None:
        color = Qt.GlobalColor.white if self._white else Qt.GlobalColor.black
        draw_stroke(self._image, start, end, color, self.brush_size())
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if event.button() == Qt.MouseButton.LeftButton and not self._image.isNull():
            self._undo.append(self._image.copy())
            del self._undo[:-20]  # the last 20 strokes
        super().mousePressEvent(event)


class MapEditDialog(QDialog):
    """A control map to paint over: white or black brush, its size, undo; Save or Cancel."""

    def __init__(self, image: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        tr = self.tr
        self.setObjectName("map_editor")
        self.setWindowTitle(tr("Edit control map"))
        self.painter = MapPainter(self)
        self.painter.set_map(image)
        self.white = QRadioButton(tr("White"), self)
        self.white.setObjectName("map_white")
        self.white.setChecked(True)
        self.black = QRadioButton(tr("Black"), self)
        self.black.setObjectName("map_black")
        self.brush_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.brush_spin = QSpinBox(self)
        self.brush_spin.setObjectName("map_brush_size")
        self.brush_spin.setSuffix(tr(" px"))
        for widget in (self.brush_slider, self.brush_spin):
            widget.setRange(1, MAX_BRUSH)
            widget.setValue(min(self.painter.brush_size(), 8))
            widget.setAccessibleName(tr("Brush size"))
        self.painter.set_brush_size(self.brush_spin.value())
        self.undo_button = QToolButton(self)
        self.undo_button.setObjectName("map_undo")
        self.undo_button.setText(tr("Undo"))
        self.undo_button.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_button.setToolTip(tr("Take back the last stroke (%1)")
                                    .replace("%1", QKeySequence(QKeySequence.StandardKey.Undo).toString()))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        tools = QHBoxLayout()
        tools.addWidget(self.white)
        tools.addWidget(self.black)
        tools.addWidget(QLabel(tr("Brush"), self))
        tools.addWidget(self.brush_slider, 1)
        tools.addWidget(self.brush_spin)
        tools.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.painter, 1)
        layout.addLayout(tools)
        layout.addWidget(self.buttons)
        self.brush_slider.valueChanged.connect(self.brush_spin.setValue)
        self.brush_spin.valueChanged.connect(self.brush_slider.setValue)
        self.brush_spin.valueChanged.connect(self.painter.set_brush_size)
        self.white.toggled.connect(self.painter.set_white)
        self.undo_button.clicked.connect(self.painter.undo)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.resize(max(320, min(image.width(), 768)), max(320, min(image.height(), 768) + 80))

    def map_image(self) -> QImage:
        """The map as painted."""
        return self.painter.image()
