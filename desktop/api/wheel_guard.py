"""The mouse wheel changes a field only when the field has focus: scrolling a form over a spin box, combo box or
slider scrolls the form, and leaves the value alone.

:func:`install_wheel_guard` puts one event filter on the application (once; later calls do nothing). For every
spin box, combo box and slider in the application (a panel's own widgets too, added at any time) it

* ignores a wheel event while the widget does not have focus, so the event goes on to the scroll area around it;
* turns the focus policy ``WheelFocus`` into ``StrongFocus`` when the widget is polished, so the wheel cannot give a
  field focus (and then change it) either.

Scroll bars are sliders of another class (``QScrollBar``) and keep the wheel.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QSlider, QWidget

__all__ = ["WheelGuard", "install_wheel_guard"]

GUARDED = (QAbstractSpinBox, QComboBox, QSlider)
"""The widgets whose value the wheel changes only while they have focus."""


class WheelGuard(QObject):
    """The application's event filter that keeps the wheel from unfocused fields (see the module's docstring)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        kind = event.type()
        if kind == QEvent.Type.Wheel:
            if isinstance(watched, GUARDED) and not watched.hasFocus():
                event.ignore()  # not handled here: the parent (the scroll area) gets it
                return True
        elif kind == QEvent.Type.Polish and isinstance(watched, GUARDED):
            widget: QWidget = watched
            if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        return False


GUARD_NAME = "studiolo_wheel_guard"
"""The object name of the application's guard (a child of the application)."""


def install_wheel_guard() -> WheelGuard | None:
    """Put the :class:`WheelGuard` on the running application (once); None when there is no application yet."""
    app = QCoreApplication.instance()
    if app is None:
        return None
    guard = app.findChild(WheelGuard, GUARD_NAME, Qt.FindChildOption.FindDirectChildrenOnly)
    if guard is None:
        guard = WheelGuard(app)  # a child of the application: lives as long as it
        guard.setObjectName(GUARD_NAME)
        app.installEventFilter(guard)
    return guard
