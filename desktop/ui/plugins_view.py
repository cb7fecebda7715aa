"""The Plugins page, a plugin manager: every plugin with its version, author, summary, generators and status, why a
failed one failed, enabling and disabling, and installing, updating and uninstalling third-party plugins.

Enabling and disabling are persisted in the settings at once (``PluginManager.set_enabled``) and ``enabled_changed``
is emitted; the main window applies the change to the running app (``PluginManager.apply_enabled``: generators
leave or arrive without a restart) and refreshes this page. Until something applies it — a page used on its own —
the table shows the pending change ("loaded → disabled after restart") and a notice says so.

Installs run through :class:`desktop.ui.plugin_install.InstallPanel` (pip on a worker thread, a dry run first). The
running app does not load a plugin installed while it runs: the new plugin is listed as "installed — restart
Studiolo to load it", an updated or uninstalled one with its pending change, and the notice says a restart is
needed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
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

from desktop.api.errors import PluginError
from desktop.install import InstallResult, PluginInstallError, UninstallResult
from desktop.install.specs import canonical
from desktop.plugins import PluginManager, PluginRecord, Status
from desktop.ui.plugin_install import SHUTDOWN_WAIT_MS, DistributionInfo, InstallerFactory, InstallPanel

NAME_ROLE = Qt.ItemDataRole.UserRole
COLUMN_KEYS = ("name", "version", "author", "summary", "generators", "status")
INSTALLED = "installed"  # the status of a plugin installed while Studiolo runs (loaded at the next start)
UNINSTALLED = "uninstalled"
UPDATED = "updated"


class PluginsView(QWidget):
    """A table of the plugins of a loaded :class:`PluginManager` — and of those installed since it loaded — with the
    details of the selected one, and the install panel.

    ``installer_factory()`` makes the :class:`desktop.install.Installer` that installs, updates and uninstalls
    (called on a worker thread; default: one for the Python Studiolo runs from).

    Signals: ``enabled_changed(name, enabled)`` when the user enables or disables a plugin (the choice is saved; the
    window applies it at once); ``message(text, is_error)`` when an install, update or uninstall ends or is refused
    (for the status bar); ``plugins_changed()`` after one changed the installed plugins; ``plan_ready(plan)`` when
    a dry run has decided.
    """

    COLUMNS = len(COLUMN_KEYS)
    enabled_changed = Signal(str, bool)
    message = Signal(str, bool)
    plugins_changed = Signal()
    plan_ready = Signal(object)

    def __init__(self, manager: PluginManager, parent: QWidget | None = None, *,
                 installer_factory: InstallerFactory | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self._known: set[str] = set()
        self._new: dict[str, PluginRecord] = {}  # installed while Studiolo runs: loaded at the next start
        self._changes: dict[str, tuple[str, str | None]] = {}  # loaded plugin → (UNINSTALLED or UPDATED, version)
        self._build(installer_factory)
        self.refresh()

    # -- building --------------------------------------------------------------------------------------------

    def _build(self, installer_factory: InstallerFactory | None) -> None:
        self.table = QTableWidget(0, self.COLUMNS, self)
        self.table.setObjectName("plugins_table")
        self.table.setAccessibleName(self.tr("Plugins"))
        self.table.setHorizontalHeaderLabels(
            [self.tr("Name"), self.tr("Version"), self.tr("Author"), self.tr("Summary"), self.tr("Generators"),
             self.tr("Status")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMN_KEYS.index("summary"), QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_selected)

        self.notice = QLabel(self._restart_text(), self)
        self.notice.setObjectName("restart_notice")
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.installs = InstallPanel(installer_factory, self)
        self.installs.message.connect(self.message)
        self.installs.plan_ready.connect(self.plan_ready)
        self.installs.installed.connect(self._on_installed)
        self.installs.uninstalled.connect(self._on_uninstalled)
        self.installs.busy_changed.connect(self._on_busy_changed)

        self.details = self._build_details()
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.setObjectName("plugins_splitter")
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.addWidget(self.installs.log_view)  # pip's output: shown from the first install on
        for index, stretch in enumerate((2, 3, 2)):
            splitter.setStretchFactor(index, stretch)
        splitter.setChildrenCollapsible(False)
        self.table.setMinimumHeight(90)
        self.traceback_edit.hide()  # the details' minimum height without a traceback
        self.details.setMinimumHeight(self.details.sizeHint().height())
        layout = QVBoxLayout(self)
        layout.addWidget(self.notice)
        layout.addWidget(self.installs)
        layout.addWidget(splitter, 1)

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
        self.update_button = QPushButton(self.tr("Update"), box)
        self.update_button.setObjectName("update_plugin")
        self.update_button.setAccessibleName(self.tr("Update the plugin"))
        self.update_button.clicked.connect(self._update_selected)
        self.uninstall_button = QPushButton(self.tr("Uninstall…"), box)
        self.uninstall_button.setObjectName("uninstall_plugin")
        self.uninstall_button.setAccessibleName(self.tr("Uninstall the plugin"))
        self.uninstall_button.clicked.connect(self._uninstall_selected)

        buttons = QHBoxLayout()
        buttons.addWidget(self.toggle_button)
        buttons.addWidget(self.update_button)
        buttons.addWidget(self.uninstall_button)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        layout.addWidget(self.traceback_edit, 1)
        layout.addLayout(buttons)
        return box

    # -- filling ---------------------------------------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every plugin listed: the manager's, then those installed since it loaded."""
        return [*self.manager.plugins.values(), *self._new.values()]

    def record(self, name: str) -> PluginRecord | None:
        """The listed plugin called ``name``, or None."""
        return self.manager.plugins.get(name) or self._new.get(name)

    def refresh(self) -> None:
        """Fill the table again from the manager (keeping the selection) and the details of the selection."""
        selected = self.selected_name()
        self._known = set(self.manager.known_names())
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for row, record in enumerate(self.records()):
            self.table.insertRow(row)
            cells = {"name": record.name, "version": record.version or "", "author": record.author or "",
                     "summary": record.summary or "", "generators": self.generators_text(record.generators),
                     "status": self.status_text(record)}
            for column, key in enumerate(COLUMN_KEYS):
                item = QTableWidgetItem(cells[key])
                item.setData(NAME_ROLE, record.name)
                if record.error:
                    item.setToolTip(record.error)
                elif key == "summary" and record.summary:
                    item.setToolTip(record.summary)
                elif key == "generators" and record.generators:
                    item.setToolTip("\n".join(record.generators))
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self.notice.setVisible(self.restart_needed())
        if selected is None or not self.select(selected):
            self._show_selected()

    def generators_text(self, generators: list[str]) -> str:
        """The generators column: two named, more counted (its tooltip lists them all)."""
        if len(generators) <= 2:
            return ", ".join(generators)
        return self.tr("%1 and %2 more").replace("%1", generators[0]).replace("%2", str(len(generators) - 1))

    def restart_needed(self) -> bool:
        """Whether a change made on this page waits for Studiolo to restart."""
        return bool(self._new or self._changes) or any(
            self._pending(r) is not None for r in self.manager.plugins.values())

    def _restart_text(self) -> str:
        return self.tr("Changes to plugins take effect after Studiolo restarts.")

    def status_text(self, record: PluginRecord) -> str:
        """The status column: e.g. "loaded (built-in)", "loaded → disabled after restart" or "installed — restart
        Studiolo to load it"."""
        if record.name in self._new:
            if record.status == Status.FAILED:
                return self.tr("installed, but it fails to load — see the error")
            return self.tr("installed — restart Studiolo to load it")
        text = self._status_word(record.status)
        change, version = self._changes.get(record.name, (None, None))
        pending = self._pending(record)
        if change == UNINSTALLED:
            text = self.tr("%1 → uninstalled after restart").replace("%1", text)
        elif change == UPDATED:
            text = self.tr("%1 → version %2 after restart").replace("%1", text).replace("%2", version or "?")
        elif pending is not None:
            text = self.tr("%1 → %2 after restart").replace("%1", text).replace("%2", self._status_word(pending))
        if record.builtin:
            text = self.tr("%1 (built-in)").replace("%1", text)
        return text

    def _status_word(self, status: str) -> str:
        words = {Status.LOADED: self.tr("loaded"), Status.DISABLED: self.tr("disabled"),
                 Status.FAILED: self.tr("failed"), Status.SKIPPED: self.tr("skipped"), "enabled": self.tr("enabled"),
                 Status.LOADING: self.tr("loading…")}
        return words.get(status, status)

    def _disabled_in_settings(self, name: str) -> bool:
        return name in self.manager.settings.disabled_plugins

    def _skipped_after_stop(self, name: str) -> bool:
        """Whether the plugin is skipped because its import stopped an earlier Studiolo (until enabled again)."""
        record = self.manager.plugins.get(name)
        return record is not None and record.quarantined and name not in self.manager.released

    def _off(self, name: str) -> bool:
        """Whether the plugin's button enables it: disabled, or skipped after stopping an earlier Studiolo."""
        return self._disabled_in_settings(name) or self._skipped_after_stop(name)

    def _pending(self, record: PluginRecord) -> str | None:
        """"disabled" or "enabled" when the saved choice differs from how the plugin was loaded, else None."""
        if record.name not in self._known or record.name in self._new:
            return None
        disabled = self._disabled_in_settings(record.name)
        if disabled and record.status != Status.DISABLED:
            return Status.DISABLED
        if not disabled and (record.status == Status.DISABLED or record.name in self.manager.released):
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

    @Slot()
    def _show_selected(self) -> None:
        name = self.selected_name()
        record = self.record(name) if name is not None else None
        self.details.setEnabled(record is not None)
        if record is None:
            for label in self.detail_labels.values():
                label.clear()
            self.traceback_edit.clear()
            self.traceback_edit.hide()
            self.copy_button.hide()
            for button in (self.toggle_button, self.update_button, self.uninstall_button):
                button.setEnabled(False)
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
        self._show_toggle(record)
        self._show_package_buttons(record)

    def _show_toggle(self, record: PluginRecord) -> None:
        known = record.name in self._known
        self.toggle_button.setText(self.tr("Enable") if self._off(record.name) else self.tr("Disable"))
        if record.name in self._new:
            self.toggle_button.setEnabled(False)
            self.toggle_button.setToolTip(self.tr("Restart Studiolo to load it; then it can be disabled here."))
            return
        self.toggle_button.setEnabled(known)
        self.toggle_button.setToolTip("" if known else self.tr(
            "This plugin's name is taken by another plugin; uninstall one of them."))

    def _show_package_buttons(self, record: PluginRecord) -> None:
        why = self._unmanageable(record)
        if why is None and self.installs.is_busy():
            why = self.tr("Wait for the running install to finish.")
        self.uninstall_button.setEnabled(why is None)
        self.update_button.setEnabled(why is None)
        self.uninstall_button.setToolTip(why or self.tr(
            "Uninstall this plugin's package (the packages it brought along stay installed)"))
        self.update_button.setToolTip(why or self.tr(
            "Install the newest version that fits this Studiolo, changing no other package"))

    def _unmanageable(self, record: PluginRecord) -> str | None:
        """Why the plugin's package cannot be updated or uninstalled from here, or None when it can."""
        if record.builtin:
            return self.tr("Built-in plugins are part of Studiolo and cannot be uninstalled or updated on their own; "
                           "disable it instead.")
        if self._changes.get(record.name, (None, None))[0] == UNINSTALLED:
            return self.tr("It is uninstalled; restart Studiolo to finish.")
        if not record.distribution:
            return self.tr("Studiolo does not know which package this plugin came from.")
        return None

    @Slot(bool)
    def _on_busy_changed(self, _busy: bool) -> None:
        self._show_selected()

    # -- actions ---------------------------------------------------------------------------------------------

    def copy_traceback(self) -> None:
        """Put the selected plugin's error and traceback on the clipboard."""
        record = self.record(self.selected_name() or "")
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
        self.notice.setText(self._restart_text())
        self.refresh()
        if changed:
            self.enabled_changed.emit(name, enabled)
        return changed

    def _toggle_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.set_enabled(name, self._off(name))

    # -- installing, updating, uninstalling ------------------------------------------------------------------

    def start_install(self, spec: str) -> bool:
        """Install a plugin: a package name with an optional version range, a wheel or source archive, or a folder.
        The rights notice first (once ever), then the dry run on a worker; :meth:`confirm_install` installs.
        Returns whether it started; a refusal is shown on the page and in ``message``."""
        return self.installs.start_install(spec)

    def confirm_install(self) -> bool:
        """Install (or update) what the last dry run planned; False when no plan waits."""
        return self.installs.confirm_install()

    def cancel_install(self) -> None:
        """Stop the dry run or drop the plan waiting for confirmation (the install itself cannot be stopped)."""
        self.installs.cancel()

    def accept_notice(self) -> bool:
        """Accept the open rights notice; False when none is open."""
        return self.installs.accept_notice()

    def start_update(self, name: str) -> bool:
        """Update the plugin ``name`` (a plugin or package name) to its newest compatible version: a dry run, then
        :meth:`confirm_install`. Built-in plugins are refused."""
        record = self._find(name)
        refusal = self._refusal(record, name, update=True)
        if refusal is not None:
            self.installs.refuse(refusal)
            return False
        return self.installs.start_update(record.distribution if record and record.distribution else name)

    def start_uninstall(self, name: str, confirm: bool = False) -> bool:
        """Uninstall the plugin ``name`` (a plugin or package name); ``confirm`` asks first. Built-in plugins are
        refused. Returns whether it started (or the question was opened)."""
        record = self._find(name)
        refusal = self._refusal(record, name, update=False)
        if refusal is not None:
            self.installs.refuse(refusal)
            return False
        target = record.distribution if record and record.distribution else name
        shown = (self.tr("%1 (plugin %2)").replace("%1", target).replace("%2", record.name)
                 if record and record.name != target else target)
        return self.installs.start_uninstall(target, confirm=confirm, shown=shown)

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel a dry run and wait for the install threads to end. True when none runs any more."""
        return self.installs.shutdown(timeout_ms)

    def _update_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.start_update(name)

    def _uninstall_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.start_uninstall(name, confirm=True)

    def _find(self, name: str) -> PluginRecord | None:
        """The listed plugin called ``name``, or the first one from the package called ``name``."""
        found = self.record(name)
        if found is not None:
            return found
        key = canonical(name)
        return next((r for r in self.records() if r.distribution and canonical(r.distribution) == key), None)

    def _refusal(self, record: PluginRecord | None, name: str, *, update: bool) -> PluginInstallError | None:
        if record is None:
            return None  # the installer says what is wrong with a name it does not know
        if record.builtin:
            text = (self.tr("%1 is a built-in plugin, part of Studiolo: it is updated with Studiolo.") if update
                    else self.tr("%1 is a built-in plugin, part of Studiolo: it cannot be uninstalled."))
            return PluginInstallError(text.replace("%1", name),
                                      hint=self.tr("To turn it off, select it and press Disable."))
        if self._changes.get(record.name, (None, None))[0] == UNINSTALLED:
            return PluginInstallError(self.tr("%1 is already uninstalled; restart Studiolo to finish.").replace(
                "%1", name))
        return None

    @Slot(object, object)
    def _on_installed(self, result: InstallResult, info: DistributionInfo | None) -> None:
        """An install or update ran: list what it installed (loaded at the next start)."""
        if not result.installed or not result.plugin:
            return
        key = canonical(result.plugin)
        distribution = info.name if info is not None else result.plugin
        version = result.version or (info.version if info is not None else None)
        if info is not None and info.entry_points:
            entry_points = list(info.entry_points)
        else:
            entry_points = [(n.strip(), m.strip()) for n, _, m in (ep.partition("=") for ep in result.entry_points)]
        for name in [n for n, r in self._new.items() if canonical(r.distribution or "") == key]:
            del self._new[name]  # an update replaces them
        first = None
        for plugin_name, module in entry_points:
            loaded = self.manager.plugins.get(plugin_name)
            if loaded is not None and canonical(loaded.distribution or "") == key:
                if loaded.version == version:
                    self._changes.pop(plugin_name, None)
                else:
                    self._changes[plugin_name] = (UPDATED, version)
                first = first or plugin_name
                continue
            listed = plugin_name if loaded is None else f"{plugin_name} ({distribution})"
            record = PluginRecord(name=listed, module=module, distribution=distribution, version=version,
                                  summary=info.summary if info is not None else None,
                                  author=info.author if info is not None else None, status=INSTALLED)
            if loaded is not None:
                record.status, record.error = Status.FAILED, self.tr(
                    "another plugin is already named %1 (from %2); uninstall one of them").replace(
                    "%1", repr(plugin_name)).replace("%2", loaded.distribution or "?")
            elif plugin_name in result.import_errors:
                record.status = Status.FAILED
                record.error = result.import_errors[plugin_name]  # the loader's reason, like "import failed: …"
                record.traceback = result.tracebacks.get(plugin_name)
            self._new[listed] = record
            first = first or listed
        self.refresh()
        if first is not None:
            self.select(first)
        self.plugins_changed.emit()

    @Slot(object)
    def _on_uninstalled(self, result: UninstallResult) -> None:
        """An uninstall ran: mark what it removed (a loaded plugin stays loaded until the restart)."""
        removed = set(result.removed)
        if not removed:
            return
        for name in [n for n, r in self._new.items() if canonical(r.distribution or "") in removed]:
            del self._new[name]
        for record in self.manager.plugins.values():
            if not record.builtin and record.distribution and canonical(record.distribution) in removed:
                self._changes[record.name] = (UNINSTALLED, None)
        self.refresh()
        self.plugins_changed.emit()
