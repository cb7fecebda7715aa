"""Side-by-side compare of two results: a pinned one (left) and the current one (right), each under its title,
zoomed and panned together. With compare off, only the current one is shown."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from plugins.image.image_view import ImageView


class ComparePane(QWidget):
    """One :class:`ImageView` under a title ("Result 3 · seed 42"); the title shows in compare mode only."""

    def __init__(self, name: str, accessible: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"{name}_pane")
        self.view = ImageView(self)
        self.view.setObjectName(f"{name}_view")
        self.view.setAccessibleName(accessible)
        self.title = QLabel(self)
        self.title.setObjectName(f"{name}_title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)

    def show_result(self, image: Any, title: str) -> None:
        """Show an image (a PIL image or a QImage; None: nothing) under this title."""
        if image is None:
            self.view.clear()
        else:
            self.view.set_image(image)
        self.title.setText(title)


class CompareView(QWidget):
    """``current`` (always shown) and, in compare mode, ``pinned`` beside it, on its left. In compare mode the two
    views keep the same zoom and scroll position: zooming or panning one does the same to the other."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compare_view")
        self.pinned = ComparePane("pinned", self.tr("Pinned result"), self)
        self.current = ComparePane("current", self.tr("Result image"), self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.pinned)
        self.splitter.addWidget(self.current)
        self.pinned.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._comparing = False
        self._syncing = False
        for pane, other in ((self.pinned, self.current), (self.current, self.pinned)):
            view, follower = pane.view, other.view
            view.zoom_changed.connect(lambda _scale, v=view, f=follower: self._sync(v, f))
            view.horizontalScrollBar().valueChanged.connect(lambda _value, v=view, f=follower: self._sync(v, f))
            view.verticalScrollBar().valueChanged.connect(lambda _value, v=view, f=follower: self._sync(v, f))

    def is_comparing(self) -> bool:
        """Whether both results are shown."""
        return self._comparing

    def set_comparing(self, on: bool) -> None:
        """Show the pinned result beside the current one (True), or the current one alone."""
        self._comparing = on
        self.pinned.setVisible(on)
        self.pinned.title.setVisible(on)
        self.current.title.setVisible(on)
        self.splitter.refresh()  # lay out now, not at the next event
        if on:
            half = max(1, self.splitter.width() // 2)
            self.splitter.setSizes([half, half])
            self.pinned.view.follow(self.current.view)

    @Slot()
    def _sync(self, source: ImageView, follower: ImageView) -> None:
        """Make ``follower`` show what ``source`` shows (compare mode only; not while doing so already)."""
        if not self._comparing or self._syncing:
            return
        self._syncing = True
        try:
            follower.follow(source)
        finally:
            self._syncing = False
