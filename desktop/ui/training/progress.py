"""The training window's progress (issue 22): steps done of the total, the latest loss, a small loss curve drawn
with QPainter, the warm-up's estimate and the latest sample (a picture or a text)."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.output_view import ImageView

__all__ = ["LossCurve", "TrainingProgress", "parse_loss"]

MAX_POINTS = 2000
"""The most points the curve keeps: beyond, every other one is dropped (the shape stays, the cost does not grow)."""


def parse_loss(message: str) -> float | None:
    """The loss in a training job's progress message (``"loss 0.1234"``), or None."""
    head, _, rest = message.partition("loss ")
    if head.strip() or not rest:
        return None
    try:
        return float(rest.split()[0])
    except (ValueError, IndexError):
        return None


class LossCurve(QWidget):
    """The loss against the step, as a line scaled to the widget (finite values only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training_loss_curve")
        self.setAccessibleName(self.tr("Loss curve"))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.points: list[tuple[int, float]] = []

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(320, 90)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(120, 60)

    def clear(self) -> None:
        self.points = []
        self.update()

    def set_points(self, points: list[tuple[int, float]]) -> None:
        self.points = [(step, loss) for step, loss in points if math.isfinite(loss)]
        while len(self.points) > MAX_POINTS:
            self.points = self.points[-1::-2][::-1]
        self.update()

    def add(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            return
        if self.points and step <= self.points[-1][0]:  # a resume: what comes after the checkpoint is redone
            self.points = [p for p in self.points if p[0] < step]
        self.points.append((step, loss))
        if len(self.points) > MAX_POINTS:
            self.points = self.points[-1::-2][::-1]  # every other one, the newest kept
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(4, 4, -4, -4)
        frame = QColor(self.palette().mid().color())
        painter.setPen(QPen(frame, 1))
        painter.drawRect(rect)
        if len(self.points) < 2:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.tr("The loss curve appears here"))
            return
        steps = [p[0] for p in self.points]
        losses = [p[1] for p in self.points]
        x0, x1 = min(steps), max(steps)
        low, high = min(losses), max(losses)
        span_x = max(x1 - x0, 1)
        span_y = (high - low) or 1.0
        line = QPolygonF([QPointF(rect.left() + (s - x0) / span_x * rect.width(),
                                  rect.bottom() - (v - low) / span_y * rect.height()) for s, v in self.points])
        painter.setPen(QPen(self.palette().highlight().color(), 1.5))
        painter.drawPolyline(line)
        painter.setPen(QPen(self.palette().text().color()))
        painter.drawText(rect.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight,
                         f"{high:.4g}")
        painter.drawText(rect.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight,
                         f"{low:.4g}")


class TrainingProgress(QWidget):
    """A training run as it goes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar(self)
        self.bar.setObjectName("training_progress")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("%v / %m")
        self.loss_label = QLabel(self)
        self.loss_label.setObjectName("training_loss")
        self.curve = LossCurve(self)
        self.estimate_label = QLabel(self)
        self.estimate_label.setObjectName("training_estimate")
        self.estimate_label.setWordWrap(True)
        self.notes_label = QLabel(self)
        self.notes_label.setObjectName("training_notes")
        self.notes_label.setWordWrap(True)
        self.sample = QStackedWidget(self)
        self.sample.setObjectName("training_sample")
        self.sample_image = ImageView(self.sample)
        self.sample_text = QPlainTextEdit(self.sample)
        self.sample_text.setReadOnly(True)
        self.sample_none = QLabel(self.tr("Samples appear here when the training makes them."), self.sample)
        self.sample_none.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for widget in (self.sample_none, self.sample_image, self.sample_text):
            self.sample.addWidget(widget)
        self.sample.setMinimumHeight(120)
        form = QFormLayout()
        form.addRow(self.tr("Steps"), self.bar)
        form.addRow(self.tr("Loss"), self.loss_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.curve)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.notes_label)
        layout.addWidget(self.sample, 1)
        self.reset()

    def reset(self) -> None:
        """A new run (not a resume: that keeps the curve, cut back where it resumes)."""
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.loss_label.setText("—")
        self.curve.clear()
        self.estimate_label.clear()
        self.estimate_label.hide()
        self.notes_label.clear()
        self.notes_label.hide()
        self.sample_text.clear()
        self.sample.setCurrentWidget(self.sample_none)

    def queued(self) -> None:
        self.bar.setRange(0, 0)  # busy until the first step: loading, the warm-up

    def step(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        loss = parse_loss(message)
        if loss is not None:
            self.loss_label.setText(f"{loss:.4f}" if math.isfinite(loss) else str(loss))
            self.curve.add(done, loss)

    def stopped(self) -> None:
        if self.bar.maximum() == 0:  # never got a step: not busy any more
            self.bar.setRange(0, 1)
            self.bar.setValue(0)

    def note(self, message: str) -> None:
        """A job's warning: the warm-up's estimate on its own line, the others (resuming…) under it."""
        if message.startswith("Estimate from the warm-up"):
            self.estimate_label.setText(message)
            self.estimate_label.show()
            return
        notes = [line for line in self.notes_label.text().splitlines() if line]
        self.notes_label.setText("\n".join([*notes[-3:], message]))
        self.notes_label.show()

    def show_sample(self, sample: Any) -> None:
        if isinstance(sample, (list, tuple)):
            if not sample:
                return
            sample = sample[-1]
        if isinstance(sample, str):
            self.sample_text.setPlainText(sample)
            self.sample.setCurrentWidget(self.sample_text)
        elif hasattr(sample, "convert") and hasattr(sample, "size"):  # a PIL image
            self.sample_image.set_image(sample)
            self.sample.setCurrentWidget(self.sample_image)
