"""The inpainting mask painter: the init image with a brush painted over it (white in the mask = repaint).

:class:`MaskPainter` shows the init image fitted to the widget and a translucent red overlay where the mask is set;
the left mouse button paints (or erases, in erase mode) with a round brush whose size is in image pixels.
:class:`MaskEditor` adds the tools: brush size (slider and spin box), erase, clear.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

MASK_COLOR = QColor(255, 40, 40, 255)
OVERLAY_OPACITY = 0.5
MAX_BRUSH = 512


def _pixel_bytes(image: QImage) -> bytes:
    """The pixels of an 8-bit image, row after row, without the padding at the end of each row."""
    data = bytes(image.constBits())
    width, stride = image.width(), image.bytesPerLine()
    if stride == width:
        return data[: width * image.height()]
    return b"".join(data[y * stride: y * stride + width] for y in range(image.height()))


def draw_stroke(image: QImage, start: QPointF, end: QPointF, color: Any, width: int,
                mode: QPainter.CompositionMode = QPainter.CompositionMode.CompositionMode_SourceOver) -> None:
    """A round-capped stroke from ``start`` to ``end`` (a dot when they are equal) on ``image``, not antialiased:
    a mask or a control map stays strictly two-coloured."""
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.setCompositionMode(mode)
    painter.setPen(QPen(color, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
    if start == end:
        painter.drawPoint(start)
    else:
        painter.drawLine(start, end)
    painter.end()


class MaskPainter(QWidget):
    """The init image and its mask. Paint with the left button; ``mask_changed`` is emitted after every stroke
    and on clear. The mask always has the init image's size."""

    mask_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mask_painter")
        self.setAccessibleName(self.tr("Init image and inpainting mask"))
        self.setMouseTracking(True)
        self.setMinimumSize(128, 128)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image = QImage()
        self._overlay = QImage()  # ARGB: opaque where the mask is set, transparent elsewhere
        self._brush = 32
        self._erase = False
        self._painting_enabled = True
        self._last: QPointF | None = None
        self._hover: QPointF | None = None
        self._revision = 0

    # -- state -----------------------------------------------------------------------------------------------

    def set_image(self, image: QImage) -> None:
        """Show a new init image; the mask starts empty."""
        self._image = image.convertToFormat(QImage.Format.Format_RGB32) if not image.isNull() else QImage()
        self._overlay = QImage(self._image.size(), QImage.Format.Format_ARGB32_Premultiplied)
        self._overlay.fill(Qt.GlobalColor.transparent)
        self._changed()

    def image(self) -> QImage:
        """The init image (null when none)."""
        return self._image

    def brush_size(self) -> int:
        """The brush's diameter in image pixels."""
        return self._brush

    @Slot(int)
    def set_brush_size(self, size: int) -> None:
        """Set the brush's diameter in image pixels (1 to MAX_BRUSH)."""
        self._brush = max(1, min(MAX_BRUSH, int(size)))
        self.update()

    def erasing(self) -> bool:
        """Whether the brush erases."""
        return self._erase

    @Slot(bool)
    def set_erasing(self, erase: bool) -> None:
        """Erase mode: the brush removes the mask instead of adding to it."""
        self._erase = bool(erase)

    def set_painting_enabled(self, enabled: bool) -> None:
        """Off: the image is only shown (image-to-image); on: the mouse paints the mask (inpainting)."""
        self._painting_enabled = enabled
        self._last = None
        self.update()

    @Slot()
    def clear_mask(self) -> None:
        """Remove the whole mask."""
        if not self._overlay.isNull():
            self._overlay.fill(Qt.GlobalColor.transparent)
            self._changed()

    def revision(self) -> int:
        """A number that changes whenever the mask or image does (for caching what was saved)."""
        return self._revision

    def has_mask(self) -> bool:
        """Whether any pixel of the mask is set."""
        if self._overlay.isNull():
            return False
        data = _pixel_bytes(self._overlay.convertToFormat(QImage.Format.Format_Alpha8))
        return data.count(0) != len(data)

    def mask(self) -> QImage:
        """The mask as an 8-bit grayscale image of the init image's size: 255 (white) to repaint, 0 to keep."""
        if self._overlay.isNull():
            return QImage()
        alpha = self._overlay.convertToFormat(QImage.Format.Format_Alpha8)
        alpha.reinterpretAsFormat(QImage.Format.Format_Grayscale8)
        return alpha

    def set_mask(self, mask: QImage) -> None:
        """Replace the mask (any image: its brightness, scaled to the init image's size; >= 50 % is set)."""
        if self._image.isNull() or mask.isNull():
            return
        gray = mask.convertToFormat(QImage.Format.Format_Grayscale8)
        if gray.size() != self._image.size():
            gray = gray.scaled(self._image.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                               Qt.TransformationMode.FastTransformation)
        data = bytes(gray.constBits())
        threshold = bytes(255 if v >= 128 else 0 for v in range(256))
        binary = QImage(data.translate(threshold), gray.width(), gray.height(), gray.bytesPerLine(),
                        QImage.Format.Format_Grayscale8).copy()
        overlay = QImage(self._image.size(), QImage.Format.Format_ARGB32_Premultiplied)
        overlay.fill(MASK_COLOR)
        overlay.setAlphaChannel(binary)
        self._overlay = overlay
        self._changed()

    def _changed(self) -> None:
        self._revision += 1
        self.update()
        self.mask_changed.emit()

    # -- geometry --------------------------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the image is drawn in the widget: fitted, centred, keeping its aspect ratio."""
        if self._image.isNull():
            return QRectF()
        size = QSize(self._image.size()).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def map_to_image(self, point: QPointF) -> QPointF:
        """A widget position as image coordinates."""
        rect = self.image_rect()
        if rect.isEmpty():
            return QPointF()
        return QPointF((point.x() - rect.x()) * self._image.width() / rect.width(),
                       (point.y() - rect.y()) * self._image.height() / rect.height())

    def map_from_image(self, point: QPointF) -> QPoint:
        """Image coordinates as a widget position."""
        rect = self.image_rect()
        if rect.isEmpty():
            return QPoint()
        return QPointF(rect.x() + point.x() * rect.width() / self._image.width(),
                       rect.y() + point.y() * rect.height() / self._image.height()).toPoint()

    # -- painting --------------------------------------------------------------------------------------------

    def _stroke(self, start: QPointF, end: QPointF) -> None:
        mode = (QPainter.CompositionMode.CompositionMode_Clear if self._erase
                else QPainter.CompositionMode.CompositionMode_Source)
        draw_stroke(self._overlay, start, end, MASK_COLOR, self._brush, mode)
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if (event.button() == Qt.MouseButton.LeftButton and self._painting_enabled
                and not self._overlay.isNull()):
            point = self.map_to_image(event.position())
            self._last = point
            self._stroke(point, point)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        self._hover = event.position()
        if self._last is not None:
            point = self.map_to_image(event.position())
            self._stroke(self._last, point)
            self._last = point
            event.accept()
        else:
            self.update()
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            point = self.map_to_image(event.position())
            self._stroke(self._last, point)
            self._last = None
            self._changed()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: Any) -> None:  # noqa: N802 (Qt)
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt)
        event.ignore()  # dropped files go to the panel

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        rect = self.image_rect()
        if self._image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.tr("Drop an image here, or load an init image."))
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(rect, self._image)
        painter.setOpacity(OVERLAY_OPACITY)
        painter.drawImage(rect, self._overlay)
        if self._painting_enabled and self._hover is not None and rect.contains(self._hover):
            painter.setOpacity(1.0)
            radius = self._brush * rect.width() / self._image.width() / 2
            painter.setPen(QPen(QColor(255, 255, 255), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._hover, radius, radius)


class MaskEditor(QWidget):
    """The :class:`MaskPainter` with its tools: brush size, erase, clear. :meth:`set_tools_visible` hides the
    tools when only the image is shown (image-to-image)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.painter = MaskPainter(self)
        self.tools = QWidget(self)
        self.tools.setObjectName("mask_tools")
        self.brush_slider = QSlider(Qt.Orientation.Horizontal, self.tools)
        self.brush_slider.setObjectName("brush_slider")
        self.brush_spin = QSpinBox(self.tools)
        self.brush_spin.setObjectName("brush_size")
        for widget in (self.brush_slider, self.brush_spin):
            widget.setRange(1, MAX_BRUSH)
            widget.setValue(self.painter.brush_size())
            widget.setAccessibleName(self.tr("Brush size"))
            widget.setToolTip(self.tr("Brush diameter in image pixels"))
        self.brush_spin.setSuffix(self.tr(" px"))
        self.erase_box = QCheckBox(self.tr("Erase"), self.tools)
        self.erase_box.setObjectName("mask_erase")
        self.erase_box.setAccessibleName(self.tr("Erase mode"))
        self.erase_box.setToolTip(self.tr("Remove the mask where you paint"))
        self.clear_button = QToolButton(self.tools)
        self.clear_button.setText(self.tr("Clear mask"))
        self.clear_button.setObjectName("mask_clear")
        self.clear_button.setAccessibleName(self.tr("Clear mask"))
        self.clear_button.setToolTip(self.tr("Remove the whole mask"))
        self.hint = QLabel(self.tr("Paint over what should be repainted."), self.tools)
        self.hint.setWordWrap(True)
        tools = QHBoxLayout(self.tools)
        tools.setContentsMargins(0, 0, 0, 0)
        tools.addWidget(QLabel(self.tr("Brush"), self.tools))
        tools.addWidget(self.brush_slider, 1)
        tools.addWidget(self.brush_spin)
        tools.addWidget(self.erase_box)
        tools.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.painter, 1)
        layout.addWidget(self.tools)
        layout.addWidget(self.hint)
        self.brush_slider.valueChanged.connect(self.brush_spin.setValue)
        self.brush_spin.valueChanged.connect(self.brush_slider.setValue)
        self.brush_spin.valueChanged.connect(self.painter.set_brush_size)
        self.erase_box.toggled.connect(self.painter.set_erasing)
        self.clear_button.clicked.connect(self.painter.clear_mask)

    def set_tools_visible(self, visible: bool) -> None:
        """Show the brush tools and let the mouse paint (inpainting), or just the image (image-to-image)."""
        self.tools.setVisible(visible)
        self.hint.setVisible(visible)
        self.painter.set_painting_enabled(visible)

