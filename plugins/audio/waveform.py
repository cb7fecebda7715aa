"""``WaveformView``: a clip's waveform (min/max peaks per pixel column), a playhead, click or drag to seek."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["WaveformView", "column_peaks"]

BACKGROUND = QColor(24, 26, 32)
WAVE = QColor(90, 170, 240)
AXIS = QColor(70, 74, 84)
PLAYHEAD = QColor(240, 90, 70)


def column_peaks(samples: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The minimum and maximum sample (over all channels) in each of ``columns`` equal slices of ``samples``.

    Fewer frames than columns: one column per frame. Empty: two empty arrays. NaN counts as silence."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 2 and data.shape[1] > 0:
        low, high = data.min(axis=1), data.max(axis=1)
    elif data.ndim == 2:
        low = high = np.zeros(0, np.float32)
    else:
        low = high = data.reshape(-1)
    frames = len(low)
    if frames == 0 or columns <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    columns = min(columns, frames)
    starts = (np.arange(columns, dtype=np.int64) * frames) // columns
    mins = np.nan_to_num(np.minimum.reduceat(low, starts))
    maxs = np.nan_to_num(np.maximum.reduceat(high, starts))
    return np.clip(mins, -1.0, 1.0), np.clip(maxs, -1.0, 1.0)


class WaveformView(QWidget):
    """Shows one clip. :meth:`set_clip` replaces it, :meth:`append` extends it (live previews),
    :meth:`set_position` moves the playhead (seconds). A click or drag emits :attr:`seek_requested` (seconds).

    Peaks are computed with NumPy when the clip or the widget's width changes, never while painting.
    """

    seek_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("waveform")
        self.setAccessibleName(self.tr("Waveform"))
        self.setToolTip(self.tr("Click or drag to move the playhead"))
        self.setMinimumHeight(80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._samples = np.zeros(0, np.float32)
        self._rate = 1
        self._position = 0.0
        self._peaks: tuple[np.ndarray, np.ndarray] | None = None
        self._peak_width = -1

    # -- the clip ---------------------------------------------------------------------------------------------

    def set_clip(self, samples: np.ndarray | None, sample_rate: int = 1) -> None:
        """Show these samples (``(frames,)`` or ``(frames, channels)``); None clears the view."""
        self._samples = np.zeros(0, np.float32) if samples is None else np.asarray(samples, np.float32)
        self._rate = max(1, int(sample_rate))
        self._position = 0.0
        self._invalidate()

    def append(self, samples: np.ndarray, sample_rate: int) -> None:
        """Add samples at the end (a preview chunk). A chunk of another rate or channel count starts afresh."""
        chunk = np.asarray(samples, np.float32)
        if len(self._samples) == 0 or sample_rate != self._rate or chunk.shape[1:] != self._samples.shape[1:]:
            self.set_clip(chunk, sample_rate)
            return
        self._samples = np.concatenate([self._samples, chunk])
        self._invalidate()

    def clear(self) -> None:
        self.set_clip(None)

    def samples(self) -> np.ndarray:
        return self._samples

    def frames(self) -> int:
        return len(self._samples)

    def duration(self) -> float:
        """The clip's length in seconds."""
        return len(self._samples) / self._rate

    def peaks(self) -> tuple[np.ndarray, np.ndarray]:
        """The (min, max) per pixel column at the current width (cached)."""
        width = max(1, self.width())
        if self._peaks is None or self._peak_width != width:
            self._peaks = column_peaks(self._samples, width)
            self._peak_width = width
        return self._peaks

    def _invalidate(self) -> None:
        self._peaks = None
        self.update()

    # -- the playhead ------------------------------------------------------------------------------------------

    def position(self) -> float:
        return self._position

    def set_position(self, seconds: float) -> None:
        """Move the playhead (seconds from the start, kept inside the clip)."""
        seconds = min(max(0.0, float(seconds)), self.duration())
        if seconds != self._position:
            self._position = seconds
            self.update()

    def _seconds_at(self, x: float) -> float:
        return min(max(0.0, x / max(1, self.width())), 1.0) * self.duration()

    # -- Qt ----------------------------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(600, 120)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        self._peaks = None
        super().resizeEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if event.button() == Qt.MouseButton.LeftButton and self.frames():
            self.seek_requested.emit(self._seconds_at(event.position().x()))
            event.accept()
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if event.buttons() & Qt.MouseButton.LeftButton and self.frames():
            self.seek_requested.emit(self._seconds_at(event.position().x()))
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        middle = self.height() / 2.0
        half = max(1.0, middle - 2.0)
        painter.setPen(QPen(AXIS, 1))
        painter.drawLine(QPointF(0, middle), QPointF(self.width(), middle))
        mins, maxs = self.peaks()
        if len(mins):
            painter.setPen(QPen(WAVE, 1))
            step = self.width() / len(mins)
            for column in range(len(mins)):  # one short vertical line per column
                x = column * step + step / 2.0
                painter.drawLine(QPointF(x, middle - float(maxs[column]) * half),
                                 QPointF(x, middle - float(mins[column]) * half))
            duration = self.duration()
            x = self._position / duration * self.width() if duration else 0.0
            painter.fillRect(QRectF(x - 1, 0, 2, self.height()), PLAYHEAD)
        painter.end()
