"""A running or finished interpolation as a horizontal strip of frames that fills as they end (:class:`StripView`),
with a larger preview of the frame chosen, the progress, Cancel, Play (the preview cycles through the frames made)
and Save….

Pictures are drawn off the GUI thread (:func:`desktop.ui.explore.tiles.cell_tile` on the ``thumbnails`` pool); the
GUI thread only puts them in place. A frame opens its saved file (double-click or Enter) and gives its params, seed
and model back to the generator's page ("Reuse parameters"), as a grid's cell does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.explore.export import excerpt
from desktop.explore.strip import FRAME_MS
from desktop.ui.explore.grid_view import CANCELLED, DONE, FAILED, PENDING, CellState
from desktop.ui.explore.tiles import TILE, cell_tile
from desktop.ui.tasks import TaskGroup

__all__ = ["StripView"]

_PAD = 16


class StripView(QWidget):
    """The frames of an :class:`~desktop.explore.interpolate_run.InterpolationRun` (:meth:`show_run`), frame
    ``k`` in row ``k`` of the strip.

    Signals: ``run_finished()`` every frame has ended; ``reuse_requested(GridCell)``; ``message(text, error)``.
    """

    run_finished = Signal()
    reuse_requested = Signal(object)
    message = Signal(str, bool)

    def __init__(self, generator: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generator = generator
        self.kind = generator.kind
        self.run: Any = None
        self.states: dict[int, CellState] = {}
        self.url_opener: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self.tiles = TaskGroup("thumbnails", owner=self)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(FRAME_MS)
        self.play_timer.timeout.connect(self.next_frame)
        self.preview = QLabel(self)
        self.preview.setObjectName("interpolate_preview")
        self.preview.setFixedSize(TILE, TILE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setWordWrap(True)
        self.strip = QListWidget(self)
        self.strip.setObjectName("interpolate_strip")
        self.strip.setAccessibleName(self.tr("Frames"))
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setIconSize(QSize(TILE, TILE))
        line = self.fontMetrics().lineSpacing()
        self.strip.setGridSize(QSize(TILE + _PAD, TILE + 2 * line + _PAD))
        self.strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.strip.setFixedHeight(TILE + 2 * line + _PAD + self.strip.horizontalScrollBar().sizeHint().height()
                                  + 2 * self.strip.frameWidth() + 4)
        self.strip.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.strip.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.strip.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.strip.customContextMenuRequested.connect(self._context_menu)
        self.strip.itemDoubleClicked.connect(lambda _item: self.open_current())
        self.strip.currentRowChanged.connect(self._show_preview)
        self.open_action = self._action(self.tr("Open"), self.open_current,
                                        [QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        self.reuse_action = self._action(self.tr("Reuse parameters"), self.reuse_current, [])
        self.progress = QProgressBar(self)
        self.progress.setObjectName("interpolate_progress")
        self.status = QLabel(self)
        self.status.setObjectName("interpolate_status")
        self.play_button = QPushButton(self.tr("Play"), self)
        self.play_button.setObjectName("interpolate_play")
        self.play_button.setCheckable(True)
        self.play_button.setEnabled(False)
        self.play_button.setToolTip(self.tr("Show the frames made one after the other in the preview"))
        self.play_button.toggled.connect(self.play)
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setObjectName("interpolate_cancel")
        self.cancel_button.setToolTip(self.tr("Cancel the frames not made yet"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QPushButton(self.tr("Save…"), self)
        self.save_button.setObjectName("interpolate_save")
        self.save_button.setEnabled(False)
        self.save_button.setToolTip(self.tr("Save the frames as an animated WebP or GIF, or a strip PNG")
                                    if self.kind == "image" else
                                    self.tr("Only image frames are saved as one file; each frame is in the gallery"))
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.status)
        bar.addWidget(self.play_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.save_button)
        frames = QHBoxLayout()
        frames.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        frames.addWidget(self.strip, 1, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(frames)
        layout.addStretch(1)

    def _action(self, text: str, slot: Callable[[], object], keys: list[QKeySequence]) -> QAction:
        action = QAction(text, self.strip)
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        self.strip.addAction(action)
        return action

    # -- the run ---------------------------------------------------------------------------------------------

    def show_run(self, run: Any) -> None:
        """Show ``run``'s frames (all waiting) and follow it: each frame as it ends, the progress, the end."""
        if self.run is not None:
            self._follow(self.run, False)
        self.play_button.setChecked(False)
        self.run = run
        self.states = {cell.index[0]: CellState(cell, job_id)
                       for cell, job_id in zip(run.cells, run.job_ids, strict=True)}
        self.strip.blockSignals(True)
        self.strip.clear()
        for k in range(run.total):
            item = QListWidgetItem(self.strip)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            item.setData(Qt.ItemDataRole.UserRole, k)
        self.strip.blockSignals(False)
        for k in self.states:
            self._paint(k)
        self._show_preview(-1)
        self.progress.setRange(0, run.total)
        self.cancel_button.setEnabled(not run.is_finished)
        self.save_button.setEnabled(False)
        self.play_button.setEnabled(False)
        self._follow(run, True)
        self._on_progressed(run.ended, run.total)

    def _follow(self, run: Any, on: bool) -> None:
        pairs = ((run.cell_done, self._on_done), (run.cell_failed, self._on_failed),
                 (run.cell_cancelled, self._on_cancelled), (run.progressed, self._on_progressed),
                 (run.finished, self._on_finished))
        for signal, slot in pairs:
            signal.connect(slot) if on else signal.disconnect(slot)

    @Slot()
    def cancel(self) -> None:
        """Cancel the frames not ended yet (those that end meanwhile keep their results)."""
        if self.run is not None:
            self.run.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText(self.tr("Cancelling…"))

    @Slot(object, str, object)
    def _on_done(self, index: Any, _job_id: str, outputs: Any) -> None:
        k = index[0]
        state = self.states[k]
        state.status = DONE
        state.paths = list(self.run.saved.get(index, []))
        if self.kind in ("image", "audio"):
            self.tiles.run(partial(cell_tile, self.kind, list(outputs), state.paths),
                           on_done=partial(self._on_tile, self.run, k))
        else:
            state.text = excerpt(" ".join(getattr(o, "text", "") for o in outputs))
        self._paint(k)

    @Slot(object, str, str)
    def _on_failed(self, index: Any, _job_id: str, message: str) -> None:
        state = self.states[index[0]]
        state.status, state.message = FAILED, message
        self._paint(index[0])

    @Slot(object, str)
    def _on_cancelled(self, index: Any, _job_id: str) -> None:
        self.states[index[0]].status = CANCELLED
        self._paint(index[0])

    def _on_tile(self, run: Any, k: int, picture: QImage | None) -> None:
        if run is not self.run or picture is None:
            return  # a frame of a run no longer shown
        self.states[k].picture = QPixmap.fromImage(picture)
        self._paint(k)
        if self.strip.currentRow() < 0:
            self.strip.setCurrentRow(k)  # the first picture drawn fills the preview
        elif self.strip.currentRow() == k:
            self._show_preview(k)
        self.play_button.setEnabled(True)

    @Slot(int, int)
    def _on_progressed(self, done: int, total: int) -> None:
        self.progress.setValue(done)
        self.status.setText(self.tr("%1 of %2 frames").replace("%1", str(done)).replace("%2", str(total)))

    @Slot()
    def _on_finished(self) -> None:
        failed = sum(s.status == FAILED for s in self.states.values())
        cancelled = sum(s.status == CANCELLED for s in self.states.values())
        text = self.tr("Done: %1 frames").replace("%1", str(len(self.states)))
        if failed or cancelled:
            text += self.tr(" (%1 failed, %2 cancelled)").replace("%1", str(failed)).replace("%2", str(cancelled))
        self.status.setText(text)
        self.cancel_button.setEnabled(False)
        self.save_button.setEnabled(self.kind == "image" and any(s.status == DONE for s in self.states.values()))
        self.run_finished.emit()

    # -- frames ------------------------------------------------------------------------------------------------

    def _paint(self, k: int) -> None:
        item = self.strip.item(k)
        state = self.states.get(k)
        if item is None or state is None:
            return
        number = str(k + 1)
        tip = ", ".join(f"{label} {value}" for label, value in state.cell.labels.items())
        tip += "\n" + self.tr("seed %1").replace("%1", str(state.cell.seed))
        item.setIcon(QIcon(state.picture) if state.picture is not None else QIcon())
        if state.status == PENDING:
            item.setText(self.tr("%1 · waiting").replace("%1", number))
        elif state.status == FAILED:
            item.setText(self.tr("%1 · failed").replace("%1", number))
            tip += "\n" + state.message
        elif state.status == CANCELLED:
            item.setText(self.tr("%1 · cancelled").replace("%1", number))
        elif state.text:
            item.setText(f"{number} · {state.text}")
            tip += "\n" + state.text
        else:
            item.setText(number)
        item.setToolTip(tip)

    @Slot(int)
    def _show_preview(self, row: int) -> None:
        state = self.states.get(row)
        if state is not None and state.picture is not None:
            self.preview.setPixmap(state.picture)
            return
        self.preview.setPixmap(QPixmap())
        self.preview.setText(self.tr("Frame %1").replace("%1", str(row + 1)) if state is not None else "")

    def current_state(self) -> CellState | None:
        return self.states.get(self.strip.currentRow())

    @Slot(bool)
    def play(self, on: bool) -> None:
        """Start (or stop) cycling the preview through the frames drawn, :data:`FRAME_MS` each."""
        if on and not any(s.picture is not None for s in self.states.values()):
            self.play_button.setChecked(False)
            return
        if on:
            self.play_timer.start()
        else:
            self.play_timer.stop()
        self.play_button.setText(self.tr("Stop") if on else self.tr("Play"))

    @Slot()
    def next_frame(self) -> int:
        """Show the next frame that has a picture (after the last, the first); its row, or -1 when none has."""
        drawn = sorted(k for k, s in self.states.items() if s.picture is not None)
        if not drawn:
            return -1
        current = self.strip.currentRow()
        row = next((k for k in drawn if k > current), drawn[0])
        self.strip.setCurrentRow(row)
        return row

    @Slot()
    def open_current(self) -> bool:
        """Open the current frame's saved file in its application (the gallery's Open)."""
        state = self.current_state()
        if state is None:
            return False
        if state.status != DONE or not state.paths:
            why = {PENDING: self.tr("This frame is not made yet."), FAILED: self.tr("This frame failed."),
                   CANCELLED: self.tr("This frame was cancelled.")}.get(state.status,
                                                                       self.tr("Its output was not saved."))
            self.message.emit(self.tr("No file to open: %1").replace("%1", why), True)
            return False
        if self.url_opener(QUrl.fromLocalFile(str(state.paths[0]))):
            return True
        self.message.emit(self.tr("No application opens %1.").replace("%1", state.paths[0].name), True)
        return False

    @Slot()
    def reuse_current(self) -> bool:
        """Give the current frame's params, seed and model to the generator's page."""
        state = self.current_state()
        if state is None:
            return False
        self.reuse_requested.emit(state.cell)
        return True

    def _context_menu(self, pos: QPoint) -> None:
        item = self.strip.itemAt(pos)
        if item is None:
            return
        self.strip.setCurrentItem(item)
        state = self.current_state()
        saved = state is not None and state.status == DONE and bool(state.paths)
        menu = QMenu(self)
        menu.setObjectName("interpolate_frame_menu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.open_action.text(), self.open_current).setEnabled(saved)
        menu.addAction(self.reuse_action.text(), self.reuse_current)
        menu.popup(self.strip.viewport().mapToGlobal(pos))

    def shutdown(self) -> None:
        """Stop playing and drawing (the window is closing)."""
        self.play_timer.stop()
        self.tiles.shutdown(timeout_ms=2000)
