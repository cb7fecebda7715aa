"""Small previews of a job's outputs for lists (the Activity dock): an image thumbnail, an audio waveform drawn
with QPainter from the samples, and the first words of a text."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap

from desktop.ui.output_view import to_qimage

__all__ = ["first_words", "image_thumbnail", "waveform_thumbnail"]

BACKGROUND = QColor(24, 26, 32)  # the audio panel's waveform colours (plugins/audio/waveform.py)
WAVE = QColor(90, 170, 240)
AXIS = QColor(70, 74, 84)


def image_thumbnail(image: Any, width: int, height: int) -> QPixmap:
    """A PIL image scaled to fit ``width`` × ``height``, keeping its aspect ratio (shrunk by PIL first, so a large
    image is never converted whole)."""
    small = image.copy()
    small.thumbnail((width * 2, height * 2))
    return QPixmap.fromImage(to_qimage(small)).scaled(width, height, Qt.AspectRatioMode.KeepAspectRatio,
                                                      Qt.TransformationMode.SmoothTransformation)


def waveform_thumbnail(samples: Any, width: int, height: int) -> QPixmap:
    """The waveform of ``samples`` (frames, or frames × channels, in [-1, 1]) as a ``width`` × ``height`` pixmap:
    the minimum and maximum of each column's slice, drawn as a vertical line. Silence or no samples: the axis."""
    data = np.nan_to_num(np.asarray(samples, dtype=np.float32))
    if data.ndim == 2 and data.shape[1]:
        low, high = data.min(axis=1), data.max(axis=1)
    elif data.ndim == 2:
        low = high = np.zeros(0, np.float32)
    else:
        low = high = data.reshape(-1)
    pixmap = QPixmap(width, height)
    pixmap.fill(BACKGROUND)
    painter = QPainter(pixmap)
    try:
        middle = (height - 1) / 2.0
        painter.setPen(QPen(AXIS, 1))
        painter.drawLine(QPointF(0, middle), QPointF(width - 1, middle))
        frames = len(low)
        if frames:
            columns = min(width, frames)
            starts = (np.arange(columns, dtype=np.int64) * frames) // columns
            mins = np.clip(np.minimum.reduceat(low, starts), -1.0, 1.0)
            maxs = np.clip(np.maximum.reduceat(high, starts), -1.0, 1.0)
            painter.setPen(QPen(WAVE, 1))
            for column, (bottom, top) in enumerate(zip(mins.tolist(), maxs.tolist(), strict=True)):
                x = column * width / columns
                painter.drawLine(QPointF(x, middle - top * middle), QPointF(x, middle - bottom * middle))
    finally:
        painter.end()
    return pixmap


def first_words(text: str, limit: int = 36) -> str:
    """The first words of ``text`` on one line, at most ``limit`` characters, cut at a word with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] if " " in line[:limit] else line[:limit]
    return cut + "…"
