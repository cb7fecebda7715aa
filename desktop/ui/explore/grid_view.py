"""A running or finished grid as a labelled table that fills as its cells end (:class:`GridView`).

Columns are the x axis's values, rows the y axis's; a z axis gets a selector showing one z value's table at a time.
Images are pictures, text an excerpt, audio a waveform with a play button (the gallery's player). A cell not ended
says so, a failed one shows its error, a cancelled one is marked. Pictures and waveforms are drawn off the GUI
thread (:mod:`desktop.ui.explore.tiles` on the ``thumbnails`` pool); the GUI thread only puts them in place.

A cell opens its saved file (double-click or Enter, like the gallery's Open), plays (audio) and gives its params,
seed and model back to the generator's page ("Reuse parameters").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QBrush, QColor, QDesktopServices, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api.params_form import INVALID_COLOUR
from desktop.explore.export import excerpt
from desktop.explore.grid import GridCell
from desktop.ui.explore.tiles import TILE, WAVE_HEIGHT, WAVE_WIDTH, cell_tile
from desktop.ui.gallery.player import AudioPlayer
from desktop.ui.tasks import TaskGroup

__all__ = ["GridView", "CellState", "PENDING", "DONE", "FAILED", "CANCELLED"]

PENDING, DONE, FAILED, CANCELLED = "pending", "done", "failed", "cancelled"
"""A cell's state: its job not ended yet, done, failed, cancelled."""
INDEX_ROLE = Qt.ItemDataRole.UserRole
_TEXT_COLUMN, _TEXT_LINES = 280, 7
_MUTED = QColor(128, 128, 128)

Index = tuple[int, int, int]


@dataclass
class CellState:
    """What the view knows of one cell: its grid cell, its job, its state, its error, its text excerpt (text),
    its saved files and its picture (images and audio, once drawn)."""

    cell: GridCell
    job_id: str
    status: str = PENDING
    message: str = ""
    text: str = ""
    paths: list[Path] = field(default_factory=list)
    picture: QPixmap | None = None


class GridView(QWidget):
    """The cells of a :class:`~desktop.explore.run.GridRun` (:meth:`show_run`), with its progress and Cancel.

    Signals: ``grid_finished()`` every cell has ended; ``reuse_requested(GridCell)``; ``message(text, error)``.
    """

    grid_finished = Signal()
    reuse_requested = Signal(object)
    message = Signal(str, bool)

    def __init__(self, generator: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generator = generator
        self.kind = generator.kind
        self.run: Any = None
        self.states: dict[Index, CellState] = {}
        self.player = AudioPlayer(self)
        self.url_opener: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self.tiles = TaskGroup("thumbnails", owner=self)
        self.z_label = QLabel(self)
        self.z_combo = QComboBox(self)
        self.z_combo.setObjectName("grid_z")
        self.z_combo.setAccessibleName(self.tr("Z axis value"))
        self.z_combo.currentIndexChanged.connect(self._fill)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("grid_progress")
        self.status = QLabel(self)
        self.status.setObjectName("grid_status")
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setObjectName("grid_cancel")
        self.cancel_button.setToolTip(self.tr("Cancel the cells not made yet"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QPushButton(self.tr("Save grid…"), self)
        self.save_button.setObjectName("grid_save")
        self.save_button.setEnabled(False)
        self.table = QTableWidget(self)
        self.table.setObjectName("grid_table")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _index: self.open_current())
        self._size_cells()
        self.open_action = self._action(self.tr("Open"), self.open_current,
                                        [QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        self.play_action = self._action(self.tr("Play"), self.play_current, [QKeySequence(Qt.Key.Key_Space)])
        self.reuse_action = self._action(self.tr("Reuse parameters"), self.reuse_current, [])
        self.player.error.connect(lambda text: self.message.emit(
            self.tr("Cannot play the clip: %1").replace("%1", text), True))
        bar = QHBoxLayout()
        bar.addWidget(self.z_label)
        bar.addWidget(self.z_combo)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.status)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        self.z_label.hide()
        self.z_combo.hide()

    def _action(self, text: str, slot: Callable[[], object], keys: list[QKeySequence]) -> QAction:
        action = QAction(text, self.table)
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        self.table.addAction(action)
        return action

    def _size_cells(self) -> None:
        horizontal, vertical = self.table.horizontalHeader(), self.table.verticalHeader()
        if self.kind == "image":
            self.table.setIconSize(QSize(TILE, TILE))
            horizontal.setDefaultSectionSize(TILE + 12)
            vertical.setDefaultSectionSize(TILE + 12)
        elif self.kind == "audio":
            horizontal.setDefaultSectionSize(WAVE_WIDTH + 48)
            vertical.setDefaultSectionSize(WAVE_HEIGHT + 16)
        else:
            horizontal.setDefaultSectionSize(_TEXT_COLUMN)
            vertical.setDefaultSectionSize(self.fontMetrics().lineSpacing() * _TEXT_LINES + 8)

    # -- the run ---------------------------------------------------------------------------------------------

    def show_run(self, run: Any) -> None:
        """Show ``run``'s cells (all pending) and follow it: each cell as it ends, the progress, the end."""
        if self.run is not None:
            self._follow(self.run, False)
        self.player.stop()
        self.run = run
        self.states = {cell.index: CellState(cell, run.job_id_of(cell.index)) for cell in run.cells}
        axes = run.spec.axes
        self.table.clearSelection()
        self.table.setColumnCount(len(axes[0].values))
        self.table.setRowCount(len(axes[1].values) if len(axes) > 1 else 1)
        self.table.setHorizontalHeaderLabels([f"{axes[0].label}: {v}" for v in axes[0].value_labels])
        self.table.setVerticalHeaderLabels([f"{axes[1].label}: {v}" for v in axes[1].value_labels]
                                           if len(axes) > 1 else [""])
        self.z_combo.blockSignals(True)
        self.z_combo.clear()
        if len(axes) > 2:
            self.z_label.setText(axes[2].label)
            self.z_combo.addItems(list(axes[2].value_labels))
        self.z_combo.blockSignals(False)
        self.z_label.setVisible(len(axes) > 2)
        self.z_combo.setVisible(len(axes) > 2)
        self.progress.setRange(0, run.total)
        self.progress.setValue(run.ended)
        self.cancel_button.setEnabled(not run.is_finished)
        self.save_button.setEnabled(False)
        self._fill()
        self._follow(run, True)
        self._on_progressed(run.ended, run.total)

    def _follow(self, run: Any, on: bool) -> None:
        pairs = ((run.cell_done, self._on_done), (run.cell_failed, self._on_failed),
                 (run.cell_cancelled, self._on_cancelled), (run.progressed, self._on_progressed),
                 (run.finished, self._on_finished))
        for signal, slot in pairs:
            signal.connect(slot) if on else signal.disconnect(slot)

    def z(self) -> int:
        """The z value shown (0 without a z axis)."""
        return max(0, self.z_combo.currentIndex())

    @Slot()
    def cancel(self) -> None:
        """Cancel the cells not ended yet (those that end meanwhile keep their results)."""
        if self.run is not None:
            self.run.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText(self.tr("Cancelling…"))

    @Slot(object, str, object)
    def _on_done(self, index: Index, _job_id: str, outputs: Any) -> None:
        state = self.states[index]
        state.status = DONE
        state.paths = list(self.run.saved.get(index, []))
        if self.kind not in ("image", "audio"):  # text, and a kind the host has no picture for
            state.text = excerpt(" ".join(getattr(o, "text", "") for o in outputs))
        else:
            self.tiles.run(partial(cell_tile, self.kind, list(outputs), state.paths),
                           on_done=partial(self._on_tile, self.run, index))
        self._paint(index)

    @Slot(object, str, str)
    def _on_failed(self, index: Index, _job_id: str, message: str) -> None:
        state = self.states[index]
        state.status, state.message = FAILED, message
        self._paint(index)

    @Slot(object, str)
    def _on_cancelled(self, index: Index, _job_id: str) -> None:
        self.states[index].status = CANCELLED
        self._paint(index)

    def _on_tile(self, run: Any, index: Index, picture: QImage | None) -> None:
        if run is not self.run or picture is None:
            return  # a tile of a grid no longer shown
        self.states[index].picture = QPixmap.fromImage(picture)
        self._paint(index)

    @Slot(int, int)
    def _on_progressed(self, done: int, total: int) -> None:
        self.progress.setValue(done)
        self.status.setText(self.tr("%1 of %2 cells").replace("%1", str(done)).replace("%2", str(total)))

    @Slot()
    def _on_finished(self) -> None:
        counts = {status: sum(s.status == status for s in self.states.values()) for status in (FAILED, CANCELLED)}
        text = self.tr("Done: %1 cells").replace("%1", str(len(self.states)))
        if counts[FAILED] or counts[CANCELLED]:
            text += self.tr(" (%1 failed, %2 cancelled)").replace("%1", str(counts[FAILED])) \
                .replace("%2", str(counts[CANCELLED]))
        self.status.setText(text)
        self.cancel_button.setEnabled(False)
        self.save_button.setEnabled(True)
        self.grid_finished.emit()

    # -- cells -------------------------------------------------------------------------------------------------

    @Slot()
    def _fill(self) -> None:
        """Show the cells of the z value chosen."""
        z = self.z()
        for state in self.states.values():
            if state.cell.index[2] == z:
                self._paint(state.cell.index)

    def _paint(self, index: Index) -> None:
        x, y, z = index
        if z != self.z():
            return
        state = self.states[index]
        item = self.table.item(y, x)
        if item is None:
            item = QTableWidgetItem()
            item.setData(INDEX_ROLE, index)
            self.table.setItem(y, x, item)
        item.setData(INDEX_ROLE, index)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter if self.kind != "text" else
                              Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        item.setData(Qt.ItemDataRole.DecorationRole, None)
        item.setForeground(QBrush())
        tip = ", ".join(f"{label} {value}" for label, value in state.cell.labels.items())
        if state.status == PENDING:
            item.setText(self.tr("Waiting…"))
            item.setForeground(QBrush(_MUTED))
        elif state.status == FAILED:
            item.setText(self.tr("Failed: %1").replace("%1", state.message))
            item.setForeground(QBrush(QColor(INVALID_COLOUR)))
            tip += "\n" + state.message
        elif state.status == CANCELLED:
            item.setText(self.tr("Cancelled"))
            item.setForeground(QBrush(_MUTED))
        elif self.kind == "image":
            item.setText("" if state.picture is not None else self.tr("Done"))
            if state.picture is not None:
                item.setData(Qt.ItemDataRole.DecorationRole, state.picture)
        elif self.kind == "audio":
            item.setText("")
        else:
            item.setText(state.text)
            tip += "\n" + state.text
        item.setToolTip(tip)
        self._audio_widget(index, state)

    def _audio_widget(self, index: Index, state: CellState) -> None:
        if self.kind != "audio":
            return
        x, y, _z = index
        if state.status != DONE:
            self.table.removeCellWidget(y, x)
            return
        box = QWidget()
        box.setObjectName("grid_audio_cell")
        row = QHBoxLayout(box)
        row.setContentsMargins(4, 2, 4, 2)
        play = QToolButton(box)
        play.setObjectName("play")
        play.setText("▶")
        play.setAccessibleName(self.tr("Play"))
        play.setToolTip(self.tr("Play this cell's clip") if state.paths else
                        self.tr("This clip was not saved: nothing to play"))
        play.setEnabled(bool(state.paths))
        play.clicked.connect(partial(self.play_cell, index))
        wave = QLabel(box)
        wave.setObjectName("waveform")
        if state.picture is not None:
            wave.setPixmap(state.picture)
        else:
            wave.setText(self.tr("Drawing…"))
        row.addWidget(play)
        row.addWidget(wave, 1)
        self.table.setCellWidget(y, x, box)

    def current_state(self) -> CellState | None:
        item = self.table.currentItem()
        index = item.data(INDEX_ROLE) if item is not None else None
        return self.states.get(tuple(index)) if index is not None else None

    def select_cell(self, index: Index) -> None:
        """Make the cell at ``index`` the current one (showing its z value)."""
        if len(self.run.spec.axes) > 2:
            self.z_combo.setCurrentIndex(index[2])
        self.table.setCurrentCell(index[1], index[0])

    @Slot()
    def open_current(self) -> bool:
        """Open the current cell's saved file in its application (the gallery's Open)."""
        state = self.current_state()
        if state is None:
            return False
        if state.status != DONE or not state.paths:
            why = {PENDING: self.tr("This cell is not made yet."), FAILED: self.tr("This cell failed."),
                   CANCELLED: self.tr("This cell was cancelled.")}.get(state.status,
                                                                      self.tr("Its output was not saved."))
            self.message.emit(self.tr("No file to open: %1").replace("%1", why), True)
            return False
        if self.url_opener(QUrl.fromLocalFile(str(state.paths[0]))):
            return True
        self.message.emit(self.tr("No application opens %1.").replace("%1", state.paths[0].name), True)
        return False

    @Slot()
    def play_current(self) -> bool:
        state = self.current_state()
        return self.play_cell(state.cell.index) if state is not None else False

    def play_cell(self, index: Index) -> bool:
        """Play (or stop) the clip of the cell at ``index`` with the gallery's player."""
        state = self.states.get(index)
        if state is None or self.kind != "audio" or not state.paths:
            return False
        if self.player.play(state.paths[0]):
            return True
        self.message.emit(self.player.unavailable_reason or self.tr("Playback is unavailable."), True)
        return False

    @Slot()
    def reuse_current(self) -> bool:
        """Give the current cell's params, seed and model to the generator's page."""
        state = self.current_state()
        if state is None:
            return False
        self.reuse_requested.emit(state.cell)
        return True

    def _context_menu(self, pos: QPoint) -> None:
        item = self.table.itemAt(pos)
        if item is None:
            return
        self.table.setCurrentItem(item)
        state = self.current_state()
        saved = state is not None and state.status == DONE and bool(state.paths)
        menu = QMenu(self)
        menu.setObjectName("grid_cell_menu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.open_action.text(), self.open_current).setEnabled(saved)
        if self.kind == "audio":
            menu.addAction(self.play_action.text(), self.play_current).setEnabled(saved)
        menu.addAction(self.reuse_action.text(), self.reuse_current)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def shutdown(self) -> None:
        """Stop playing and drawing (the window is closing)."""
        self.player.stop()
        self.tiles.shutdown(timeout_ms=2000)
