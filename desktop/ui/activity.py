"""The activity view: the jobs of this session the engine remembers — queued, running, and the latest finished
(a row goes when the engine forgets its job) — with progress, a preview, cancel, re-run, and the queue's order and
pause.

Rows are newest first: a new job appears at the top, where the running one is in view without scrolling (among the
waiting jobs of one generator, the next to run is the lowest). Each row names the generator as people know it (its
``name``; the id is the tooltip), keeps the progress a job reached when it is cancelled or fails, and shows a small
preview of any kind: an image thumbnail, an audio waveform, or the first words of a text. Rows are compact, so that
the dock's default height (:meth:`ActivityView.default_height`) shows at least :data:`VISIBLE_ROWS` jobs."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon
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

from desktop.api import AudioOutput, ImageOutput, TextOutput, prompt_field, to_json
from desktop.engine.engine import Engine, connect_job_signals
from desktop.engine.jobs import Job, JobState, UnknownJob
from desktop.ui.thumbnails import first_words, image_thumbnail, waveform_thumbnail

COLUMNS = ("generator", "job", "state", "progress", "preview")
MAX_ROWS = 500
THUMB_WIDTH, THUMB_HEIGHT = 60, 20  # a waveform is wide; an image keeps its aspect ratio inside
ROW_HEIGHT = THUMB_HEIGHT + 4
VISIBLE_ROWS = 6  # the dock's default height shows at least this many jobs


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
        self.table.setIconSize(QSize(THUMB_WIDTH, THUMB_HEIGHT))
        self.table.setWordWrap(False)
        rows = self.table.verticalHeader()
        rows.setVisible(False)
        rows.setMinimumSectionSize(ROW_HEIGHT)
        rows.setDefaultSectionSize(ROW_HEIGHT)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        columns = self.table.horizontalHeader()
        columns.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 140)
        self.table.setColumnWidth(4, 260)
        self.buttons: dict[str, QPushButton] = {}
        bar = QVBoxLayout()  # a column beside the table: the rows get the dock's whole height
        bar.setSpacing(2)
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
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(bar)
        self._rows: dict[str, int] = {}
        self.table.itemSelectionChanged.connect(self._update_buttons)
        connect_job_signals(engine, self)
        self._update_buttons()

    # -- rows ------------------------------------------------------------------------------------------------

    def row_of(self, job_id: str) -> int | None:
        return self._rows.get(job_id)

    def job_ids(self) -> list[str]:
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]

    def default_height(self) -> int:
        """The dock's default height: the column titles and :data:`VISIBLE_ROWS` rows (the buttons are beside
        them), and the dock's title bar (a line of text)."""
        table = 2 * self.table.frameWidth() + self.table.horizontalHeader().sizeHint().height()
        table += VISIBLE_ROWS * ROW_HEIGHT
        buttons = self.layout().itemAt(1).layout().minimumSize().height()
        return max(table, buttons) + self.fontMetrics().height() + 8

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(super().sizeHint().width(), self.default_height())

    def _title(self, job: Job) -> str:
        generator = self.engine.plugins.generator(job.generator_id)
        name = prompt_field(generator.Params)
        text = str(getattr(job.params, name, "") or "") if name else ""
        return (text[:80] + "…") if len(text) > 80 else (text or generator.name)

    def _generator_name(self, job: Job) -> str:
        try:
            return self.engine.plugins.generator(job.generator_id).name or job.generator_id
        except Exception:  # noqa: BLE001 (a generator gone since its job ran: its id still says what it was)
            return job.generator_id

    def _fill_row(self, row: int, job: Job) -> None:
        """The row's generator name (its id as the tooltip, the job's id as the data), title and state."""
        first = QTableWidgetItem(self._generator_name(job))
        first.setToolTip(job.generator_id)
        first.setData(Qt.ItemDataRole.UserRole, job.id)
        self.table.setItem(row, 0, first)
        self.table.setItem(row, 1, QTableWidgetItem(self._title(job)))
        self.table.setItem(row, 2, QTableWidgetItem(self.tr(job.state.value)))

    def _rebuild_index(self) -> None:
        self._rows = {self.table.item(r, 0).data(Qt.ItemDataRole.UserRole): r for r in range(self.table.rowCount())}

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        """A new row at the top (newest first); the oldest rows past :data:`MAX_ROWS` go, from the bottom."""
        job = self.engine.job(job_id)
        self.table.insertRow(0)
        self._fill_row(0, job)
        self.table.item(0, 2).setText(self.tr("queued"))
        bar = QProgressBar(self.table)
        bar.setRange(0, 1)
        bar.setValue(0)
        self.table.setCellWidget(0, 3, bar)
        self.table.setItem(0, 4, QTableWidgetItem())
        if self.table.rowCount() > MAX_ROWS + 50:  # drop the oldest in chunks, not one by one
            for _ in range(self.table.rowCount() - MAX_ROWS):
                self.table.removeRow(self.table.rowCount() - 1)
        self._rebuild_index()  # every row moved down one (a dict of at most 550 entries)
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
        """The latest preview of any kind: an image, an audio chunk (its waveform) or a text chunk (the text so
        far, its first words)."""
        preview_item = self._preview_item(job_id)
        if preview_item is None:
            return
        if isinstance(preview, str):
            so_far = preview_item.data(Qt.ItemDataRole.UserRole) or ""
            if len(so_far) < 200:  # enough for the first words; a long text is not copied again and again
                so_far += preview
                preview_item.setData(Qt.ItemDataRole.UserRole, so_far)
                preview_item.setText(first_words(so_far))
        else:
            self._show_output(preview_item, preview)

    def _preview_item(self, job_id: str) -> QTableWidgetItem | None:
        row = self.row_of(job_id)
        return None if row is None else self.table.item(row, 4)

    def _show_output(self, item: QTableWidgetItem, output: Any) -> None:
        """Show an output (or a preview) in a preview cell: image and audio as a thumbnail, text as its first
        words. Anything else is left as it was."""
        if isinstance(output, ImageOutput):
            output = output.image
        if isinstance(output, AudioOutput):
            item.setIcon(QIcon(waveform_thumbnail(output.samples, THUMB_WIDTH, THUMB_HEIGHT)))
            item.setToolTip(self.tr("%n second(s) of audio", "", max(1, round(output.duration))))
        elif isinstance(output, TextOutput):
            item.setText(first_words(output.text))
            item.setToolTip(first_words(output.text, 400))
        elif hasattr(output, "convert"):  # a PIL image
            item.setIcon(QIcon(image_thumbnail(output, THUMB_WIDTH, THUMB_HEIGHT)))

    def _finish(self, job_id: str, text: str, outputs: Any, done: bool) -> None:
        """A finished job's state and outputs. A job that did not finish keeps the progress it reached."""
        self._set_state(job_id, text)
        bar = self._bar(job_id)
        if bar is not None:
            if done:
                bar.setRange(0, 1)
                bar.setValue(1)
            elif bar.maximum() == 0:  # still busy (no progress reported yet): nothing was reached
                bar.setRange(0, 1)
                bar.setValue(0)
        preview_item = self._preview_item(job_id)
        if preview_item is not None:
            for output in outputs or []:
                self._show_output(preview_item, output)

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
        """Show the waiting jobs of a generator in queue order (newest first: the next to run lowest, as they were
        added). Waiting jobs have no progress or preview yet, so only the first columns move."""
        waiting = [j.id for j in self.engine.waiting(generator_id)]
        rows = sorted(self.row_of(i) for i in waiting)
        for row, job_id in zip(rows, reversed(waiting), strict=True):
            self._fill_row(row, self.engine.job(job_id))
        self._rebuild_index()

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
