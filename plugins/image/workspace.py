"""The image panel's result workspace: the result as large as the room allows (fit, zoom, pan, 1:1), a compare
mode showing two results side by side, the strip of this session's results below, and one slim toolbar row of
actions with their keyboard shortcuts.

The toolbar (:attr:`ResultWorkspace.toolbar`) is not laid out here: the panel puts it above its tabs, with its
own actions added. :meth:`ResultWorkspace.install_shortcuts` makes the shortcuts work anywhere in the panel (and
only there: they are ``WidgetWithChildrenShortcut``s, so other pages keep their keys).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QToolBar, QToolButton, QVBoxLayout, QWidget

from plugins.image.compare_view import CompareView
from plugins.image.image_view import ResultStrip
from plugins.image.result_info import JobRecord

SHORTCUTS = {
    # Alt+Left/Right: "back/forward" as in a browser; no text field or spin box of the form uses them (PageUp/Down
    # step spin boxes by ten, Ctrl+Left/Right move by words), so they work while typing a prompt.
    "previous_result": ("Alt+Left",),
    "next_result": ("Alt+Right",),
    "zoom_in": ("Ctrl++", "Ctrl+="),  # Ctrl+= is Ctrl++ without Shift on most keyboards
    "zoom_out": ("Ctrl+-",),
    "zoom_fit": ("Ctrl+0",),
    "zoom_actual": ("Ctrl+1",),
    "compare": ("Ctrl+Shift+C",),  # with Shift: Ctrl+C copies in the prompt
    "toggle_settings": ("Ctrl+B",),  # the usual "toggle side bar"
}
"""Each action's keys (the first is shown in its tooltip)."""


def shortcut_text(name: str) -> str:
    """The first key of an action, as shown to people (``Ctrl+Shift+C``)."""
    return QKeySequence(SHORTCUTS[name][0]).toString(QKeySequence.SequenceFormat.NativeText)


def make_action(parent: QWidget, name: str, text: str, tip: str, theme_icon: str | None = None) -> QAction:
    """An action named ``name`` with its :data:`SHORTCUTS` (if any), a tooltip naming the first, and the theme's
    icon when it has one (else its text shows)."""
    action = QAction(text, parent)
    action.setObjectName(name)
    icon_name = getattr(QIcon.ThemeIcon, theme_icon, None) if theme_icon else None
    if icon_name is not None and not QIcon.fromTheme(icon_name).isNull():
        action.setIcon(QIcon.fromTheme(icon_name))
    keys = SHORTCUTS.get(name, ())
    if keys:
        action.setShortcuts([QKeySequence(key) for key in keys])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        tip = f"{tip} ({shortcut_text(name)})"
    action.setToolTip(tip)
    return action


def add_to_toolbar(toolbar: QToolBar, action: QAction, accessible: str,
                   before: QAction | None = None) -> QToolButton:
    """Add ``action`` to ``toolbar`` (at the end, or before ``before``); its button gets the action's name and an
    accessible name."""
    if before is None:
        toolbar.addAction(action)
    else:
        toolbar.insertAction(before, action)
    button = toolbar.widgetForAction(action)
    button.setObjectName(action.objectName())
    button.setAccessibleName(accessible)
    return button


class ResultWorkspace(QWidget):
    """The current result (``view``) fills the room; in compare mode a pinned result is shown beside it, both
    zoomed and panned together; the strip of results below (hidden until the first result). ``toolbar`` holds
    Compare, zoom out, zoom in, fit, 1:1 and the zoom level (the panel places it and adds its own actions; what
    does not fit its width goes to its » menu).

    A preview (:meth:`show_preview`) replaces the view's picture until :meth:`show_selected` brings the selected
    result (or the empty state) back."""

    current_changed = Signal(int)
    """``(row)``: the selected result changed (-1: none)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("result_workspace")
        tr = self.tr
        self.compare_view = CompareView(self)
        self.view = self.compare_view.current.view
        """The view of the current result (and of previews)."""
        self.strip = ResultStrip(self)
        self.strip.setVisible(False)
        self._pinned_row = -1
        self.toolbar = QToolBar(tr("Result tools"))
        self.toolbar.setObjectName("result_toolbar")
        self.toolbar.setAccessibleName(tr("Result tools"))
        self.toolbar.setFloatable(False)
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.toolbar.layout().setSpacing(0)
        self.toolbar.layout().setContentsMargins(0, 0, 0, 0)
        self.zoom_out_action = make_action(self, "zoom_out", "−", tr("Zoom out (mouse wheel)"), "ZoomOut")
        self.zoom_in_action = make_action(self, "zoom_in", "+", tr("Zoom in (mouse wheel)"), "ZoomIn")
        self.fit_action = make_action(self, "zoom_fit", tr("Fit"), tr("Fit the image to the window"), "ZoomFitBest")
        self.actual_action = make_action(self, "zoom_actual", "1:1", tr("Show the image at 100 %"))
        self.previous_action = make_action(self, "previous_result", "‹", tr("Previous result"), "GoPrevious")
        self.next_action = make_action(self, "next_result", "›", tr("Next result"), "GoNext")
        self.compare_action = make_action(self, "compare", tr("Compare"),
                                          tr("Compare two results side by side: the one selected now stays on "
                                             "the left"))
        self.compare_action.setCheckable(True)
        self.compare_button = add_to_toolbar(self.toolbar, self.compare_action, tr("Compare"))
        self.toolbar.addSeparator()
        self.zoom_out_button = add_to_toolbar(self.toolbar, self.zoom_out_action, tr("Zoom out"))
        self.zoom_in_button = add_to_toolbar(self.toolbar, self.zoom_in_action, tr("Zoom in"))
        self.fit_button = add_to_toolbar(self.toolbar, self.fit_action, tr("Fit to window"))
        self.actual_button = add_to_toolbar(self.toolbar, self.actual_action, tr("Actual size"))
        self.zoom_label = QLabel(self.toolbar)
        self.zoom_label.setObjectName("zoom_label")
        self.zoom_label.setAccessibleName(tr("Zoom level"))
        self.zoom_label.setContentsMargins(4, 0, 4, 0)
        self.toolbar.addWidget(self.zoom_label)
        self.shortcut_actions = [self.zoom_out_action, self.zoom_in_action, self.fit_action, self.actual_action,
                                 self.previous_action, self.next_action, self.compare_action]
        """The actions whose keys :meth:`install_shortcuts` makes work (previous/next have keys, no buttons:
        the strip is their button)."""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.compare_view, 1)
        layout.addWidget(self.strip)
        self.zoom_out_action.triggered.connect(self.view.zoom_out)
        self.zoom_in_action.triggered.connect(self.view.zoom_in)
        self.fit_action.triggered.connect(self.view.fit)
        self.actual_action.triggered.connect(self.view.actual_size)
        self.previous_action.triggered.connect(self.previous_result)
        self.next_action.triggered.connect(self.next_result)
        self.compare_action.toggled.connect(self.set_comparing)
        self.view.zoom_changed.connect(self._show_zoom)
        self.strip.currentRowChanged.connect(self._on_current_row)
        self.strip.compare_requested.connect(self.compare_with_current)
        self._update_actions()

    def install_shortcuts(self, scope: QWidget) -> None:
        """Make the actions' keys work while the focus is anywhere in ``scope`` (the panel)."""
        scope.addActions(self.shortcut_actions)

    # -- results ---------------------------------------------------------------------------------------------

    def add_result(self, output: Any, job: JobRecord | None = None) -> int:
        """Add a result to the strip (not selected); return its row."""
        row = self.strip.add_output(output, job)
        self.strip.setVisible(True)
        self._update_actions()
        return row

    def current_row(self) -> int:
        """The selected result's row (-1: none)."""
        return self.strip.currentRow()

    def select(self, row: int) -> None:
        """Select and show the result in this row."""
        self.strip.setCurrentRow(row)
        self.show_selected()

    @Slot()
    def next_result(self) -> None:
        """Select the next result (the first when none is selected)."""
        if self.strip.count():
            self.select(min(self.strip.count() - 1, self.strip.currentRow() + 1))

    @Slot()
    def previous_result(self) -> None:
        """Select the previous result (the last when none is selected)."""
        if self.strip.count():
            row = self.strip.currentRow()
            self.select(self.strip.count() - 1 if row < 0 else max(0, row - 1))

    def show_preview(self, image: Any) -> None:
        """Show a job's preview in the current view (until :meth:`show_selected`)."""
        self.compare_view.current.show_result(image, self.tr("Preview"))
        self._show_zoom()

    @Slot()
    def show_selected(self) -> None:
        """Show the selected result, or nothing ("Results appear here.") when none is selected."""
        row = self.strip.currentRow()
        output = self.strip.output(row)
        self.compare_view.current.show_result(output.image if output is not None else None, self.strip.title(row))
        self._show_zoom()

    @Slot(int)
    def _on_current_row(self, row: int) -> None:
        self.show_selected()
        self._update_actions()
        self.current_changed.emit(row)

    # -- compare ---------------------------------------------------------------------------------------------

    def is_comparing(self) -> bool:
        """Whether two results are shown side by side."""
        return self.compare_view.is_comparing()

    def pinned_row(self) -> int:
        """The row of the result pinned on the left in compare mode (-1: none)."""
        return self._pinned_row if self.is_comparing() else -1

    @Slot(bool)
    def set_comparing(self, on: bool) -> None:
        """Compare the selected result (pinned on the left) with the next one selected; or show one result."""
        if on and self.strip.output(self.strip.currentRow()) is None:
            on = False  # nothing to pin
        if on and not self.is_comparing():
            self._pin(self.strip.currentRow())
        self.compare_view.set_comparing(on)
        self.compare_action.setChecked(on)
        self._update_actions()

    @Slot(int)
    def compare_with_current(self, row: int) -> None:
        """Pin the result in ``row`` on the left and compare it with the selected one."""
        if self.strip.output(row) is None:
            return
        if self.strip.currentRow() < 0:
            self.strip.setCurrentRow(row)
        self._pin(row)
        self.compare_view.set_comparing(True)
        self.compare_action.setChecked(True)
        self._update_actions()

    def _pin(self, row: int) -> None:
        self._pinned_row = row
        self.compare_view.pinned.show_result(self.strip.output(row).image, self.strip.title(row))

    # -- state -----------------------------------------------------------------------------------------------

    def _update_actions(self) -> None:
        count, row = self.strip.count(), self.strip.currentRow()
        self.compare_action.setEnabled(count > 0)
        self.previous_action.setEnabled(count > 0 and row != 0)
        self.next_action.setEnabled(count > 0 and row != count - 1)

    @Slot()
    def _show_zoom(self) -> None:
        shown = not self.view.image().isNull()
        self.zoom_label.setText(f"{self.view.zoom() * 100:.0f} %" if shown else "")
