"""The Plugins page: every plugin the manager found, why a failed one failed, and enabling or disabling one.

Enabling and disabling are persisted in the settings at once (``PluginManager.set_enabled``) but only take effect
at the next start: the table shows the pending change ("loaded → disabled after restart") and a notice says so.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.api import PluginError
from desktop.plugins import PluginManager, PluginRecord, Status

NAME_ROLE = Qt.ItemDataRole.UserRole


class PluginsView(QWidget):
    """A table of the plugins of a loaded :class:`PluginManager` and the details of the selected one.

    ``enabled_changed(name, enabled)`` is emitted when the user enables or disables a plugin (the choice is
    saved; it applies after a restart).
    """

    COLUMNS = 4  # name, version, status, generators
    enabled_changed = Signal(str, bool)

    def __init__(self, manager: PluginManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self._known: set[str] = set()
        self._build()
        self.refresh()

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.table = QTableWidget(0, self.COLUMNS, self)
        self.table.setObjectName("plugins_table")
        self.table.setAccessibleName(self.tr("Plugins"))
        self.table.setHorizontalHeaderLabels(
            [self.tr("Name"), self.tr("Version"), self.tr("Status"), self.tr("Generators")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_selected)

        self.notice = QLabel(self.tr("Changes to enabled plugins take effect after Studiolo restarts."), self)
        self.notice.setObjectName("restart_notice")
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.details = self._build_details()
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        self.table.setMinimumHeight(90)
        self.details.setMinimumHeight(self.details.sizeHint().height())
        layout = QVBoxLayout(self)
        layout.addWidget(self.notice)
        layout.addWidget(splitter)

    def _build_details(self) -> QGroupBox:
        box = QGroupBox(self.tr("Details"), self)
        box.setObjectName("plugin_details")
        form = QFormLayout()
        self.detail_labels: dict[str, QLabel] = {}
        for key, label in (("distribution", self.tr("Distribution:")), ("module", self.tr("Module:")),
                           ("author", self.tr("Author:")), ("summary", self.tr("Summary:")),
                           ("hooks", self.tr("Hooks:")), ("warnings", self.tr("Warnings:")),
                           ("error", self.tr("Error:"))):
            value = QLabel(box)
            value.setObjectName(f"detail_{key}")
            value.setWordWrap(True)
            value.setTextFormat(Qt.TextFormat.PlainText)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, value)
            self.detail_labels[key] = value

        self.traceback_edit = QPlainTextEdit(box)
        self.traceback_edit.setObjectName("plugin_traceback")
        self.traceback_edit.setAccessibleName(self.tr("Traceback"))
        self.traceback_edit.setReadOnly(True)
        self.traceback_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setFixedPitch(True)
        self.traceback_edit.setFont(mono)
        self.traceback_edit.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.copy_button = QPushButton(self.tr("Copy"), box)
        self.copy_button.setObjectName("copy_traceback")
        self.copy_button.setAccessibleName(self.tr("Copy the error and traceback"))
        self.copy_button.clicked.connect(self.copy_traceback)

        self.toggle_button = QPushButton(self.tr("Disable"), box)
        self.toggle_button.setObjectName("toggle_enabled")
        self.toggle_button.clicked.connect(self._toggle_selected)

        buttons = QHBoxLayout()
        buttons.addWidget(self.toggle_button)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        layout.addWidget(self.traceback_edit, 1)
        layout.addLayout(buttons)
        return box

    # -- filling ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Fill the table again from the manager (keeping the selection) and the details of the selection."""
        selected = self.selected_name()
        self._known = set(self.manager.known_names())
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for row, record in enumerate(self.manager.plugins.values()):
            self.table.insertRow(row)
            cells = (record.name, record.version or "", self.status_text(record), ", ".join(record.generators))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(NAME_ROLE, record.name)
                if record.error:
                    item.setToolTip(record.error)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self.notice.setVisible(any(self._pending(r) is not None for r in self.manager.plugins.values()))
        if selected is None or not self.select(selected):
            self._show_selected()

    def status_text(self, record: PluginRecord) -> str:
        """The status column: e.g. "loaded (built-in)" or "loaded → disabled after restart"."""
        text = self._status_word(record.status)
        pending = self._pending(record)
        if pending is not None:
            text = self.tr("%1 → %2 after restart").replace("%1", text).replace("%2", self._status_word(pending))
        if record.builtin:
            text = self.tr("%1 (built-in)").replace("%1", text)
        return text

    def _status_word(self, status: str) -> str:
        words = {Status.LOADED: self.tr("loaded"), Status.DISABLED: self.tr("disabled"),
                 Status.FAILED: self.tr("failed"), Status.SKIPPED: self.tr("skipped"), "enabled": self.tr("enabled")}
        return words.get(status, status)

    def _disabled_in_settings(self, name: str) -> bool:
        return name in self.manager.settings.disabled_plugins

    def _pending(self, record: PluginRecord) -> str | None:
        """"disabled" or "enabled" when the saved choice differs from how the plugin was loaded, else None."""
        if record.name not in self._known:
            return None
        disabled = self._disabled_in_settings(record.name)
        if disabled and record.status != Status.DISABLED:
            return Status.DISABLED
        if not disabled and record.status == Status.DISABLED:
            return "enabled"
        return None

    # -- selection -------------------------------------------------------------------------------------------

    def selected_name(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(NAME_ROLE) if items else None

    def select(self, name: str) -> bool:
        """Select the plugin called ``name``; False when there is none."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(NAME_ROLE) == name:
                self.table.selectRow(row)
                self._show_selected()
                return True
        return False

    def _show_selected(self) -> None:
        name = self.selected_name()
        record = self.manager.plugins.get(name) if name is not None else None
        self.details.setEnabled(record is not None)
        if record is None:
            for label in self.detail_labels.values():
                label.clear()
            self.traceback_edit.clear()
            self.traceback_edit.hide()
            self.copy_button.hide()
            self.toggle_button.setEnabled(False)
            return
        none = self.tr("—")
        values = {
            "distribution": record.distribution or none,
            "module": record.module,
            "author": record.author or none,
            "summary": record.summary or none,
            "hooks": ", ".join(record.hooks) or none,
            "warnings": "\n".join(record.warnings) or none,
            "error": record.error or none,
        }
        for key, text in values.items():
            self.detail_labels[key].setText(text)
        has_traceback = bool(record.traceback)
        self.traceback_edit.setPlainText(record.traceback or "")
        self.traceback_edit.setVisible(has_traceback)
        self.copy_button.setVisible(has_traceback)
        known = record.name in self._known
        self.toggle_button.setEnabled(known)
        self.toggle_button.setText(self.tr("Enable") if self._disabled_in_settings(record.name) else self.tr("Disable"))
        self.toggle_button.setToolTip("" if known else self.tr(
            "This plugin's name is taken by another plugin; uninstall one of them."))

    # -- actions ---------------------------------------------------------------------------------------------

    def copy_traceback(self) -> None:
        """Put the selected plugin's error and traceback on the clipboard."""
        record = self.manager.plugins.get(self.selected_name() or "")
        if record is not None:
            text = "\n".join(part for part in (record.error, record.traceback) if part)
            QGuiApplication.clipboard().setText(text)

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Enable or disable a plugin (saved; applies after a restart). Returns whether anything changed; an error
        is shown in the notice, never raised."""
        try:
            changed = self.manager.set_enabled(name, enabled)
        except (PluginError, OSError) as exc:
            self.notice.setText(self.tr("Could not change the plugin: %1").replace("%1", str(exc)))
            self.notice.show()
            return False
        self.notice.setText(self.tr("Changes to enabled plugins take effect after Studiolo restarts."))
        self.refresh()
        if changed:
            self.enabled_changed.emit(name, enabled)
        return changed

    def _toggle_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.set_enabled(name, self._disabled_in_settings(name))
