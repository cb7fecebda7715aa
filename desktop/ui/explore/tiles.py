"""The pictures of a grid's cells, drawn off the GUI thread (a ``thumbnails`` task of :mod:`desktop.ui.tasks`):
an image output scaled down by PIL, an audio output's waveform from its samples, or a saved file's gallery tile.
Only QImage is made here (never QPixmap, which belongs to the GUI thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from desktop.ui.tasks import TaskState

__all__ = ["TILE", "WAVE_WIDTH", "WAVE_HEIGHT", "cell_tile", "image_tile", "waveform_tile"]

TILE = 160
"""An image cell's picture: at most this many pixels wide and high."""
WAVE_WIDTH, WAVE_HEIGHT = 220, 56
"""An audio cell's waveform, in pixels."""
_BACKGROUND = QColor(24, 26, 32)  # the audio panel's waveform colours (desktop/ui/thumbnails.py)
_WAVE = QColor(90, 170, 240)
_AXIS = QColor(70, 74, 84)


def image_tile(image: Any, size: int = TILE) -> QImage:
    """A PIL image scaled to fit ``size`` × ``size`` (shrunk by PIL first, so a large image is never converted
    whole; a tiny one is enlarged with crisp pixels)."""
    small = image.copy()
    small.thumbnail((size, size))
    rgba = small.convert("RGBA")
    picture = QImage(rgba.tobytes(), rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888).copy()
    if picture.width() * 2 <= size and picture.height() * 2 <= size:
        picture = picture.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.FastTransformation)
    return picture


def waveform_tile(samples: Any, width: int = WAVE_WIDTH, height: int = WAVE_HEIGHT) -> QImage:
    """The waveform of ``samples`` (frames, or frames × channels, in [-1, 1]): each column's minimum and maximum as
    a vertical line. Silence or no samples: the axis only."""
    data = np.nan_to_num(np.asarray(samples, dtype=np.float32))
    if data.ndim == 2 and data.shape[1]:
        low, high = data.min(axis=1), data.max(axis=1)
    elif data.ndim == 2:
        low = high = np.zeros(0, np.float32)
    else:
        low = high = data.reshape(-1)
    picture = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    picture.fill(_BACKGROUND)
    painter = QPainter(picture)
    try:
        middle = (height - 1) / 2.0
        painter.setPen(QPen(_AXIS, 1))
        painter.drawLine(0, int(middle), width - 1, int(middle))
        frames = len(low)
        if frames:
            columns = min(width, frames)
            starts = (np.arange(columns, dtype=np.int64) * frames) // columns
            mins = np.clip(np.minimum.reduceat(low, starts), -1.0, 1.0)
            maxs = np.clip(np.maximum.reduceat(high, starts), -1.0, 1.0)
            painter.setPen(QPen(_WAVE, 1))
            for column, (bottom, top) in enumerate(zip(mins.tolist(), maxs.tolist(), strict=True)):
                x = int(column * width / columns)
                painter.drawLine(x, int(middle - top * middle), x, int(middle - bottom * middle))
    finally:
        painter.end()
    return picture


def cell_tile(kind: str, outputs: list[Any], paths: list[Path], _state: TaskState) -> QImage | None:
    """The picture of a done cell (runs on a task): from its first output when it is in memory, else from its
    first saved file (the gallery's tile); None when it has neither (a text cell, an output with no picture)."""
    output = outputs[0] if outputs else None
    if kind == "image" and getattr(output, "image", None) is not None:
        return image_tile(output.image)
    if kind == "audio" and getattr(output, "samples", None) is not None:
        return waveform_tile(output.samples)
    if paths and kind in ("image", "audio"):
        from desktop.ui.gallery.thumbnails import render_thumbnail

        tile = render_thumbnail(paths[0], kind, TILE if kind == "image" else WAVE_WIDTH)
        return None if tile.image.isNull() else tile.image
    return None
