"""The Models page's file picker: the files of a hub repo that a single-file generator can use, with their sizes.

For a generator whose models are single files (``Generator.model_file_patterns``, e.g. ``*.gguf``), a hub repo
holds several models: one per file (a GGUF repo's quantisations). The Models page lists the repo's files off the
GUI thread, then shows this dialog (non-modal, opened with ``open()``); the user picks one and it is downloaded like
any model. :meth:`RepoFilesDialog.choose` picks one by its path, as a click and *Download* would (for tests and
keyboard users alike).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.engine.memory import human_bytes
from desktop.models.hub import RepoFile

PATH_ROLE = Qt.ItemDataRole.UserRole


class RepoFilesDialog(QDialog):
    """Pick one of ``files`` (already filtered to the generator's patterns) of the hub repo ``repo``; those in
    ``downloaded`` are marked. ``file_chosen(path)`` is emitted when the user accepts a file."""

    file_chosen = Signal(str)

    def __init__(self, repo: str, files: list[RepoFile], downloaded: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.repo = repo
        self.setObjectName("repo_files_dialog")
        self.setWindowTitle(self.tr("Download a file of %1").replace("%1", repo))
        intro = QLabel(self.tr("%1 holds several models, one per file. Choose the one to download (a smaller file "
                               "is faster and needs less memory; a larger one is usually better).")
                       .replace("%1", repo), self)
        intro.setWordWrap(True)
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("repo_files_table")
        self.table.setAccessibleName(self.tr("Files of %1").replace("%1", repo))
        self.table.setHorizontalHeaderLabels([self.tr("File"), self.tr("Size"), ""])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for row, file in enumerate(files):
            self.table.insertRow(row)
            cells = (file.path, human_bytes(file.size_bytes),
                     self.tr("downloaded") if file.path in downloaded else "")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(PATH_ROLE, file.path)
                if column == 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.download_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.download_button.setText(self.tr("Download"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.table.itemSelectionChanged.connect(self._update_button)
        self.table.itemDoubleClicked.connect(lambda _item: self.accept())
        if files:
            self.table.selectRow(0)
        self._update_button()
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 420)

    def files(self) -> list[str]:
        """The paths listed, top to bottom."""
        return [self.table.item(row, 0).data(PATH_ROLE) for row in range(self.table.rowCount())]

    def sizes(self) -> list[str]:
        """The sizes shown, top to bottom."""
        return [self.table.item(row, 1).text() for row in range(self.table.rowCount())]

    def selected(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(PATH_ROLE) if items else None

    def choose(self, path: str) -> bool:
        """Select ``path`` and accept it (as a click on it, then *Download*); False when it is not listed."""
        if path not in self.files():
            return False
        self.table.selectRow(self.files().index(path))
        self.accept()
        return True

    def accept(self) -> None:
        path = self.selected()
        if path is None:
            return
        super().accept()
        self.file_chosen.emit(path)

    def _update_button(self) -> None:
        self.download_button.setEnabled(self.selected() is not None)
