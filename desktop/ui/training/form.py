"""The training window's setup (issue 22): which of the generator's training kinds, the base model, the trained
model's name, the kind's own params (a :class:`~desktop.api.params_form.ParamsForm` without its data field) and the
files to train on (the kind's data field, a list the user fills with files and folders)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ParamError, schema
from desktop.api.params_form import ParamsForm

__all__ = ["DATA_FIELDS", "DataFiles", "TrainingSetup", "data_field"]

DATA_FIELDS = ("images", "texts", "data")
"""The names a training kind's data field may have (its first ``list[str]`` field of one of these names)."""


def data_field(params_type: type) -> str | None:
    """The name of the field of a training kind's ``Params`` that lists the files to train on, or None."""
    for f in schema(params_type):
        if f.kind == "list" and f.item_kind in ("str", "path") and f.name in DATA_FIELDS:
            return f.name
    return None


class DataFiles(QWidget):
    """The files and folders a training reads: a list, with Add files…, Add folder… and Remove."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setObjectName("training_data")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setMinimumHeight(80)
        self.add_files_button = QPushButton(self.tr("Add files…"), self)
        self.add_files_button.setObjectName("training_add_files")
        self.add_folder_button = QPushButton(self.tr("Add folder…"), self)
        self.add_folder_button.setObjectName("training_add_folder")
        self.remove_button = QPushButton(self.tr("Remove"), self)
        self.remove_button.setObjectName("training_remove_data")
        self.add_files_button.clicked.connect(lambda _checked=False: self._browse(folder=False))
        self.add_folder_button.clicked.connect(lambda _checked=False: self._browse(folder=True))
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QVBoxLayout()
        for button in (self.add_files_button, self.add_folder_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def paths(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def set_paths(self, paths: Iterable[str | Path]) -> None:
        self.list.clear()
        self.add_paths(paths)

    def add_paths(self, paths: Iterable[str | Path]) -> None:
        have = set(self.paths())
        for path in paths:
            text = str(path)
            if text and text not in have:
                self.list.addItem(text)
                have.add(text)
        self.changed.emit()

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self.changed.emit()

    def _browse(self, *, folder: bool) -> None:
        dialog = QFileDialog(self, self.tr("Add a folder to train on") if folder else self.tr("Add files to train on"))
        dialog.setFileMode(QFileDialog.FileMode.Directory if folder else QFileDialog.FileMode.ExistingFiles)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.filesSelected.connect(self.add_paths)
        dialog.open()


class TrainingSetup(QWidget):
    """What a training is asked to do. ``model_chooser`` is the page's kind of model chooser (the base model),
    made by the window. ``changed()`` on any edit; ``name_changed(name)``."""

    changed = Signal()
    name_changed = Signal(str)

    def __init__(self, generator: Any, model_chooser: QWidget | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generator = generator
        self.kinds = list(getattr(generator, "training_kinds", ()) or ())
        self.model_chooser = model_chooser
        self.kind_box = QComboBox(self)
        self.kind_box.setObjectName("training_kind")
        for spec in self.kinds:
            self.kind_box.addItem(spec.name, spec.id)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("training_name")
        self.name_edit.setPlaceholderText(self.tr("my-style (letters, digits, '.', '-' and '_')"))
        self.name_edit.textChanged.connect(lambda text: self.name_changed.emit(text.strip()))
        self.data = DataFiles(self)
        self.data.changed.connect(self.changed)
        self.forms = QStackedWidget(self)  # one params form per kind, its data field left to the list above
        self.params_forms: list[ParamsForm] = []
        for spec in self.kinds:
            data = data_field(spec.Params)
            shown = [f.name for f in schema(spec.Params) if f.name != data]
            form = ParamsForm(spec.Params, self, fields=shown)
            form.setObjectName(f"training_params_{spec.id}")
            form.changed.connect(self.changed)
            self.params_forms.append(form)
            self.forms.addWidget(form)
        self.kind_box.currentIndexChanged.connect(self._kind_changed)
        top = QFormLayout()
        if len(self.kinds) > 1:
            top.addRow(self.tr("Train"), self.kind_box)
        else:
            self.kind_box.hide()
        top.addRow("", self.description)
        if model_chooser is not None:
            top.addRow(self.tr("Base model"), model_chooser)
        top.addRow(self.tr("Name"), self.name_edit)
        self.data_label = QLabel(self.tr("Train on"), self)
        top.addRow(self.data_label, self.data)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.forms, 1)
        self._kind_changed(self.kind_box.currentIndex())

    def _kind_changed(self, index: int) -> None:
        if index < 0:
            return
        self.forms.setCurrentIndex(index)
        spec = self.kinds[index]
        self.description.setText(spec.description)
        self.description.setVisible(bool(spec.description))
        has_data = data_field(spec.Params) is not None
        self.data.setVisible(has_data)
        self.data_label.setVisible(has_data)
        self.changed.emit()

    # -- what is asked ----------------------------------------------------------------------------------------

    def spec(self) -> Any:
        return self.kinds[self.kind_box.currentIndex()]

    def set_kind(self, kind_id: str) -> None:
        index = self.kind_box.findData(kind_id)
        if index >= 0:
            self.kind_box.setCurrentIndex(index)

    def form(self) -> ParamsForm:
        return self.params_forms[self.kind_box.currentIndex()]

    def name(self) -> str:
        return self.name_edit.text().strip()

    def model(self) -> str | None:
        ref = getattr(self.model_chooser, "ref", None)
        return ref() if callable(ref) else None

    def params(self) -> Any:
        """The kind's params: the form's, the data field the list's. Raises :class:`ParamError` (also when the
        kind reads files and none were added: said here rather than after the model was loaded)."""
        spec = self.spec()
        params = self.form().params()
        data = data_field(spec.Params)
        if data is None:
            return params
        paths = self.data.paths()
        if not paths:
            raise ParamError(data, [], "add the files or folders to train on first (Add files… / Add folder…)")
        return dataclasses.replace(params, **{data: paths})
