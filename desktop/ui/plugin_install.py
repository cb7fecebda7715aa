"""Installing, updating and uninstalling plugins from the Plugins page: the worker and the install panel.

Every step that runs pip — the dry run that decides whether an install is safe, the install itself, an uninstall —
runs as a task on the ``pip`` pool of :mod:`desktop.ui.tasks`; pip's output reaches the page's log line by line
(``TaskState.report``). The GUI thread never runs pip and never waits on it.

The flow of an install or an update (:class:`InstallPanel`):

1. Before the first install ever, the rights notice (plugins run with the user's rights) is shown once; accepting
   it is remembered (:func:`desktop.install.acknowledge_notice`).
2. The plan: pip's dry run under pins on every installed package. Cancel stops it. A refused plan shows its
   reasons and hint; nothing was installed.
3. An accepted plan shows what would be installed and waits for *Install now* (Cancel still drops it).
4. The install: Cancel is disabled — pip cannot be stopped half-way, nor a half-done install rolled back.
5. The result (``installed``/``uninstalled``) goes to the page, which updates its list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal, Slot
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api.errors import StudioloError
from desktop.install import (
    RIGHTS_NOTICE,
    InstallCancelled,
    Installer,
    InstallResult,
    PipRunner,
    Plan,
    PluginInstallError,
    UninstallResult,
    acknowledge_notice,
    notice_acknowledged,
)
from desktop.install.pip_runner import _PRELUDE, JSON_MARK
from desktop.ui.tasks import TaskGroup, TaskState
from desktop.ui.theme import mark_error

log = logging.getLogger(__name__)

MAX_LOG_LINES = 3000
SHUTDOWN_WAIT_MS = 120_000  # at quit: a running install is left to finish (pip cannot be stopped half-way)

LineCallback = Callable[[str], None]
Work = Callable[[LineCallback, threading.Event], Any]
InstallerFactory = Callable[[], Installer]

# Read in the target environment after an install: the metadata the page shows for a plugin it cannot load yet.
DISTRIBUTION_SCRIPT = _PRELUDE + """
import json
from importlib import metadata
dist = metadata.distribution(sys.argv[1])
meta = dist.metadata
print(%r + json.dumps({
    "name": meta["Name"], "version": dist.version, "summary": meta["Summary"],
    "author": meta["Author"] or meta["Author-email"],
    "entry_points": [[ep.name, ep.value] for ep in dist.entry_points if ep.group == "studiolo"],
}))
""" % JSON_MARK


@dataclass
class DistributionInfo:
    """A plugin distribution's metadata, as the target environment reports it."""

    name: str
    version: str
    summary: str | None = None
    author: str | None = None
    entry_points: list[tuple[str, str]] = field(default_factory=list)  # (plugin name, module)


def read_distribution_info(runner: PipRunner, name: str) -> DistributionInfo | None:
    """The metadata of the installed distribution ``name`` in ``runner``'s environment; None when it cannot be
    read (it is only shown, so a failure here never fails an install). Blocks: call it on a worker."""
    try:
        value = runner.python_json(DISTRIBUTION_SCRIPT, name)
    except PluginInstallError as exc:
        log.warning("could not read the metadata of %s: %s", name, exc)
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    eps = [(str(ep[0]), str(ep[1])) for ep in value.get("entry_points") or () if isinstance(ep, list) and len(ep) == 2]
    return DistributionInfo(value["name"], str(value.get("version") or ""), value.get("summary") or None,
                            value.get("author") or None, eps)


def default_installer() -> Installer:
    """An installer for the Python environment Studiolo runs from (the package index as pip is configured)."""
    return Installer()


# -- the worker ----------------------------------------------------------------------------------------------


def _pip_step(work: Work, state: TaskState) -> Any:
    """Run one installer call on a ``pip`` task: pip's lines go to ``state.report``; an unexpected exception
    becomes a :class:`PluginInstallError` (a bug must not leave the page waiting for ever)."""
    try:
        return work(state.report, state.cancel_event)
    except StudioloError:
        raise
    except Exception as exc:
        log.exception("a plugin install step failed")
        raise PluginInstallError(f"The step failed unexpectedly ({type(exc).__name__}: {exc}).",
                                 hint="Studiolo's log has the details.") from exc


_pip: TaskGroup | None = None


def pip_tasks() -> TaskGroup:
    """Every plugin install step, whichever page started it. A running step is kept (by :mod:`desktop.ui.tasks`)
    when its page is closed first, so an install is never torn down with it; at quit, planning is cancelled and an
    install left to finish (:func:`shutdown_pip_tasks`)."""
    global _pip
    if _pip is None:
        _pip = TaskGroup("pip")
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(shutdown_pip_tasks)
    return _pip


def shutdown_pip_tasks(timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
    """Cancel what can be cancelled and wait (at most ``timeout_ms``) for every pip step. True when none runs."""
    tasks = pip_tasks()
    tasks.cancel_all()
    return tasks.wait(timeout_ms)


# -- the panel -----------------------------------------------------------------------------------------------


class Phase:
    IDLE = "idle"
    NOTICE = "notice"  # the rights notice is open
    PLANNING = "planning"
    CONFIRM = "confirm"  # a plan is ready; waiting for "Install now"
    INSTALLING = "installing"
    UNINSTALLING = "uninstalling"


BUSY = (Phase.NOTICE, Phase.PLANNING, Phase.INSTALLING, Phase.UNINSTALLING)


class InstallPanel(QGroupBox):
    """Install from a package name, a wheel or source archive, or a folder; update and uninstall by name.

    ``installer_factory()`` makes the :class:`Installer` (called on the worker thread). :attr:`log_view`, pip's
    live output, is shown while an operation runs and afterwards; the owner places it in its own layout. Signals:
    ``message(text, is_error)`` when an operation ends (or is refused); ``plan_ready(plan)`` when a dry run has
    decided; ``installed(result, info)`` after an install or update ran (an :class:`InstallResult` and the
    :class:`DistributionInfo` of the plugin, or None); ``uninstalled(result)``; ``busy_changed(busy)``.
    """

    message = Signal(str, bool)
    plan_ready = Signal(object)
    installed = Signal(object, object)
    uninstalled = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, installer_factory: InstallerFactory | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.installer_factory = installer_factory or default_installer
        self.phase = Phase.IDLE
        self.plan: Plan | None = None
        self._installer: Installer | None = None
        self._verb = "install"
        self._cancel = threading.Event()
        self._after_notice: Callable[[bool], None] | None = None
        self.notice_box: QMessageBox | None = None
        self._notice_continue: QPushButton | None = None
        self.uninstall_box: QMessageBox | None = None
        self._uninstall_yes: QPushButton | None = None
        self._uninstall_name: str | None = None
        self.file_dialog: QFileDialog | None = None
        self.folder_dialog: QFileDialog | None = None
        self._build()
        self._update_controls()

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.setTitle(self.tr("Install a plugin"))
        self.setObjectName("plugin_install")
        self.spec_edit = QLineEdit(self)
        self.spec_edit.setObjectName("install_spec")
        self.spec_edit.setAccessibleName(self.tr("Plugin to install"))
        self.spec_edit.setPlaceholderText(self.tr("package name, e.g. studiolo-markov==1.0"))
        self.spec_edit.setClearButtonEnabled(True)
        self.spec_edit.returnPressed.connect(self._install_typed)
        self.install_button = self._button("install_button", self.tr("Install"),
                                           self.tr("Check, then install the package named on the left"),
                                           self._install_typed)
        self.file_button = self._button("install_from_file", self.tr("From file…"),
                                        self.tr("Install a plugin from a wheel (.whl) or source archive (.tar.gz)"),
                                        self.choose_file)
        self.folder_button = self._button("install_from_folder", self.tr("From folder…"),
                                          self.tr("Install a plugin from its source folder (with pyproject.toml)"),
                                          self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.spec_edit, 1)
        for button in (self.install_button, self.file_button, self.folder_button):
            row.addWidget(button)

        self.status_label = QLabel(self)
        self.status_label.setObjectName("install_status")
        self.status_label.setAccessibleName(self.tr("Install status"))
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.hide()

        self.progress = QProgressBar(self)
        self.progress.setObjectName("install_progress")
        self.progress.setAccessibleName(self.tr("Install in progress"))
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(12)
        self.progress.hide()
        self.confirm_button = self._button("confirm_install", self.tr("Install now"),
                                           self.tr("Install what is listed above"), self.confirm_install)
        self.cancel_button = self._button("cancel_install", self.tr("Cancel"), "", self.cancel)
        actions = QHBoxLayout()
        actions.addWidget(self.progress, 1)
        actions.addStretch(0)
        actions.addWidget(self.confirm_button)
        actions.addWidget(self.cancel_button)

        self.log_view = QPlainTextEdit()
        self.log_view.setObjectName("install_log")
        self.log_view.setAccessibleName(self.tr("pip's output"))
        self.log_view.setReadOnly(True)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_view.setMaximumBlockCount(MAX_LOG_LINES)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setFixedPitch(True)
        self.log_view.setFont(mono)
        self.log_view.setMinimumHeight(4 * self.log_view.fontMetrics().lineSpacing())
        self.log_view.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        layout.addLayout(actions)
        # self.log_view is not in this layout: the page puts it where there is room (PluginsView: its splitter).

    def _button(self, name: str, text: str, tip: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setAccessibleName(text.rstrip("…"))
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # -- state -----------------------------------------------------------------------------------------------

    def is_busy(self) -> bool:
        """Whether an operation runs (or waits on the rights notice); another cannot start meanwhile."""
        return self.phase in BUSY

    def _set_phase(self, phase: str) -> None:
        was_busy = self.is_busy()
        self.phase = phase
        self._update_controls()
        if was_busy != self.is_busy():
            self.busy_changed.emit(self.is_busy())

    def _update_controls(self) -> None:
        busy = self.is_busy()
        for widget in (self.spec_edit, self.install_button, self.file_button, self.folder_button):
            widget.setEnabled(not busy)
        self.progress.setVisible(self.phase in (Phase.PLANNING, Phase.INSTALLING, Phase.UNINSTALLING))
        self.confirm_button.setVisible(self.phase == Phase.CONFIRM)
        self.confirm_button.setText(self.tr("Update now") if self._verb == "update" else self.tr("Install now"))
        self.cancel_button.setVisible(self.phase in (Phase.PLANNING, Phase.CONFIRM, Phase.INSTALLING,
                                                     Phase.UNINSTALLING))
        if self.phase in (Phase.INSTALLING, Phase.UNINSTALLING):
            self.cancel_button.setEnabled(False)
            self.cancel_button.setToolTip(self.tr(
                "pip is changing the Python environment now and cannot be stopped half-way (a half-done install "
                "cannot be rolled back); it will finish shortly."))
        else:
            self.cancel_button.setEnabled(self.phase in (Phase.PLANNING, Phase.CONFIRM)
                                          and not self._cancel.is_set())
            self.cancel_button.setToolTip(self.tr("Stop before anything is installed; nothing is changed"))

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        mark_error(self.status_label, error)
        self.status_label.setVisible(bool(text))

    def _report(self, text: str, error: bool) -> None:
        """Show the end of an operation in the panel and tell the window."""
        self.show_status(text, error)
        self.message.emit(" ".join(line.strip().removeprefix("• ") for line in text.splitlines() if line.strip()),
                          error)

    def refuse(self, error: StudioloError) -> None:
        """Show an error that stopped an operation before it started (nothing was changed)."""
        self._report(self._error_text(error), True)

    def _error_text(self, error: StudioloError) -> str:
        return error.message + (f"\n{error.hint}" if error.hint else "")

    def _busy_refusal(self) -> bool:
        if not self.is_busy():
            return False
        self.message.emit(self.tr("Another plugin install is running; wait for it to finish."), True)
        return True

    # -- starting --------------------------------------------------------------------------------------------

    @Slot()
    def _install_typed(self) -> None:
        self.start_install(self.spec_edit.text())

    @Slot()
    def choose_file(self) -> None:
        """Open a (non-modal) file chooser for a wheel or source archive; choosing one starts the install."""
        if self.file_dialog is None:
            dialog = QFileDialog(self, self.tr("Install a plugin from a file"))
            dialog.setObjectName("plugin_file_dialog")
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
            dialog.setNameFilters([self.tr("Plugin packages (*.whl *.tar.gz *.zip)"), self.tr("All files (*)")])
            dialog.fileSelected.connect(self._install_path)
            self.file_dialog = dialog
        self.file_dialog.open()

    @Slot()
    def choose_folder(self) -> None:
        """Open a (non-modal) folder chooser for a plugin's source folder; choosing one starts the install."""
        if self.folder_dialog is None:
            dialog = QFileDialog(self, self.tr("Install a plugin from its folder"))
            dialog.setObjectName("plugin_folder_dialog")
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
            dialog.fileSelected.connect(self._install_path)
            self.folder_dialog = dialog
        self.folder_dialog.open()

    @Slot(str)
    def _install_path(self, path: str) -> None:
        if path:
            self.spec_edit.setText(path)
            self.start_install(path)

    def start_install(self, spec: str) -> bool:
        """Install ``spec`` (a package name with an optional version range, a wheel or archive path, a folder):
        the notice (once), then the dry run. Returns whether it started; a refusal is shown, never raised."""
        if self._busy_refusal():
            return False
        self._drop_plan()
        if not spec.strip():
            self.refuse(PluginInstallError(self.tr("Type the name of a package to install, or choose a file or "
                                                   "folder.")))
            return False
        self._with_notice(lambda acknowledge: self._start_plan(spec.strip(), update=False, acknowledge=acknowledge))
        return True

    def start_update(self, name: str) -> bool:
        """Update the installed plugin ``name`` (its plugin or package name) to its newest compatible version,
        with the same checks and confirmation as an install."""
        if self._busy_refusal():
            return False
        self._drop_plan()
        self._with_notice(lambda acknowledge: self._start_plan(name, update=True, acknowledge=acknowledge))
        return True

    def start_uninstall(self, name: str, confirm: bool = False, shown: str | None = None) -> bool:
        """Uninstall the plugin distribution ``name``; ``confirm`` asks first (a message box opened with
        ``open()``). Returns whether it started (or the question was opened)."""
        if self._busy_refusal():
            return False
        self._drop_plan()
        if not confirm:
            self._start_uninstall(name)
            return True
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Uninstall a plugin"),
                          self.tr("Uninstall %1? The packages it brought along stay installed. Studiolo stops "
                                  "using it after a restart.").replace("%1", shown or name),
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("uninstall_confirm")
        self._uninstall_yes = box.addButton(self.tr("Uninstall"), QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(self._on_uninstall_answered)  # a slot, not a lambda: the box is deleted later
        self.uninstall_box, self._uninstall_name = box, name
        box.open()
        return True

    @Slot(int)
    def _on_uninstall_answered(self, _result: int) -> None:
        box, name = self.uninstall_box, self._uninstall_name
        if box is None or name is None:
            return
        accepted = box.clickedButton() is self._uninstall_yes
        self.uninstall_box = self._uninstall_yes = self._uninstall_name = None
        box.deleteLater()
        if accepted and not self._busy_refusal():
            self._start_uninstall(name)

    def accept_uninstall(self) -> bool:
        """Answer the open uninstall question with yes (what clicking *Uninstall* does)."""
        if self._uninstall_yes is None:
            return False
        self._uninstall_yes.click()
        return True

    # -- the rights notice -------------------------------------------------------------------------------------

    def _with_notice(self, action: Callable[[bool], None]) -> None:
        """Run ``action(acknowledge)`` now when the notice was accepted before, else once the user accepts it
        (``acknowledge`` true: the worker remembers the acceptance, so the GUI thread writes no file)."""
        if notice_acknowledged():
            action(False)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Before you install a plugin"), self.tr(RIGHTS_NOTICE),
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("rights_notice")
        self._notice_continue = box.addButton(self.tr("I understand, continue"), QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(self._on_notice_finished)
        self.notice_box = box
        self._after_notice = action
        self._set_phase(Phase.NOTICE)
        box.open()

    def accept_notice(self) -> bool:
        """Accept the open rights notice (what clicking its *continue* button does); False when none is open."""
        if self.notice_box is None or self._notice_continue is None:
            return False
        self._notice_continue.click()
        return True

    @Slot(int)
    def _on_notice_finished(self, _result: int) -> None:
        box, action = self.notice_box, self._after_notice
        if box is None:
            return
        accepted = box.clickedButton() is self._notice_continue
        self.notice_box = self._notice_continue = self._after_notice = None
        box.deleteLater()
        self._set_phase(Phase.IDLE)
        if not accepted:
            self._report(self.tr("Not installing: the notice was not accepted. Nothing was changed."), False)
            return
        if action is not None:
            action(True)

    # -- planning --------------------------------------------------------------------------------------------

    def _start_plan(self, spec: str, update: bool, acknowledge: bool = False) -> None:
        self._verb = "update" if update else "install"
        self.log_view.clear()
        self.log_view.show()
        what = spec if len(spec) <= 80 else "…" + spec[-79:]
        self.show_status((self.tr("Checking what updating %1 would change (nothing is changed yet)…") if update
                          else self.tr("Checking what installing %1 would change (nothing is installed yet)…")
                          ).replace("%1", what))
        factory = self.installer_factory

        def work(on_line: LineCallback, cancel: threading.Event) -> tuple[Installer, Plan]:
            if acknowledge:
                try:
                    acknowledge_notice()
                except OSError as exc:  # it is shown again next time; the install goes on
                    log.warning("could not remember the accepted plugin notice: %s", exc)
            installer = factory()
            for warning in installer.blocklist.warnings:
                on_line(f"warning: {warning}")
            if update:
                return installer, installer.plan_update(spec, on_line=on_line, cancel=cancel)
            return installer, installer.plan(spec, on_line=on_line, cancel=cancel)

        self._run(Phase.PLANNING, work, self._on_planned)

    @Slot(object, object)
    def _on_planned(self, result: Any, error: StudioloError | None) -> None:
        self._set_phase(Phase.IDLE)
        if error is None and self._cancel.is_set():
            error = InstallCancelled()  # Cancel was pressed as the dry run ended: the plan is dropped, as asked
        if error is not None:
            if isinstance(error, InstallCancelled):
                self._report(self.tr("Cancelled; nothing was changed."), False)
            else:
                self._report(self._error_text(error), True)
            return
        installer, plan = result
        self.plan_ready.emit(plan)
        if not plan.ok:
            head = (self.tr("Cannot update %1; nothing was changed:") if plan.upgrade
                    else self.tr("Cannot install %1; nothing was changed:")).replace("%1", plan.request.describe())
            lines = [head] + [f"• {reason}" for reason in plan.reasons] + ([plan.hint] if plan.hint else [])
            self._report("\n".join(lines), True)
            return
        if plan.nothing_to_do:
            self._report(plan.note or self.tr("Nothing to install."), False)
            return
        self.plan, self._installer = plan, installer
        head = self.tr("This will update:") if plan.upgrade else self.tr("This will install:")
        self.show_status("\n".join([head] + [f"• {line}" for line in plan.summary()]))
        self._set_phase(Phase.CONFIRM)
        self.confirm_button.setFocus()

    def _drop_plan(self) -> bool:
        dropped = self.phase == Phase.CONFIRM
        self.plan = self._installer = None
        if dropped:
            self._set_phase(Phase.IDLE)
        return dropped

    # -- installing ------------------------------------------------------------------------------------------

    def confirm_install(self) -> bool:
        """Install the plan shown (what *Install now* does); False when no plan waits for confirmation."""
        if self.phase != Phase.CONFIRM or self.plan is None or self._installer is None:
            return False
        plan, installer = self.plan, self._installer
        self.plan = self._installer = None
        self.show_status(self.tr("Installing… pip cannot be stopped half-way, so this cannot be cancelled."))

        def work(on_line: LineCallback, cancel: threading.Event) -> tuple[InstallResult, DistributionInfo | None]:
            result = installer.install(plan, on_line=on_line, cancel=cancel)
            info = None
            if result.installed and result.plugin:
                info = read_distribution_info(installer.runner, result.plugin)
            return result, info

        self._run(Phase.INSTALLING, work, self._on_installed)
        return True

    @Slot(object, object)
    def _on_installed(self, result: Any, error: StudioloError | None) -> None:
        self._set_phase(Phase.IDLE)
        if error is not None:
            cancelled = isinstance(error, InstallCancelled)
            self._report(self.tr("Cancelled; nothing was changed.") if cancelled else self._error_text(error),
                         not cancelled)
            return
        outcome, info = result
        lines = [outcome.message]
        for name, problem in outcome.import_errors.items():
            lines.append(f"• {name}: {problem}")
        if outcome.hint:
            lines.append(outcome.hint)
        self.installed.emit(outcome, info)
        self._report("\n".join(lines), not outcome.ok)

    # -- uninstalling ----------------------------------------------------------------------------------------

    def _start_uninstall(self, name: str) -> None:
        self.log_view.clear()
        self.log_view.show()
        self.show_status(self.tr("Uninstalling %1…").replace("%1", name))
        factory = self.installer_factory

        def work(on_line: LineCallback, _cancel: threading.Event) -> UninstallResult:
            return factory().uninstall(name, on_line=on_line)

        self._run(Phase.UNINSTALLING, work, self._on_uninstalled)

    @Slot(object, object)
    def _on_uninstalled(self, result: Any, error: StudioloError | None) -> None:
        self._set_phase(Phase.IDLE)
        if error is not None:
            self._report(self._error_text(error), True)
            return
        self.uninstalled.emit(result)
        self._report(result.message + (f"\n{result.hint}" if result.hint else ""), not result.ok)

    # -- cancelling and running ------------------------------------------------------------------------------

    @Slot()
    def cancel(self) -> None:
        """Stop the dry run, or drop a plan waiting for confirmation. The install itself cannot be stopped."""
        if self.phase == Phase.PLANNING:
            self._cancel.set()
            self.show_status(self.tr("Cancelling…"))
            self._update_controls()
        elif self._drop_plan():
            self._report(self.tr("Not installed; nothing was changed."), False)

    def _run(self, phase: str, work: Work, done: Callable[[Any, StudioloError | None], None]) -> None:
        self._set_phase(phase)
        task = pip_tasks().run(partial(_pip_step, work), owner=self, name="plugin-install",
                               on_report=self._append_line, on_done=lambda result: done(result, None),
                               on_failed=lambda error: done(None, error))  # type: ignore[arg-type]
        assert task is not None  # the pip group is never shut down
        self._cancel = task.state.cancel_event

    @Slot(str)
    def _append_line(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel a dry run and wait for every plugin task to end (at quit, and in tests). True when none runs."""
        if self.phase == Phase.PLANNING:
            self._cancel.set()
        return shutdown_pip_tasks(timeout_ms)
