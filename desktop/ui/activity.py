"""The activity view: the jobs of this session the engine remembers — queued, running, and the latest finished
(a row goes when the engine forgets its job) — with progress, a preview, cancel, re-run, and the queue's order and
pause."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ImageOutput, TextOutput, prompt_field, to_json
from desktop.engine.engine import Engine, connect_job_signals
from desktop.engine.jobs import Job, JobState, UnknownJob
from desktop.ui.output_view import to_qimage

COLUMNS = ("generator", "job", "state", "progress", "preview")
MAX_ROWS = 500
THUMB = 48


class ActivityView(QWidget):
    def __init__(self, engine: Engine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("activity_table")
        self.table.setHorizontalHeaderLabels([self.tr("Generator"), self.tr("Job"), self.tr("State"),
                                              self.tr("Progress"), self.tr("Preview")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.buttons: dict[str, QPushButton] = {}
        bar = QHBoxLayout()
        for name, label, tip, slot in (
            ("cancel", self.tr("Cancel"), self.tr("Cancel the selected job"), self.cancel_selected),
            ("rerun", self.tr("Re-run"), self.tr("Run the selected job again with the same settings and seed"),
             self.rerun_selected),
            ("up", self.tr("Move up"), self.tr("Run the selected queued job sooner"), lambda: self.move_selected(-1)),
            ("down", self.tr("Move down"), self.tr("Run the selected queued job later"),
             lambda: self.move_selected(1)),
            ("pause", self.tr("Pause queue"), self.tr("Start no new job of this generator until resumed"),
             self.toggle_pause),
        ):
            button = QPushButton(label, self)
            button.setObjectName(f"activity_{name}")
            button.setToolTip(tip)
            button.setAccessibleName(tip)
            button.clicked.connect(slot)
            bar.addWidget(button)
            self.buttons[name] = button
        self.buttons["pause"].setCheckable(True)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self._rows: dict[str, int] = {}
        self.table.itemSelectionChanged.connect(self._update_buttons)
        connect_job_signals(engine, self)
        self._update_buttons()

    # -- rows ------------------------------------------------------------------------------------------------

    def row_of(self, job_id: str) -> int | None:
        return self._rows.get(job_id)

    def job_ids(self) -> list[str]:
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]

    def _title(self, job: Job) -> str:
        generator = self.engine.plugins.generator(job.generator_id)
        name = prompt_field(generator.Params)
        text = str(getattr(job.params, name, "") or "") if name else ""
        return (text[:80] + "…") if len(text) > 80 else (text or generator.name)

    def _rebuild_index(self) -> None:
        self._rows = {self.table.item(r, 0).data(Qt.ItemDataRole.UserRole): r for r in range(self.table.rowCount())}

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        """A new row at the bottom (rows never move, so adding one costs the same with 10 rows or 500)."""
        job = self.engine.job(job_id)
        row = self.table.rowCount()
        self.table.insertRow(row)
        first = QTableWidgetItem(job.generator_id)
        first.setData(Qt.ItemDataRole.UserRole, job_id)
        self.table.setItem(row, 0, first)
        self.table.setItem(row, 1, QTableWidgetItem(self._title(job)))
        self.table.setItem(row, 2, QTableWidgetItem(self.tr("queued")))
        bar = QProgressBar(self.table)
        bar.setRange(0, 1)
        bar.setValue(0)
        self.table.setCellWidget(row, 3, bar)
        self.table.setItem(row, 4, QTableWidgetItem())
        self._rows[job_id] = row
        if self.table.rowCount() > MAX_ROWS + 50:  # drop the oldest in chunks, not one by one
            for _ in range(self.table.rowCount() - MAX_ROWS):
                self.table.removeRow(0)
            self._rebuild_index()
        self._update_buttons()

    def _set_state(self, job_id: str, text: str) -> None:
        row = self.row_of(job_id)
        if row is not None:
            self.table.item(row, 2).setText(text)
            self._update_buttons()

    def _bar(self, job_id: str) -> QProgressBar | None:
        row = self.row_of(job_id)
        return None if row is None else self.table.cellWidget(row, 3)

    @Slot(str, str)
    def _on_state_changed(self, job_id: str, state: str) -> None:
        self._set_state(job_id, self.tr(state))
        bar = self._bar(job_id)
        if bar is not None:
            bar.setRange(0, 0)  # busy until the first progress report

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        bar = self._bar(job_id)
        if bar is not None and total > 0:
            bar.setRange(0, total)
            bar.setValue(done)

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: Any) -> None:
        if not isinstance(preview, str) and hasattr(preview, "convert"):
            self._set_thumbnail(job_id, preview)

    def _set_thumbnail(self, job_id: str, image: Any) -> None:
        row = self.row_of(job_id)
        if row is None:
            return
        pixmap = QPixmap.fromImage(to_qimage(image)).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                            Qt.TransformationMode.SmoothTransformation)
        self.table.item(row, 4).setIcon(QIcon(pixmap))
        self.table.setRowHeight(row, THUMB + 4)

    def _finish(self, job_id: str, text: str, outputs: Any, done: bool) -> None:
        self._set_state(job_id, text)
        bar = self._bar(job_id)
        if bar is not None:
            bar.setRange(0, 1)
            bar.setValue(1 if done else 0)
        for output in outputs or []:
            if isinstance(output, ImageOutput):
                self._set_thumbnail(job_id, output.image)
            elif isinstance(output, TextOutput) and self.row_of(job_id) is not None:
                self.table.item(self.row_of(job_id), 4).setText(output.text[:40])

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: Any) -> None:
        self._finish(job_id, self.tr("done"), outputs, True)

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        self._finish(job_id, self.tr("failed"), [], False)
        row = self.row_of(job_id)
        if row is not None:
            self.table.item(row, 2).setToolTip(message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: Any) -> None:
        self._finish(job_id, self.tr("cancelled"), partial, False)

    @Slot(str)
    def _on_forgotten(self, job_id: str) -> None:
        """The engine forgot a finished job (its history is bounded): its row goes too."""
        row = self.row_of(job_id)
        if row is not None:
            self.table.removeRow(row)
            self._rebuild_index()
            self._update_buttons()

    # -- actions ---------------------------------------------------------------------------------------------

    def selected_job(self) -> Job | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        try:
            return self.engine.job(self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))
        except UnknownJob:  # a row the engine no longer knows (it is about to go)
            return None

    def select(self, job_id: str) -> None:
        row = self.row_of(job_id)
        if row is not None:
            self.table.selectRow(row)

    @Slot()
    def cancel_selected(self) -> None:
        job = self.selected_job()
        if job is not None:
            self.engine.cancel(job.id)

    @Slot()
    def rerun_selected(self) -> None:
        job = self.selected_job()
        if job is not None:
            self.engine.submit(job.generator_id, to_json(job.params), model=job.model, seed=job.seed)

    def move_selected(self, delta: int) -> None:
        job = self.selected_job()
        if job is None:
            return
        waiting = self.engine.waiting(job.generator_id)
        ids = [j.id for j in waiting]
        if job.id in ids and self.engine.move(job.id, ids.index(job.id) + delta):
            self._reorder_rows(job.generator_id)
            self.select(job.id)

    def _reorder_rows(self, generator_id: str) -> None:
        """Show the waiting jobs of a generator in queue order (the next to run highest, as they were added)."""
        waiting = [j.id for j in self.engine.waiting(generator_id)]
        rows = sorted(self.row_of(i) for i in waiting)
        for row, job_id in zip(rows, waiting, strict=True):
            self._put_row(row, job_id)
        self._rebuild_index()

    def _put_row(self, row: int, job_id: str) -> None:
        job = self.engine.job(job_id)
        first = QTableWidgetItem(job.generator_id)
        first.setData(Qt.ItemDataRole.UserRole, job_id)
        self.table.setItem(row, 0, first)
        self.table.setItem(row, 1, QTableWidgetItem(self._title(job)))
        self.table.setItem(row, 2, QTableWidgetItem(self.tr(job.state.value)))

    @Slot()
    def toggle_pause(self) -> None:
        job = self.selected_job()
        if job is None:
            self.buttons["pause"].setChecked(False)
            return
        paused = self.buttons["pause"].isChecked()
        self.engine.set_paused(job.generator_id, paused)
        self.buttons["pause"].setText(self.tr("Resume queue") if paused else self.tr("Pause queue"))

    def _update_buttons(self) -> None:
        job = self.selected_job()
        running = job is not None and not job.state.finished and not job.cancelled
        queued = job is not None and job.state is JobState.QUEUED
        self.buttons["cancel"].setEnabled(running)
        self.buttons["rerun"].setEnabled(job is not None)
        self.buttons["up"].setEnabled(queued)
        self.buttons["down"].setEnabled(queued)
        self.buttons["pause"].setEnabled(job is not None)
        if job is not None:
            paused = self.engine.is_paused(job.generator_id)
            self.buttons["pause"].setChecked(paused)
            self.buttons["pause"].setText(self.tr("Resume queue") if paused else self.tr("Pause queue"))
