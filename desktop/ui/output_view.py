"""Shows a job's previews and outputs: images scaled to fit, text streaming in, audio as a summary."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent, QTextCursor
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSizePolicy, QStackedWidget, QWidget

from desktop.api import AudioOutput, ImageOutput, Output, TextOutput


def to_qimage(image: Any) -> QImage:
    """A PIL image as a QImage (a copy, so the bytes may go)."""
    rgba = image.convert("RGBA")
    data = rgba.tobytes()
    return QImage(data, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888).copy()


class ImageView(QLabel):
    """An image scaled to fit, keeping its aspect ratio; crisp pixels for tiny images."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(64, 64)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._pixmap = QPixmap()

    def set_image(self, image: Any) -> None:
        self._pixmap = QPixmap.fromImage(to_qimage(image))
        self._rescale()

    def image_pixmap(self) -> QPixmap:
        return self._pixmap

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            return
        small = self._pixmap.width() < self.width() // 4
        mode = Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, mode))


class OutputView(QStackedWidget):
    """Previews while a job runs (text appended, image replaced), then its outputs. A job that ends without outputs
    (cancelled before it had any) has its previews dropped: :meth:`drop_previews` shows the last result again, or
    the placeholder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = QLabel(self.tr("Results appear here."), self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image = ImageView(self)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setObjectName("output_text")
        self.audio = QLabel(self)
        self.audio.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for widget in (self.placeholder, self.image, self.text, self.audio):
            self.addWidget(widget)
        self.result: list[Output] = []  # the outputs shown last (previews are not results)

    def clear(self) -> None:
        self.text.clear()
        self.setCurrentWidget(self.placeholder)

    def drop_previews(self) -> None:
        """Forget the previews of a job that gave nothing: show the last result again (the placeholder if none)."""
        self.clear()
        if self.result:
            self.show_outputs(self.result)

    def add_preview(self, preview: Any) -> None:
        if isinstance(preview, str):
            if self.currentWidget() is not self.text:
                self.setCurrentWidget(self.text)
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(preview)
        elif isinstance(preview, AudioOutput):
            self._show_audio(preview)
        elif hasattr(preview, "convert") and hasattr(preview, "size"):  # a PIL image
            self.image.set_image(preview)
            self.setCurrentWidget(self.image)

    def show_outputs(self, outputs: list[Output]) -> None:
        self.result = list(outputs)
        for output in outputs[:1]:
            if isinstance(output, ImageOutput):
                self.image.set_image(output.image)
                self.setCurrentWidget(self.image)
            elif isinstance(output, TextOutput):
                self.text.setPlainText(output.text)
                self.setCurrentWidget(self.text)
            elif isinstance(output, AudioOutput):
                self._show_audio(output)

    def _show_audio(self, clip: AudioOutput) -> None:
        self.audio.setText(self.tr("Audio clip: %1 s at %2 Hz").replace("%1", f"{clip.duration:.1f}")
                           .replace("%2", str(clip.sample_rate)))
        self.setCurrentWidget(self.audio)
