"""The Settings dialog's Provenance section: Content Credentials (sign every image and audio output, with or without
the prompts, with Studiolo's own certificate or the user's) and the optional invisible watermark, with what each
costs. The dialog saves the values; :meth:`ProvenanceSettings.check` says what is wrong with them first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from desktop.provenance.costs import SIGNING_COST, WATERMARK_COST
from desktop.provenance.keys import key_dir


class ProvenanceSettings(QGroupBox):
    """Edits ``sign_outputs``, ``sign_include_prompt``, ``signing_certificate``, ``signing_key`` and ``watermark``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("provenance_settings")
        self.setTitle(self.tr("Provenance"))
        form = QFormLayout(self)

        self.sign_check = QCheckBox(self.tr("Add Content Credentials (C2PA) to every image and audio output"), self)
        self.sign_check.setObjectName("sign_check")
        self.sign_check.setToolTip(self.tr(
            "A signed manifest inside the file says it was made by an AI model, with which generator and model. "
            "`studiolo verify FILE` and the gallery check it. %1").replace("%1", SIGNING_COST))
        form.addRow(self.sign_check)

        self.prompt_check = QCheckBox(self.tr("Include the prompts in them"), self)
        self.prompt_check.setObjectName("sign_prompt_check")
        form.addRow(self.prompt_check)

        self.certificate_edit, certificate_row = self._file_row("certificate_edit", self.tr(
            "Studiolo's own (made on first use in %1)").replace("%1", str(key_dir())),
            self.tr("Choose a PEM certificate chain"))
        form.addRow(self.tr("Signing certificate:"), certificate_row)
        self.key_edit, key_row = self._file_row("signing_key_edit", self.tr("Studiolo's own"),
                                                self.tr("Choose the certificate's PEM private key"))
        form.addRow(self.tr("Private key:"), key_row)
        note = QLabel(self.tr("A self-signed certificate proves that files come from this installation, not who you "
                              "are; a certificate of your own can say who signed."), self)
        note.setWordWrap(True)
        form.addRow(note)
        self.sign_check.toggled.connect(self._enable)

        self.watermark_check = QCheckBox(self.tr("Add an invisible watermark to images and text (off by default)"),
                                         self)
        self.watermark_check.setObjectName("watermark_check")
        form.addRow(self.watermark_check)
        self.watermark_cost = QLabel(WATERMARK_COST, self)
        self.watermark_cost.setObjectName("watermark_cost")
        self.watermark_cost.setWordWrap(True)
        form.addRow(self.watermark_cost)

    def _file_row(self, name: str, placeholder: str, title: str) -> tuple[QLineEdit, QHBoxLayout]:
        edit = QLineEdit(self)
        edit.setObjectName(name)
        edit.setPlaceholderText(placeholder)
        edit.setClearButtonEnabled(True)
        button = QToolButton(self)
        button.setText(self.tr("Browse…"))
        button.setAccessibleName(title)
        button.clicked.connect(lambda: self._browse(edit, title))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return edit, row

    def _browse(self, edit: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, edit.text() or str(Path.home()),
                                              self.tr("PEM files (*.pem *.crt *.key);;All files (*)"))
        if path:
            edit.setText(path)

    def _enable(self, on: bool) -> None:
        for widget in (self.prompt_check, self.certificate_edit, self.key_edit):
            widget.setEnabled(on)

    def fill(self, settings: Any) -> None:
        self.sign_check.setChecked(settings.sign_outputs)
        self.prompt_check.setChecked(settings.sign_include_prompt)
        self.certificate_edit.setText(settings.signing_certificate or "")
        self.key_edit.setText(settings.signing_key or "")
        self.watermark_check.setChecked(settings.watermark)
        self._enable(settings.sign_outputs)

    def values(self) -> dict[str, Any]:
        return {
            "sign_outputs": self.sign_check.isChecked(),
            "sign_include_prompt": self.prompt_check.isChecked(),
            "signing_certificate": self.certificate_edit.text().strip() or None,
            "signing_key": self.key_edit.text().strip() or None,
            "watermark": self.watermark_check.isChecked(),
        }

    def check(self) -> str | None:
        """Why the chosen certificate and key cannot sign (a message to show), or None. Reads two small PEM files."""
        values = self.values()
        if not values["sign_outputs"] or not (values["signing_certificate"] or values["signing_key"]):
            return None
        from desktop.api import StudioloError
        from desktop.provenance.keys import load_signing_keys

        try:
            load_signing_keys(values["signing_certificate"], values["signing_key"])
        except StudioloError as exc:
            return str(exc)
        return None
