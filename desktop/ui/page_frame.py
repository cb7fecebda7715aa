"""The frame each page of the main window sits in: a borderless scroll area sized to the page.

A ``QStackedWidget`` is at least as large as the largest minimum of *all* its pages, shown or not, and a main window
at least as large as its central widget: one tall panel (a plugin's, say) would set the height of the whole window —
a window asked for at 900×600 came out 900×674. In a :class:`PageFrame` a page fills the room it is given when that
is at least its minimum size, and scrolls when it is less; it is never squeezed below its minimum (which is how
widgets come to be drawn over one another), and the window's minimum size no longer depends on its pages.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QScrollArea, QStyle, QWidget


class PageFrame(QScrollArea):
    """Holds one page (:meth:`page`): the page fills the frame, and is given its minimum size (and scroll bars)
    where the frame is smaller. (Not ``widgetResizable``: that sizes a page with word-wrapped text to its preferred
    height for the width, so a page that would fit at its minimum scrolled all the same.)"""

    def __init__(self, page: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page_frame")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(False)
        self.setWidget(page)
        page.installEventFilter(self)  # its minimum changes (a panel grows a row): fit it again

    def page(self) -> QWidget:
        return self.widget()

    def fit(self) -> None:
        """Size the page to the frame, not below the page's minimum size (scroll bars show what is left out)."""
        page = self.widget()
        if page is None:
            return
        least = page.minimumSizeHint().expandedTo(page.minimumSize())
        room = self.maximumViewportSize()  # without scroll bars
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        vertical = least.height() > room.height()
        horizontal = least.width() > room.width() - (bar if vertical else 0)
        vertical = vertical or least.height() > room.height() - (bar if horizontal else 0)
        page.resize(max(least.width(), room.width() - (bar if vertical else 0)),
                    max(least.height(), room.height() - (bar if horizontal else 0)))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self.fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.fit()
        return super().eventFilter(watched, event)


def frame_of(widget: QWidget) -> PageFrame | None:
    """The :class:`PageFrame` holding ``widget`` (None if it is in none)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, PageFrame):
        parent = parent.parentWidget()
    return parent
