"""The image panel's viewer: a zoomable, pannable image (wheel, fit to window, 100 %), and the strip of this
session's results (a thumbnail each, the params that made it on hover, "Compare with current" on right-click).

Also the small conversions the panel needs between PIL images, QImages and PNG files. Imports Qt and Pillow only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap, QResizeEvent, QTransform, QWheelEvent
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QWidget,
)

from desktop.api import VARY_STRONG, VARY_SUBTLE
from plugins.image.result_info import JobRecord, result_details, result_title

ZOOM_STEP = 1.25
MIN_ZOOM = 1 / 32
MAX_ZOOM = 32.0
THUMBNAIL = 64
"""The side of a thumbnail in the strip, in pixels: small, so the result itself keeps the room."""


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
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumSize(64, 48)  # small: the layout around it never has to squeeze it under its toolbar

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

    def follow(self, other: ImageView) -> None:
        """Show the same part of the picture as ``other``: its fit mode, or its scale and scroll position."""
        if other.is_fitting():
            self.fit()
            return
        self._fit = False
        scale = other.zoom()
        if self.transform() != QTransform.fromScale(scale, scale):
            self.setTransform(QTransform.fromScale(scale, scale))
            self.zoom_changed.emit(self.zoom())
        self.horizontalScrollBar().setValue(other.horizontalScrollBar().value())
        self.verticalScrollBar().setValue(other.verticalScrollBar().value())

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


class ResultStrip(QListWidget):
    """This session's results as a row of thumbnails; clicking one makes it current. Holds the outputs
    (anything with ``.image``, a PIL image, ``.partial`` and ``.metadata``) in the strip's order; each thumbnail's
    tooltip lists the params that made it. Right-click: "Compare with current" (``compare_requested(row)``),
    "Vary (subtle)" and "Vary (strong)" (``vary_requested(row, strength)``)."""

    compare_requested = Signal(int)
    """``(row)``: compare this result with the current one."""
    vary_requested = Signal(int, float)
    """``(row, strength)``: make a variation of this result (Vary subtle / strong)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("results")
        self.setAccessibleName(self.tr("Results of this session"))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setGridSize(QSize(THUMBNAIL + 6, THUMBNAIL + 6))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(THUMBNAIL + 8 + 2 * self.frameWidth() + self.horizontalScrollBar().sizeHint().height())
        self.setAcceptDrops(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._show_context_menu)
        self._outputs: list[Any] = []
        self._jobs: list[JobRecord | None] = []  # what made each result, row by row

    def add_output(self, output: Any, job: JobRecord | None = None) -> int:
        """Append a result (``job``: the params and model that made it, for the tooltip); return its row."""
        self._outputs.append(output)
        self._jobs.append(job)
        number = len(self._outputs)
        thumb = to_qimage(output.image).scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.SmoothTransformation)
        item = QListWidgetItem(QIcon(QPixmap.fromImage(thumb)), "")
        item.setToolTip(result_details(number, output, job))
        item.setData(Qt.ItemDataRole.AccessibleTextRole, result_title(number, output))
        self.addItem(item)
        return self.count() - 1

    def title(self, row: int) -> str:
        """The title of the result in this row ("Result 3 · seed 42"), or ""."""
        output = self.output(row)
        return result_title(row + 1, output) if output is not None else ""

    def context_menu(self, row: int) -> QMenu:
        """The menu of the result in this row (what a right-click opens)."""
        menu = QMenu(self)
        compare = menu.addAction(self.tr("Compare with current"))
        compare.setObjectName("compare_with_current")
        compare.setEnabled(self.output(row) is not None)
        compare.triggered.connect(lambda _checked=False: self.compare_requested.emit(row))
        for name, text, strength in (("vary_subtle", self.tr("Vary (subtle)"), VARY_SUBTLE),
                                     ("vary_strong", self.tr("Vary (strong)"), VARY_STRONG)):
            vary = menu.addAction(text)
            vary.setObjectName(name)
            vary.setEnabled(self.output(row) is not None)
            vary.triggered.connect(lambda _checked=False, s=strength: self.vary_requested.emit(row, s))
        return menu

    @Slot(QPoint)
    def _show_context_menu(self, pos: QPoint) -> None:  # the menu's action is tested through context_menu()
        item = self.itemAt(pos)
        if item is not None:
            menu = self.context_menu(self.row(item))
            menu.exec(self.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def output(self, row: int) -> Any | None:
        """The result in this row, or None."""
        return self._outputs[row] if 0 <= row < len(self._outputs) else None

    def job(self, row: int) -> JobRecord | None:
        """What the panel submitted for the result in this row (its params and model), or None."""
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def outputs(self) -> list[Any]:
        """Every result, oldest first."""
        return list(self._outputs)
