"""A generator's Batch window: the batch's input (a prompt list, a template with wildcards, or a folder of input
files), its count, variations, seeds, format and output folder; a preview of its first prompts and its item count;
an estimate of its time and disk from the generator's last jobs; and the run itself (:class:`~desktop.batch.run.
BatchRun`: progress, pause and resume, cancel, a summary at the end).

The input is read and expanded, the estimate gathered and the output folder prepared on tasks
(:mod:`desktop.ui.tasks`); the batch writes its dataset on its own thread: the GUI thread never waits on the disk.
What is asked is described by a :class:`~desktop.batch.setup.BatchRequest`, as ``studiolo batch`` describes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDesktopServices, QIntValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ModelSource, StudioloError
from desktop.api.params_form import INVALID_COLOUR
from desktop.batch.setup import BatchRequest
from desktop.ui.tasks import TaskGroup, TaskState
from desktop.ui.theme import mark_error

__all__ = ["BatchWindow", "PREVIEW_ROWS", "PREVIEW_DELAY_MS", "format_duration", "format_size"]

PREVIEW_ROWS = 10
"""How many of the batch's first prompts the preview shows."""
PREVIEW_DELAY_MS = 400
"""The pause after the last change before the preview is worked out again."""
_SEED_MODES = ("sequential", "fixed", "random")
_STYLE = f'QLabel[role="error"] {{ color: {INVALID_COLOUR}; }}'

Base = tuple[dict[str, Any], "str | None", "int | None"]


def format_duration(seconds: float) -> str:
    """``seconds`` as a person reads a duration: "1 s", "45 s", "3 min 20 s", "2 h 5 min"."""
    seconds = max(1, round(seconds)) if seconds > 0 else 0  # (a moment's work is "about 1 s")
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_size(size: float) -> str:
    """``size`` bytes as "512 bytes", "1.2 KB", "3.4 MB", "1.1 GB" (powers of 1000, as file managers say)."""
    if size < 1000:
        return f"{int(size)} bytes"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
    return f"{size:.1f} TB"  # (not reached)


def _preview(generator: Any, request: BatchRequest, _state: TaskState) -> tuple[list[str], int, list[Any]]:
    """The first rows as text, the number of rows and the bad rows (a task: the input is read from disk)."""
    from desktop.batch.setup import preview_lines, request_rows

    rows, bad, _source = request_rows(generator, request)
    return preview_lines(rows, PREVIEW_ROWS), len(rows), bad


def _prepare(generator: Any, request: BatchRequest | None, out: Path, fmt: str, mode: str,
             _state: TaskState) -> tuple[str, Any]:
    """Get ``out`` ready for the batch (a task). ``mode``: "new" (a folder that is not empty is not touched:
    ("not_empty", whether a batch can be resumed there) comes back), "resume" or "replace". Otherwise ("opened",
    the :class:`~desktop.batch.run.OpenedBatch`)."""
    from desktop.batch.journal import Journal
    from desktop.batch.run import open_batch
    from desktop.batch.setup import request_plan

    out = Path(out)
    journal = Journal(out)
    if mode == "new" and out.is_dir() and any(out.iterdir()):
        return "not_empty", journal.exists()
    plan = None
    if not (mode == "resume" and journal.exists()):
        assert request is not None
        plan, _bad = request_plan(generator, request, out)
    opened = open_batch(out, plan, fmt=fmt, card={"made_with": "the Studiolo Batch window"},
                        resume=mode == "resume", force=mode == "replace")
    return "opened", opened


class BatchWindow(QWidget):
    """The Batch window of one generator page. ``base()`` gives the page's params, model and seed (it may raise a
    :class:`StudioloError`, shown here).

    Signals: ``preview_ready()`` (the preview and count shown are those of the input now), ``estimate_ready()``,
    ``batch_started(BatchRun)``, ``batch_finished()`` (its summary is shown), ``message(text, error)``."""

    preview_ready = Signal()
    estimate_ready = Signal()
    batch_started = Signal(object)
    batch_finished = Signal()
    message = Signal(str, bool)

    def __init__(self, engine: Any, generator: Any, base: Callable[[], Base], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        from desktop.batch.dataset import FORMATS, default_format
        from desktop.engine.jobs import choose_seed

        self.setObjectName("batch_window")
        self.setWindowTitle(self.tr("Batch — %1").replace("%1", generator.name))
        self.setStyleSheet(_STYLE)
        self.engine = engine
        self.generator = generator
        self.base = base
        self.run: Any = None
        self.out: Path | None = None  # the running (or last) batch's folder
        self.item_count: int | None = None  # the preview's, once worked out
        self.costs: Any = None  # desktop.batch.estimate.JobCosts of the last jobs, or None
        self.folder_box: QMessageBox | None = None  # "not empty: Resume / Replace / Cancel", while asked
        self.folder_choices: dict[str, QPushButton] = {}
        self.url_opener: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self.template_seed = choose_seed(None)  # a template's draws when no seed is given: previewed = run
        self._preview_number = 0
        self.tasks = TaskGroup("batch", owner=self)  # the input read and expanded, the folder prepared
        self.library_tasks = TaskGroup("library", owner=self)  # the estimate (reads the library)
        self.takes_images = "img2img" in getattr(generator, "input_modes", {})

        # -- the input ---------------------------------------------------------------------------------------
        self.source_box = QComboBox(self)
        self.source_box.setObjectName("batch_source")
        self.source_box.addItem(self.tr("Prompt list file"), "prompts")
        self.source_box.addItem(self.tr("Template"), "template")
        self.source_box.addItem(self.tr("Folder of inputs"), "inputs")
        self.stack = QStackedWidget(self)
        # a prompt list
        self.prompts_edit, prompts_row = self._path_row("batch_prompts", self.tr("Choose a prompt list"), False)
        self.skip_bad_box = QCheckBox(self.tr("Skip bad rows (run the others)"), self)
        self.skip_bad_box.setObjectName("batch_skip_bad")
        page = QWidget(self)
        form = QFormLayout(page)
        form.addRow(self.tr("File"), prompts_row)
        form.addRow("", self.skip_bad_box)
        form.addRow("", QLabel(self.tr("Plain lines (A1111 options like --seed 5 accepted), CSV or JSONL with "
                                       "per-row parameters, seed and model."), page))
        self.stack.addWidget(page)
        # a template
        self.template_edit = QPlainTextEdit(self)
        self.template_edit.setObjectName("batch_template")
        self.template_edit.setPlaceholderText(self.tr("a {red|green|blue} __animal__ in the snow"))
        self.template_edit.setFixedHeight(70)
        self.wildcards_edit, wildcards_row = self._path_row("batch_wildcards",
                                                            self.tr("Choose the wildcards folder"), True)
        self.combinatorial_box = QCheckBox(self.tr("Combinatorial (every combination, not random draws)"), self)
        self.combinatorial_box.setObjectName("batch_combinatorial")
        page = QWidget(self)
        form = QFormLayout(page)
        form.addRow(self.tr("Template"), self.template_edit)
        form.addRow(self.tr("Wildcards folder"), wildcards_row)
        form.addRow("", self.combinatorial_box)
        self.stack.addWidget(page)
        # a folder of inputs
        self.inputs_edit, inputs_row = self._path_row("batch_inputs", self.tr("Choose the folder of inputs"), True)
        page = QWidget(self)
        form = QFormLayout(page)
        form.addRow(self.tr("Folder"), inputs_row)
        self.image_options = QWidget(page)  # image-to-image augmentation: only for a generator that offers it
        self.image_options.setObjectName("batch_image_options")
        options = QHBoxLayout(self.image_options)
        options.setContentsMargins(0, 0, 0, 0)
        self.strength_low = self._spin(0.0, 1.0, 0.3, "batch_strength_low")
        self.strength_high = self._spin(0.0, 1.0, 0.7, "batch_strength_high")
        self.flip_box = QCheckBox(self.tr("Flip"), self)
        self.flip_box.setObjectName("batch_flip")
        self.crop_spin = self._spin(0.0, 0.49, 0.0, "batch_crop")
        for widget in (QLabel(self.tr("Strength from"), self), self.strength_low, QLabel(self.tr("to"), self),
                       self.strength_high, self.flip_box, QLabel(self.tr("Crop up to"), self), self.crop_spin):
            options.addWidget(widget)
        options.addStretch(1)
        form.addRow(self.tr("Pictures"), self.image_options)
        self.image_options.setVisible(self.takes_images)
        form.labelForField(self.image_options).setVisible(self.takes_images)
        form.addRow("", QLabel(self.tr("Pictures start image-to-image variations; texts (.txt, .md) are prompts."),
                               page))
        self.stack.addWidget(page)
        self.input_error = QLabel(self)
        self.input_error.setObjectName("batch_input_error")
        self.input_error.setProperty("role", "error")
        self.input_error.setWordWrap(True)
        self.input_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.input_error.hide()

        # -- how many, seeds, where ----------------------------------------------------------------------------
        self.count_spin = QSpinBox(self)
        self.count_spin.setObjectName("batch_count")
        self.count_spin.setRange(0, 100_000)
        self.count_spin.setSpecialValueText(self.tr("all"))
        self.count_spin.setToolTip(self.tr("A template: how many prompts (all: every combination); a list or a "
                                           "folder: only its first rows (all: every row)"))
        self.variations_spin = QSpinBox(self)
        self.variations_spin.setObjectName("batch_variations")
        self.variations_spin.setRange(1, 10_000)
        self.seed_mode_box = QComboBox(self)
        self.seed_mode_box.setObjectName("batch_seed_mode")
        for mode, text in zip(_SEED_MODES, (self.tr("Sequential (seed + item number)"),
                                            self.tr("Fixed (the same seeds for every row)"),
                                            self.tr("Random (recorded)")), strict=True):
            self.seed_mode_box.addItem(text, mode)
        self.seed_edit = QLineEdit(self)
        self.seed_edit.setObjectName("batch_seed")
        self.seed_edit.setValidator(QIntValidator(0, 2**31 - 1, self))
        self.seed_edit.setPlaceholderText(self.tr("random (recorded)"))
        self.format_box = QComboBox(self)
        self.format_box.setObjectName("batch_format")
        for fmt in FORMATS:
            self.format_box.addItem(fmt, fmt)
        self.format_box.setCurrentIndex(self.format_box.findData(default_format(generator.kind)))
        self.out_edit, out_row = self._path_row("batch_out", self.tr("Choose the dataset folder"), True)
        settings = QFormLayout()
        settings.addRow(self.tr("Count"), self.count_spin)
        settings.addRow(self.tr("Variations per row"), self.variations_spin)
        seeds = QHBoxLayout()
        seeds.addWidget(self.seed_mode_box, 1)
        seeds.addWidget(self.seed_edit)
        settings.addRow(self.tr("Seeds"), seeds)
        settings.addRow(self.tr("Format"), self.format_box)
        settings.addRow(self.tr("Output folder"), out_row)
        self.spread_box = QCheckBox(self.tr("Spread over all my servers (each takes as many items at once as its "
                                            "concurrency; an item whose server goes away runs on another)"), self)
        self.spread_box.setObjectName("batch_spread")
        if ModelSource.REMOTE in generator.model_sources:  # a remote generator's batch can use every server
            settings.addRow(self.tr("Servers"), self.spread_box)
        else:
            self.spread_box.hide()

        # -- preview and estimate --------------------------------------------------------------------------------
        self.preview_list = QListWidget(self)
        self.preview_list.setObjectName("batch_preview")
        self.count_label = QLabel(self)
        self.count_label.setObjectName("batch_item_count")
        self.estimate_label = QLabel(self)
        self.estimate_label.setObjectName("batch_estimate")
        self.estimate_label.setWordWrap(True)
        self.refresh_button = QPushButton(self.tr("Refresh"), self)
        self.refresh_button.setObjectName("batch_refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.preview_timer = QTimer(self)  # the preview waits for a pause in the typing
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(PREVIEW_DELAY_MS)
        self.preview_timer.timeout.connect(self.refresh_preview)
        preview = QGroupBox(self.tr("Preview"), self)
        preview_layout = QVBoxLayout(preview)
        top = QHBoxLayout()
        top.addWidget(self.count_label, 1)
        top.addWidget(self.refresh_button)
        preview_layout.addLayout(top)
        preview_layout.addWidget(self.preview_list, 1)
        preview_layout.addWidget(self.estimate_label)

        # -- the run -----------------------------------------------------------------------------------------------
        self.run_button = QPushButton(self.tr("Run batch"), self)
        self.run_button.setObjectName("batch_run")
        self.run_button.clicked.connect(lambda _checked=False: self.start())
        self.pause_button = QPushButton(self.tr("Pause"), self)
        self.pause_button.setObjectName("batch_pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setObjectName("batch_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("batch_progress")
        self.progress.setFormat(self.tr("%v of %m items"))
        self.current_label = QLabel(self)
        self.current_label.setObjectName("batch_current")
        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("batch_summary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder_button = QPushButton(self.tr("Open folder"), self)
        self.open_folder_button.setObjectName("batch_open_folder")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.open_folder_button.hide()
        self.note = QLabel(self)
        self.note.setObjectName("batch_message")
        self.note.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        done_row = QHBoxLayout()
        done_row.addWidget(self.summary_label, 1)
        done_row.addWidget(self.open_folder_button)

        layout = QVBoxLayout(self)
        source_row = QFormLayout()
        source_row.addRow(self.tr("Input"), self.source_box)
        layout.addLayout(source_row)
        layout.addWidget(self.stack)
        layout.addWidget(self.input_error)
        layout.addLayout(settings)
        layout.addWidget(preview, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.current_label)
        layout.addLayout(done_row)
        layout.addWidget(self.note)

        _page_params, _model, page_seed = self._safe_base()
        if page_seed is not None:
            self.seed_edit.setText(str(page_seed))
        self.source_box.currentIndexChanged.connect(self._source_changed)
        for signal in (self.prompts_edit.textChanged, self.template_edit.textChanged, self.wildcards_edit.textChanged,
                       self.combinatorial_box.toggled, self.inputs_edit.textChanged, self.skip_bad_box.toggled,
                       self.count_spin.valueChanged, self.variations_spin.valueChanged, self.seed_edit.textChanged):
            signal.connect(self.schedule_preview)
        self.source_box.setCurrentIndex(1)  # a template: something to type at once
        self._set_running(False)
        self.resize(760, 820)

    # -- building ----------------------------------------------------------------------------------------------

    def _path_row(self, name: str, title: str, folder: bool) -> tuple[QLineEdit, QHBoxLayout]:
        edit = QLineEdit(self)
        edit.setObjectName(name)
        browse = QPushButton(self.tr("Browse…"), self)
        browse.setObjectName(f"{name}_browse")
        browse.clicked.connect(lambda _checked=False: self._browse(edit, title, folder))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(browse)
        return edit, row

    def _spin(self, low: float, high: float, value: float, name: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setObjectName(name)
        spin.setRange(low, high)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.setValue(value)
        return spin

    def _browse(self, edit: QLineEdit, title: str, folder: bool) -> None:
        dialog = QFileDialog(self, title)
        dialog.setFileMode(QFileDialog.FileMode.Directory if folder else QFileDialog.FileMode.ExistingFile)
        if not folder:
            dialog.setNameFilters([self.tr("Prompt lists (*.txt *.csv *.jsonl)"), self.tr("All files (*)")])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(edit.setText)
        dialog.open()

    def _source_changed(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.count_spin.setValue(10 if self.source_box.itemData(index) == "template" else 0)
        self.schedule_preview()

    # -- what is asked ----------------------------------------------------------------------------------------

    def _safe_base(self) -> Base:
        try:
            return self.base()
        except StudioloError:
            return {}, None, None

    def request(self, *, skip_bad: bool | None = None) -> BatchRequest:
        """The batch the window describes now (the page's params, model as the shared ones). Raises
        :class:`StudioloError` for a page whose form is not valid."""
        params, model, _seed = self.base()
        source = self.source_box.currentData()
        seed = int(self.seed_edit.text()) if self.seed_edit.text().strip() else None
        count = self.count_spin.value()

        def path(edit: QLineEdit) -> Path | None:
            return Path(edit.text().strip()).expanduser() if edit.text().strip() else None

        return BatchRequest(
            source=source, prompts=path(self.prompts_edit), template=self.template_edit.toPlainText(),
            inputs=path(self.inputs_edit), count=count, variations=self.variations_spin.value(), seed=seed,
            seed_mode=self.seed_mode_box.currentData(), wildcards=path(self.wildcards_edit),
            combinatorial=self.combinatorial_box.isChecked(),
            strength=(self.strength_low.value(), self.strength_high.value())
            if self.takes_images and source == "inputs" else None,
            flip=self.takes_images and source == "inputs" and self.flip_box.isChecked(),
            crop=self.crop_spin.value() if self.takes_images and source == "inputs" else 0.0,
            params=params, model=model,
            skip_bad_rows=self.skip_bad_box.isChecked() if skip_bad is None else skip_bad,
            template_seed=seed if seed is not None else self.template_seed)

    # -- the preview and the estimate ---------------------------------------------------------------------------

    @Slot()
    def schedule_preview(self) -> None:
        """Work the preview out again once the typing pauses (:data:`PREVIEW_DELAY_MS`)."""
        self._preview_number += 1  # a preview under way is out of date
        self.preview_timer.start()

    @Slot()
    def refresh(self) -> None:
        """The preview and the estimate, now."""
        self.refresh_preview()
        self.refresh_estimate()

    @Slot()
    def refresh_preview(self) -> None:
        """Read and expand the input on a task; the first prompts, the item count and the bad rows follow
        (``preview_ready``)."""
        self.preview_timer.stop()
        self._preview_number += 1
        number = self._preview_number
        try:
            request = self.request(skip_bad=True)  # every bad row is listed; Run skips them only if asked
        except StudioloError as exc:
            self._show_preview_error(str(exc))
            self.preview_ready.emit()
            return
        variations = request.variations

        def done(result: tuple[list[str], int, list[Any]]) -> None:
            if number != self._preview_number:
                return  # the input changed meanwhile: a newer preview follows
            lines, rows, bad = result
            self.preview_list.clear()
            self.preview_list.addItems(lines)
            self.item_count = rows * variations
            self.count_label.setText(self.tr("%1 items (%2 rows × %3 variations)").replace(
                "%1", str(self.item_count)).replace("%2", str(rows)).replace("%3", str(variations)))
            if bad:
                text = "\n".join(e.message for e in bad[:5]) + (f"\n… {len(bad) - 5} more" if len(bad) > 5 else "")
                if not self.skip_bad_box.isChecked():
                    text += "\n" + self.tr("Correct them, or tick “Skip bad rows” to run the others.")
                self._show_input_error(text)
            else:
                self._show_input_error("")
            self._show_estimate()
            self.preview_ready.emit()

        def failed(exc: BaseException) -> None:
            if number != self._preview_number:
                return
            self._show_preview_error(str(exc) if isinstance(exc, StudioloError) else
                                     self.tr("Cannot read the input: %1").replace("%1", str(exc)))
            self.preview_ready.emit()

        self.tasks.run(lambda state: _preview(self.generator, request, state), on_done=done, on_failed=failed,
                       name="batch preview")

    def _show_preview_error(self, text: str) -> None:
        self.preview_list.clear()
        self.item_count = None
        self.count_label.setText(self.tr("No items"))
        self._show_input_error(text)
        self._show_estimate()

    def _show_input_error(self, text: str) -> None:
        self.input_error.setText(text)
        self.input_error.setVisible(bool(text))

    @Slot()
    def refresh_estimate(self) -> None:
        """Gather what the generator's last jobs took (the library's items, this session's jobs) on a task;
        ``estimate_ready`` follows."""
        from desktop.batch.estimate import engine_job_times, recent_job_costs

        times = engine_job_times(self.engine, self.generator.id)  # the engine's jobs live on this thread
        library, generator_id = getattr(self.engine, "library", None), self.generator.id

        def done(costs: Any) -> None:
            self.costs = costs
            self._show_estimate()
            self.estimate_ready.emit()

        def failed(exc: BaseException) -> None:
            self.costs = None
            self._show_estimate()
            self.estimate_ready.emit()

        self.library_tasks.run(lambda _state: recent_job_costs(library, generator_id, times), on_done=done,
                               on_failed=failed, name="batch estimate")

    def _show_estimate(self) -> None:
        costs, count = self.costs, self.item_count
        if costs is None:
            self.estimate_label.setText(self.tr("No recent jobs to estimate from: the time and disk a batch "
                                                "takes are estimated from this generator's last jobs."))
            return
        if not count:
            self.estimate_label.setText(self.tr("Estimated from the last %1 jobs of this generator, once the "
                                                "input gives items.").replace("%1", str(costs.jobs)))
            return
        seconds, size = costs.for_items(count)
        time_text = format_duration(seconds) if seconds is not None else self.tr("time unknown")
        disk_text = format_size(size) if size is not None else self.tr("disk unknown")
        text = self.tr("Estimate for %1 items: about %2 of generating and %3 on disk (from the last %4 jobs of "
                       "this generator; the model's loading not counted).").replace("%1", str(count)) \
            .replace("%2", time_text).replace("%3", disk_text).replace("%4", str(costs.jobs))
        if getattr(self.engine, "library", None) is not None and size is not None:
            text += " " + self.tr("The gallery keeps a copy of each output too.")
        self.estimate_label.setText(text)

    # -- running ------------------------------------------------------------------------------------------------

    def start(self, mode: str = "new") -> bool:
        """Run the batch the window describes into its output folder (prepared on a task). ``mode`` "new": a
        folder that is not empty asks first (Resume / Replace / Cancel); "resume" and "replace" as answered there.
        False (and a message) when nothing can start now."""
        if self.run is not None and not self.run.is_finished:
            self.say(self.tr("A batch is running in this window: wait for it or cancel it."), True)
            return False
        text = self.out_edit.text().strip()
        if not text:
            self.say(self.tr("Choose the output folder the dataset is written to."), True)
            return False
        out = Path(text).expanduser()
        try:
            request = self.request() if mode != "resume" else None
        except StudioloError as exc:
            self.say(str(exc), True)
            return False
        fmt = self.format_box.currentData()
        self.run_button.setEnabled(False)
        self.say(self.tr("Preparing %1…").replace("%1", str(out)))

        def done(result: tuple[str, Any]) -> None:
            kind, value = result
            if kind == "not_empty":
                self.run_button.setEnabled(True)
                self._ask_about_folder(out, bool(value))
            else:
                self._begin(value, out)

        def failed(exc: BaseException) -> None:
            self.run_button.setEnabled(True)
            self.say(str(exc) if isinstance(exc, StudioloError) else
                     self.tr("Cannot prepare %1: %2").replace("%1", str(out)).replace("%2", str(exc)), True)

        self.tasks.run(lambda state: _prepare(self.generator, request, out, fmt, mode, state), on_done=done,
                       on_failed=failed, name="batch prepare")
        return True

    def _ask_about_folder(self, out: Path, resumable: bool) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("The output folder is not empty"),
                          self.tr("%1 already holds files.").replace("%1", str(out)),
                          QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("batch_folder_question")
        box.setInformativeText(
            (self.tr("Resume continues the batch written there (its finished items are kept). ") if resumable
             else "") + self.tr("Replace deletes what the folder holds and starts the batch afresh."))
        choices = {}
        if resumable:
            choices["resume"] = box.addButton(self.tr("Resume"), QMessageBox.ButtonRole.AcceptRole)
        choices["replace"] = box.addButton(self.tr("Replace"), QMessageBox.ButtonRole.DestructiveRole)
        choices["cancel"] = box.addButton(self.tr("Cancel"), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(choices.get("resume", choices["cancel"]))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(_result: int) -> None:
            clicked = box.clickedButton()
            self.folder_box, self.folder_choices = None, {}
            answer = next((name for name, button in choices.items() if button is clicked), "cancel")
            if answer == "cancel":
                self.say(self.tr("Not run."))
            else:
                self.start(answer)

        box.finished.connect(answered)
        self.folder_box, self.folder_choices = box, choices
        box.open()

    def _spread(self, opened: Any) -> Any:
        """The spread over every configured server when the box is ticked (None otherwise); a
        :class:`~desktop.api.ParamError` when the batch's model is not on a server or no server is configured."""
        if not (self.spread_box.isChecked() and ModelSource.REMOTE in self.generator.model_sources):
            return None
        from desktop.remote.spread import spread_from_names

        return spread_from_names("all", self.engine.settings.servers(), [item.model for item in opened.plan.items])

    def _begin(self, opened: Any, out: Path) -> None:
        from desktop.batch.run import BatchRun

        if opened.plan.generator_id != self.generator.id:
            self.run_button.setEnabled(True)
            self.say(self.tr("The batch in %1 was made with %2, not %3: choose another folder.").replace(
                "%1", str(out)).replace("%2", opened.plan.generator_id).replace("%3", self.generator.id), True)
            return
        try:
            spread = self._spread(opened)
        except StudioloError as exc:
            self.run_button.setEnabled(True)
            self.say(str(exc), True)
            return
        previous, run = self.run, BatchRun(self.engine, opened, self.generator, self, spread=spread)
        self.run, self.out = run, out
        if previous is not None and previous.is_finished:
            previous.deleteLater()
        run.progressed.connect(self._on_progressed)
        run.item_progress.connect(self._on_item_progress)
        run.item_done.connect(lambda index, _outputs: self.current_label.setText(
            self.tr("Item %1 done.").replace("%1", str(index + 1))))
        run.item_failed.connect(lambda index, message: self.say(
            self.tr("Item %1 failed: %2").replace("%1", str(index + 1)).replace("%2", message), True))
        run.item_retried.connect(lambda index, server, _message: self.say(
            self.tr("Item %1: %2 went away; it runs on another server.").replace("%1", str(index + 1))
            .replace("%2", server), True))
        run.paused_changed.connect(self._on_paused)
        run.stopped.connect(lambda message: self.say(message, True))
        run.finished.connect(self._on_finished)
        self.summary_label.clear()
        self.open_folder_button.hide()
        self.progress.setRange(0, max(1, run.total))
        self.progress.setValue(len(run.done))
        self._set_running(True)
        resumed = self.tr(" (resumed: %1 done before)").replace("%1", str(len(opened.done))) if opened.resumed else ""
        self.say(self.tr("Running %1 items into %2%3.").replace("%1", str(run.total)).replace("%2", str(out))
                 .replace("%3", resumed))
        self.batch_started.emit(run)
        try:
            run.start()
        except StudioloError as exc:
            self.say(str(exc), True)

    @Slot(int, int)
    def _on_progressed(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    @Slot(int, int, int)
    def _on_item_progress(self, index: int, done: int, total: int) -> None:
        self.current_label.setText(self.tr("Item %1: %2 of %3").replace("%1", str(index + 1))
                                   .replace("%2", str(done)).replace("%3", str(total) if total else "?"))

    @Slot(bool)
    def _on_paused(self, paused: bool) -> None:
        self.pause_button.setText(self.tr("Resume") if paused else self.tr("Pause"))
        if paused:
            self.say(self.tr("Pausing: the items under way finish, then nothing more starts until Resume."))
        else:
            self.say(self.tr("Running again."))

    @Slot()
    def toggle_pause(self) -> None:
        run = self.run
        if run is None or run.is_finished:
            return
        run.resume() if run.paused else run.pause()

    @Slot()
    def cancel(self) -> None:
        if self.run is not None and not self.run.is_finished:
            self.run.cancel()
            self.say(self.tr("Cancelling: the items finished stay in the dataset."))

    @Slot()
    def _on_finished(self) -> None:
        run = self.run
        self._set_running(False)
        done, failed, total = len(run.done), len(run.errors), run.total
        if run.error is not None:
            head = self.tr("Stopped: %1").replace("%1", run.error)
        elif run.cancelled:
            head = self.tr("Cancelled.")
        else:
            head = self.tr("Finished.")
        text = self.tr("%1 Done: %2 of %3 items; failed: %4. The dataset is in %5.").replace("%1", head) \
            .replace("%2", str(done)).replace("%3", str(total)).replace("%4", str(failed)).replace("%5", str(self.out))
        if not run.complete:
            text += " " + self.tr("Run again into the same folder and choose Resume to finish it.")
        self.summary_label.setText(text)
        mark_error(self.summary_label, run.error is not None)
        self.open_folder_button.show()
        self.current_label.clear()
        self.say(head if run.error is not None else "", run.error is not None)  # (the summary says it)
        self.refresh_estimate()  # the jobs just run are the newest to go by
        self.batch_finished.emit()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setText(self.tr("Pause"))

    @Slot()
    def open_folder(self) -> bool:
        out = self.out
        return out is not None and bool(self.url_opener(QUrl.fromLocalFile(str(out))))

    # -- messages and life ----------------------------------------------------------------------------------------

    @Slot(str, bool)
    def say(self, text: str, error: bool = False) -> None:
        mark_error(self.note, error)
        self.note.setText(text)
        self.message.emit(text, error)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt)
        super().showEvent(event)
        if self.costs is None:
            self.refresh_estimate()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        """Closing hides the window: a batch still running goes on (Cancel stops it)."""
        super().closeEvent(event)

    def shutdown(self) -> None:
        """The page or window is going away: cancel a batch still running (its finished items stay; it can be
        resumed) and drop the file work not started."""
        if self.run is not None and not self.run.is_finished:
            self.run.cancel()
        self.preview_timer.stop()
        self.tasks.shutdown(timeout_ms=2000)
        self.library_tasks.shutdown(timeout_ms=2000)
