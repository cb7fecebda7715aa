"""Small widgets of the image panel: the LoRA list editor and a collapsible section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ParamError
from plugins.image.loras import parse_lora


def split_lora(text: str) -> tuple[str, float]:
    """``PATH:WEIGHT`` or ``PATH`` (weight 1) as ``(PATH, WEIGHT)``, read as the generator reads it."""
    try:
        spec = parse_lora(text)
    except ParamError:
        return text, 1.0
    return str(spec.path), spec.weight


def join_lora(path: str, weight: float) -> str:
    """The ``PATH:WEIGHT`` form the params carry."""
    return f"{path}:{weight:g}"


class LoraEditor(QWidget):
    """The LoRA list: one row per file with its weight; add (file dialog, or a stored LoRA by name when ``stored``
    gives ``(label, reference)`` pairs: the host's ``addon_models("lora")``) and remove the selected rows."""

    changed = Signal()

    def __init__(self, max_items: int = 8, parent: QWidget | None = None, *,
                 stored: Callable[[], list[tuple[str, str]]] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loras")
        self.setAccessibleName(self.tr("LoRAs"))
        self._max = max_items
        self.table = QTableWidget(0, 2, self)
        self.table.setObjectName("lora_table")
        self.table.setAccessibleName(self.tr("LoRA files and weights"))
        self.table.setHorizontalHeaderLabels([self.tr("File"), self.tr("Weight")])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(140)
        self.add_button = QPushButton(self.tr("Add…"), self)
        self.add_button.setObjectName("lora_add")
        self.add_button.setAccessibleName(self.tr("Add LoRA"))
        self.add_button.setToolTip(self.tr("Add LoRA .safetensors files"))
        self.remove_button = QPushButton(self.tr("Remove"), self)
        self.remove_button.setObjectName("lora_remove")
        self.remove_button.setAccessibleName(self.tr("Remove LoRA"))
        self.remove_button.setToolTip(self.tr("Remove the selected LoRAs"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        self._stored = stored
        self.stored_button: QToolButton | None = None
        if stored is not None:  # LoRAs in the model store (trained from your pictures, imported), by name
            self.stored_button = QToolButton(self)
            self.stored_button.setObjectName("lora_stored")
            self.stored_button.setText(self.tr("Stored"))
            self.stored_button.setAccessibleName(self.tr("Add a stored LoRA"))
            self.stored_button.setToolTip(self.tr("Add a LoRA from the model store (trained or imported) by name"))
            self.stored_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            self.stored_menu = QMenu(self.stored_button)
            self.stored_menu.aboutToShow.connect(self._fill_stored)
            self.stored_button.setMenu(self.stored_menu)
            buttons.addWidget(self.stored_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._browse)
        self.remove_button.clicked.connect(self.remove_selected)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    def add_lora(self, path: str, weight: float = 1.0) -> None:
        """Append a row (ignored past the maximum)."""
        if self.table.rowCount() >= self._max:
            return
        row = self.table.rowCount()
        self.table.insertRow(row)
        item = QTableWidgetItem(Path(path).name or path)
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(path)
        self.table.setItem(row, 0, item)
        spin = QDoubleSpinBox(self.table)
        spin.setObjectName(f"lora_weight_{row}")
        spin.setAccessibleName(self.tr("Weight of %1").replace("%1", item.text()))
        spin.setRange(-4.0, 4.0)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.setValue(weight)
        spin.valueChanged.connect(self.changed)
        self.table.setCellWidget(row, 1, spin)
        self._update_buttons()
        self.changed.emit()

    @Slot()
    def remove_selected(self) -> None:
        """Remove the selected rows."""
        for row in sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)
        self._update_buttons()
        self.changed.emit()

    def loras(self) -> list[str]:
        """Every row as ``PATH:WEIGHT``."""
        out = []
        for row in range(self.table.rowCount()):
            path = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
            spin = self.table.cellWidget(row, 1)
            out.append(join_lora(path, spin.value()))
        return out

    def set_loras(self, loras: list[str]) -> None:
        """Replace the rows with these ``PATH[:WEIGHT]`` entries."""
        self.table.setRowCount(0)
        for text in loras:
            self.add_lora(*split_lora(str(text)))
        self._update_buttons()

    @Slot()
    def _browse(self) -> None:  # never called by tests: opens a modal dialog
        files, _ = QFileDialog.getOpenFileNames(self, self.tr("Add LoRA"), "",
                                                self.tr("LoRA weights (*.safetensors);;All files (*)"))
        for name in files:
            self.add_lora(name)

    @Slot()
    def _fill_stored(self) -> None:
        """The stored LoRAs, read again each time the menu opens."""
        self.stored_menu.clear()
        models = self._stored() if self._stored is not None else []
        for label, ref in models:
            action = self.stored_menu.addAction(label)
            action.triggered.connect(lambda _checked=False, ref=ref: self.add_lora(ref))
        if not models:
            self.stored_menu.addAction(self.tr("No stored LoRAs yet (train one, or import one)")).setEnabled(False)

    @Slot()
    def _update_buttons(self) -> None:
        self.add_button.setEnabled(self.table.rowCount() < self._max)
        if self.stored_button is not None:
            self.stored_button.setEnabled(self.table.rowCount() < self._max)
        self.remove_button.setEnabled(bool(self.table.selectedIndexes()))


class Collapsible(QWidget):
    """A titled section whose body shows or hides when its title is clicked."""

    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton(self)
        self.toggle.setText(title)
        self.toggle.setAccessibleName(title)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setAutoRaise(True)
        self.body = body
        body.setParent(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toggle)
        layout.addWidget(body)
        self.toggle.toggled.connect(self.set_expanded)
        self.set_expanded(False)

    @Slot(bool)
    def set_expanded(self, expanded: bool) -> None:
        """Show (True) or hide the body."""
        self.toggle.setChecked(expanded)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)

    def is_expanded(self) -> bool:
        """Whether the body is shown."""
        return self.toggle.isChecked()
