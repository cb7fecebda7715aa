"""The image panel's viewer: a zoomable, pannable image (wheel, buttons, fit to window, 100 %), and the strip of
this session's results.

Also the small conversions the panel needs between PIL images, QImages and PNG files. Imports Qt and Pillow only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

ZOOM_STEP = 1.25
MIN_ZOOM = 1 / 32
MAX_ZOOM = 32.0
THUMBNAIL = 96


# ----------------------------------------------------------------------------------------------- conversions


def is_pil_image(value: object) -> bool:
    """Whether ``value`` looks like a PIL image (checked without importing PIL)."""
    return hasattr(value, "convert") and hasattr(value, "size") and hasattr(value, "mode")


def to_qimage(image: Any) -> QImage:
    """A PIL image or a QImage as a QImage of its own (a copy, so the source may go)."""
    if isinstance(image, QImage):
        return image.copy()
    rgba = image.convert("RGBA")
    data = rgba.tobytes()
    return QImage(data, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888).copy()


def png_bytes(image: Any) -> bytes:
    """A PIL image or a QImage encoded as PNG."""
    if isinstance(image, QImage):
        array = QByteArray()
        buffer = QBuffer(array)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.save(buffer, "PNG"):
            raise OSError("could not encode the image as PNG")
        buffer.close()
        return bytes(array.data())
    import io

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def save_png(data: bytes, directory: Path, prefix: str) -> Path:
    """Write PNG bytes under ``directory`` as ``PREFIX-HASH.png`` (same content, same file; written atomically)."""
    path = directory / f"{prefix}-{hashlib.sha256(data).hexdigest()[:20]}.png"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------------ view


class ImageView(QGraphicsView):
    """One image, fitted to the view or zoomed (wheel, :meth:`zoom_in`, :meth:`zoom_out`, :meth:`actual_size`);
    drag to pan. While in fit mode the image follows the view's size. ``zoom_changed`` carries the new scale."""

    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("image_view")
        self.setAccessibleName(self.tr("Result image"))
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self._image = QImage()
        self._fit = True
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAcceptDrops(False)  # dropped files go to the panel
        self.setMinimumSize(128, 128)

    # -- content ---------------------------------------------------------------------------------------------

    def set_image(self, image: Any) -> None:
        """Show a PIL image or a QImage; keeps the zoom unless the view is fitting."""
        self._image = to_qimage(image)
        self._item.setPixmap(QPixmap.fromImage(self._image))
        self._scene.setSceneRect(QRectF(self._image.rect()))
        if self._fit:
            self._apply_fit()
        self.viewport().update()

    def clear(self) -> None:
        """Show nothing."""
        self._image = QImage()
        self._item.setPixmap(QPixmap())
        self.viewport().update()

    def image(self) -> QImage:
        """The image shown (null when none)."""
        return self._image

    # -- zoom ------------------------------------------------------------------------------------------------

    def zoom(self) -> float:
        """The current scale: 1.0 is one image pixel per screen pixel."""
        return self.transform().m11()

    def is_fitting(self) -> bool:
        """Whether the image follows the view's size."""
        return self._fit

    @Slot()
    def zoom_in(self) -> None:
        self._zoom_by(ZOOM_STEP)

    @Slot()
    def zoom_out(self) -> None:
        self._zoom_by(1 / ZOOM_STEP)

    @Slot()
    def fit(self) -> None:
        """Fit the whole image in the view, and keep it fitted as the view resizes."""
        self._fit = True
        self._apply_fit()

    @Slot()
    def actual_size(self) -> None:
        """One image pixel per screen pixel (100 %)."""
        self._fit = False
        self.resetTransform()
        self.zoom_changed.emit(self.zoom())

    def _zoom_by(self, factor: float) -> None:
        self._fit = False
        target = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom() * factor))
        if target != self.zoom():
            self.scale(target / self.zoom(), target / self.zoom())
            self.zoom_changed.emit(self.zoom())

    def _apply_fit(self) -> None:
        if self._image.isNull():
            return
        self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom())

    # -- events ----------------------------------------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt)
        delta = event.angleDelta().y()
        if delta == 0:
            super().wheelEvent(event)
            return
        self._zoom_by(ZOOM_STEP if delta > 0 else 1 / ZOOM_STEP)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        if self._fit:
            self._apply_fit()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 (Qt)
        if self._image.isNull():
            painter.save()
            painter.resetTransform()
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.tr("Results appear here."))
            painter.restore()


def _tool_button(parent: QWidget, theme: str, fallback: str, name: str, accessible: str,
                 tip: str) -> QToolButton:
    """An icon button (the theme's icon, else a short text) with an accessible name and a tooltip."""
    button = QToolButton(parent)
    theme_icon = getattr(QIcon.ThemeIcon, theme, None)
    icon = QIcon.fromTheme(theme_icon) if theme_icon is not None else QIcon()
    if icon.isNull():
        button.setText(fallback)
    else:
        button.setIcon(icon)
    button.setObjectName(name)
    button.setAccessibleName(accessible)
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button


class ImageViewer(QWidget):
    """An :class:`ImageView` with zoom buttons (zoom out, zoom in, fit, 100 %) and the zoom shown as a percentage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView(self)
        self.zoom_out_button = _tool_button(self, "ZoomOut", "−", "zoom_out", self.tr("Zoom out"),
                                            self.tr("Zoom out (mouse wheel)"))
        self.zoom_in_button = _tool_button(self, "ZoomIn", "+", "zoom_in", self.tr("Zoom in"),
                                           self.tr("Zoom in (mouse wheel)"))
        self.fit_button = _tool_button(self, "ZoomFitBest", self.tr("Fit"), "zoom_fit",
                                       self.tr("Fit to window"), self.tr("Fit the image to the window"))
        self.actual_button = _tool_button(self, "ZoomOriginal", "100%", "zoom_actual",
                                          self.tr("Actual size"), self.tr("Show the image at 100 %"))
        self.zoom_label = QLabel(self)
        self.zoom_label.setObjectName("zoom_label")
        self.zoom_label.setAccessibleName(self.tr("Zoom level"))
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for button in (self.zoom_out_button, self.zoom_in_button, self.fit_button, self.actual_button):
            bar.addWidget(button)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)
        self.zoom_out_button.clicked.connect(self.view.zoom_out)
        self.zoom_in_button.clicked.connect(self.view.zoom_in)
        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button.clicked.connect(self.view.actual_size)
        self.view.zoom_changed.connect(self._show_zoom)

    def set_image(self, image: Any) -> None:
        """Show a PIL image or a QImage."""
        self.view.set_image(image)
        self._show_zoom()

    @Slot()
    def _show_zoom(self) -> None:
        shown = not self.view.image().isNull()
        self.zoom_label.setText(f"{self.view.zoom() * 100:.0f} %" if shown else "")


class ResultStrip(QListWidget):
    """This session's results as a row of thumbnails; clicking one makes it current. Holds the outputs
    (anything with ``.image``, a PIL image, and ``.partial``) in the strip's order."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("results")
        self.setAccessibleName(self.tr("Results of this session"))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setFixedHeight(THUMBNAIL + 28)
        self.setAcceptDrops(False)
        self._outputs: list[Any] = []

    def add_output(self, output: Any) -> int:
        """Append a result; return its row."""
        self._outputs.append(output)
        thumb = to_qimage(output.image).scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.SmoothTransformation)
        item = QListWidgetItem(QIcon(QPixmap.fromImage(thumb)), "")
        label = self.tr("Partial result %1") if getattr(output, "partial", False) else self.tr("Result %1")
        item.setToolTip(label.replace("%1", str(len(self._outputs))))
        item.setData(Qt.ItemDataRole.AccessibleTextRole, item.toolTip())
        self.addItem(item)
        return self.count() - 1

    def output(self, row: int) -> Any | None:
        """The result in this row, or None."""
        return self._outputs[row] if 0 <= row < len(self._outputs) else None

    def outputs(self) -> list[Any]:
        """Every result, oldest first."""
        return list(self._outputs)
