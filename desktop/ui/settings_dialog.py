"""The Settings dialog: theme, device, memory budget, idle unloading, the grace period of a cancel, output folder,
Hugging Face token, pickle weights, provenance (Content Credentials, invisible watermarks:
:mod:`desktop.ui.provenance_settings`) and the remote servers (:mod:`desktop.ui.server_settings`).

Nothing is written until OK: :meth:`SettingsDialog.apply` checks the values (a problem is shown in the dialog,
which stays open), copies them into the :class:`Settings`, saves it, applies the theme to the application at once
and emits ``settings_changed``.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop import paths
from desktop.engine.memory import human_bytes, total_ram
from desktop.settings import Settings
from desktop.ui.provenance_settings import ProvenanceSettings
from desktop.ui.server_settings import ServerSettings
from desktop.ui.theme import apply_theme, current_theme, mark_error

CUDA_INDEX = re.compile(r"cuda:(\d+)")
MIN_BUDGET_MB = 256
MAX_BUDGET_MB = 16 * 1024 * 1024  # 16 TB
MAX_IDLE_MINUTES = 7 * 24 * 60
MAX_CANCEL_GRACE_S = 600


class SettingsDialog(QDialog):
    """Edits a :class:`Settings`; OK saves it (``settings_changed`` is emitted), Cancel changes nothing."""

    settings_changed = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("settings_dialog")
        self.setWindowTitle(self.tr("Settings"))
        self._build()
        self._fill()

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        form = QFormLayout()

        self.theme_combo = QComboBox(self)
        self.theme_combo.setObjectName("theme_combo")
        for text, value in ((self.tr("System"), "system"), (self.tr("Light"), "light"), (self.tr("Dark"), "dark")):
            self.theme_combo.addItem(text, value)
        self.theme_combo.setToolTip(self.tr("System: light or dark as the system's colour scheme says."))
        form.addRow(self.tr("&Theme:"), self.theme_combo)

        self.device_combo = QComboBox(self)
        self.device_combo.setObjectName("device_combo")
        for text, value in ((self.tr("Automatic"), "auto"), (self.tr("CPU"), "cpu"), (self.tr("CUDA"), "cuda"),
                            (self.tr("Apple MPS"), "mps")):
            self.device_combo.addItem(text, value)
        form.addRow(self.tr("&Device:"), self.device_combo)

        ram = total_ram()
        half = human_bytes(ram // 2) if ram else None
        self.memory_auto_check = QCheckBox(
            self.tr("Automatic (half of this machine's RAM: %1)").replace("%1", half) if half
            else self.tr("Automatic (half of this machine's RAM)"), self)
        self.memory_auto_check.setObjectName("memory_auto_check")
        self.memory_spin = QSpinBox(self)
        self.memory_spin.setObjectName("memory_spin")
        self.memory_spin.setAccessibleName(self.tr("Memory budget in MB"))
        self.memory_spin.setRange(MIN_BUDGET_MB, MAX_BUDGET_MB)
        self.memory_spin.setSingleStep(512)
        self.memory_spin.setSuffix(self.tr(" MB"))
        self._auto_budget_mb = max(MIN_BUDGET_MB, min(MAX_BUDGET_MB, (ram or 0) // 2 // (1024 * 1024)))
        self.memory_auto_check.toggled.connect(lambda auto: self.memory_spin.setEnabled(not auto))
        memory_row = QHBoxLayout()
        memory_row.addWidget(self.memory_auto_check)
        memory_row.addWidget(self.memory_spin, 1)
        form.addRow(self.tr("Memory budget:"), memory_row)

        self.idle_spin = QDoubleSpinBox(self)
        self.idle_spin.setObjectName("idle_spin")
        self.idle_spin.setDecimals(1)
        self.idle_spin.setRange(0, MAX_IDLE_MINUTES)
        self.idle_spin.setSingleStep(1)
        self.idle_spin.setSuffix(self.tr(" min"))
        self.idle_spin.setSpecialValueText(self.tr("Never"))
        self.idle_spin.setToolTip(self.tr("Unload a model nobody used for this long (0: never)."))
        form.addRow(self.tr("&Unload idle models after:"), self.idle_spin)

        self.grace_spin = QDoubleSpinBox(self)
        self.grace_spin.setObjectName("grace_spin")
        self.grace_spin.setAccessibleName(self.tr("Seconds before a cancelled job is stopped"))
        self.grace_spin.setDecimals(1)
        self.grace_spin.setRange(0, MAX_CANCEL_GRACE_S)
        self.grace_spin.setSingleStep(1)
        self.grace_spin.setSuffix(self.tr(" s"))
        self.grace_spin.setToolTip(self.tr(
            "A cancelled job is first asked to stop. If its generator has not stopped after this many seconds, "
            "the generator's worker process is ended, and the job ends cancelled with what it had made so far "
            "(0: at once)."))
        form.addRow(self.tr("&Stop a cancelled job after:"), self.grace_spin)

        self.output_edit = QLineEdit(self)
        self.output_edit.setObjectName("output_edit")
        self.output_edit.setPlaceholderText(str(paths.default_output_dir()))
        self.output_edit.setClearButtonEnabled(True)
        self.browse_button = QToolButton(self)
        self.browse_button.setObjectName("browse_button")
        self.browse_button.setText(self.tr("Browse…"))
        self.browse_button.setAccessibleName(self.tr("Choose the output folder"))
        self.browse_button.clicked.connect(self._browse)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(self.browse_button)
        form.addRow(self.tr("Output folder:"), output_row)

        self.token_edit = QLineEdit(self)
        self.token_edit.setObjectName("token_edit")
        self.token_edit.setAccessibleName(self.tr("Hugging Face token"))
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText(self.tr("Only needed for gated models (HF_TOKEN is used when empty)"))
        self.show_token_button = QToolButton(self)
        self.show_token_button.setObjectName("show_token_button")
        self.show_token_button.setCheckable(True)
        self.show_token_button.toggled.connect(self._show_token)
        self._show_token(False)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_edit, 1)
        token_row.addWidget(self.show_token_button)
        form.addRow(self.tr("Hugging Face token:"), token_row)

        self.pickle_check = QCheckBox(self.tr("Allow pickle-format weights (.bin, .ckpt, .pt)"), self)
        self.pickle_check.setObjectName("pickle_check")
        self.pickle_warning = QLabel(self.tr(
            "<b>Warning:</b> pickle files can run arbitrary code on this computer when they are loaded. "
            "Enable this only for models from sources you trust."), self)
        self.pickle_warning.setObjectName("pickle_warning")
        self.pickle_warning.setWordWrap(True)
        mark_error(self.pickle_warning)
        self.pickle_warning.setVisible(False)
        self.pickle_check.toggled.connect(self.pickle_warning.setVisible)
        form.addRow(self.pickle_check)
        form.addRow(self.pickle_warning)

        self.provenance = ProvenanceSettings(self)
        self.servers = ServerSettings(self)

        self.error_label = QLabel(self)
        self.error_label.setObjectName("settings_error")
        self.error_label.setWordWrap(True)
        mark_error(self.error_label)
        self.error_label.hide()

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.setObjectName("settings_buttons")
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.provenance)
        layout.addWidget(self.servers)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def _fill(self) -> None:
        s = self.settings
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(s.theme)))
        index = self.device_combo.findData(s.device)
        if index < 0:
            match = CUDA_INDEX.fullmatch(s.device)
            text = (self.tr("CUDA device %1 (%2)").replace("%1", match.group(1)).replace("%2", s.device) if match
                    else s.device)
            self.device_combo.addItem(text, s.device)
            index = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(index)
        auto = s.memory_budget_mb is None
        self.memory_spin.setValue(self._auto_budget_mb if auto else s.memory_budget_mb)
        self.memory_auto_check.setChecked(auto)
        self.memory_spin.setEnabled(not auto)
        self.idle_spin.setValue(s.idle_unload_minutes)
        self.grace_spin.setValue(s.cancel_grace_seconds)
        self.output_edit.setText(s.output_dir or "")
        self.token_edit.setText(s.hf_token or "")
        self.pickle_check.setChecked(s.allow_pickle)
        self.pickle_warning.setVisible(s.allow_pickle)
        self.provenance.fill(s)
        self.servers.fill(s)

    # -- slots -----------------------------------------------------------------------------------------------

    def _show_token(self, shown: bool) -> None:
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_token_button.setText(self.tr("Hide") if shown else self.tr("Show"))
        self.show_token_button.setAccessibleName(self.tr("Hide the token") if shown else self.tr("Show the token"))

    def _browse(self) -> None:
        start = self.output_edit.text().strip() or str(paths.default_output_dir())
        folder = QFileDialog.getExistingDirectory(self, self.tr("Output folder"), start)
        if folder:
            self.output_edit.setText(folder)

    def _ok(self) -> None:
        if self.apply():
            self.accept()

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    # -- applying --------------------------------------------------------------------------------------------

    def _check_output_dir(self, text: str) -> tuple[str | None, str | None]:
        """``(folder to store, None)`` or ``(None, why it cannot be used)``. Creates the folder when needed."""
        if not text:
            return None, None
        path = Path(text).expanduser()
        if not path.is_absolute():
            return None, self.tr("The output folder must be a full path, like %1.").replace(
                "%1", str(paths.default_output_dir()))
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return None, self.tr("The output folder %1 cannot be used: %2.").replace("%1", str(path)).replace(
                "%2", reason)
        return str(path), None

    def apply(self) -> bool:
        """What OK does: check, copy the values into the settings, save them and emit ``settings_changed``.
        Returns False (with the reason shown in the dialog, nothing saved) when a value cannot be used."""
        self.error_label.hide()
        output_dir, problem = self._check_output_dir(self.output_edit.text().strip())
        problem = problem or self.provenance.check() or self.servers.check()
        if problem:
            self.show_error(problem)
            return False
        values = {
            "theme": self.theme_combo.currentData(),
            "device": self.device_combo.currentData(),
            "memory_budget_mb": None if self.memory_auto_check.isChecked() else self.memory_spin.value(),
            "idle_unload_minutes": float(self.idle_spin.value()),
            "cancel_grace_seconds": float(self.grace_spin.value()),
            "output_dir": output_dir,
            "hf_token": self.token_edit.text().strip() or None,
            "allow_pickle": self.pickle_check.isChecked(),
            **self.provenance.values(),
            **self.servers.values(),
        }
        candidate = copy.copy(self.settings)
        for name, value in values.items():
            setattr(candidate, name, value)
        try:
            candidate.save()
        except OSError as exc:
            self.show_error(self.tr("The settings could not be saved to %1: %2").replace(
                "%1", str(Settings.path())).replace("%2", exc.strerror or str(exc)))
            return False
        for name, value in values.items():
            setattr(self.settings, name, value)
        app = QApplication.instance()
        if isinstance(app, QApplication) and current_theme(app) != self.settings.theme:
            apply_theme(app, self.settings.theme)  # at once, on every open window
        self.settings_changed.emit()
        return True
