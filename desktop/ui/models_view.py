"""The Models page: per generator, the models on disk, the recommended ones, downloads, and what is loaded now.

* **Installed** (a table): the chosen generator's models with their source, size on disk and last use
  (:func:`desktop.models.inventory.models_for`); *Remove* (after a confirmation), *Import file…*, *Import folder…*.
* **Recommended**: each model the generator suggests, with its size (the hub's listing once seen, else the plugin's
  hand-written size "as of" the date it was checked), licence and what it is good for — all before any download —
  and a *Download* / *Cancel* / *Resume* button with a progress bar in bytes. A cancelled or failed download keeps
  what arrived; downloading again resumes it. Offline (``HF_HUB_OFFLINE``) the buttons are disabled and say why.
* **Single-file models** (a generator with ``model_file_patterns``, e.g. GGUF): each downloaded or imported file is
  its own installed model, with the facts its generator gives (``describe_model``: architecture, quantisation,
  context length) in a *Details* column, computed with the scan. *Download a file…* (a typed repo id, or a
  recommended whole repo's *Choose file…*) lists the repo's matching files with their sizes off the GUI thread, then
  a small dialog (:class:`~desktop.ui.repo_files_dialog.RepoFilesDialog`) picks one, downloaded like any model.
* **Loaded now**: the engine's model cache (generator, model, device, memory) with an *Unload* button per model.
* The disk use of every model, and a message line for what happened (also sent as ``message(text, is_error)``).

A generator's add-on kinds (``Generator.addon_kinds``: ControlNets, upscalers…) follow it in the list of generators,
each a model list of its own (:mod:`desktop.models.addons`) with its recommended, installed and imported models.

Generators that use no model, and those whose models are on remote servers
(:func:`desktop.models.modelless.uses_local_model`), are not in its list of generators: they have nothing to
install, recommend or import here; what one holds in memory is listed under *Loaded now* as "(no model)".

Nothing here blocks the GUI thread: disk scans, imports, removals and downloads run as tasks on the ``models`` pool
of :mod:`desktop.ui.tasks` and report back on the GUI thread; unloading runs on the ``engine`` pool (it can wait for
the garbage collector). ``models_changed`` is emitted after an import, a removal or a finished download, so that
other views (a generator page's model chooser) can refresh their lists.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QDateTime, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.api import JobCancelled, ModelSource, StudioloError
from desktop.engine.cache import CacheKey, LoadedModel
from desktop.engine.memory import human_bytes
from desktop.models import hub, inventory
from desktop.models.addons import model_lists
from desktop.models.inventory import GeneratorModels, RecommendedStatus, details_text
from desktop.models.modelless import uses_local_model
from desktop.models.resolver import matches_patterns, split_hub_file
from desktop.models.store import InstalledModel
from desktop.ui.repo_files_dialog import RepoFilesDialog
from desktop.ui.tasks import TaskGroup, TaskState

log = logging.getLogger(__name__)

REF_ROLE = Qt.ItemDataRole.UserRole
PROGRESS_STEPS = 1000  # progress bars count in thousandths: byte counts overflow a Qt int
LOADED_REFRESH_MS = 5000  # the "Loaded now" table is re-read this often while the page is visible
RESCAN_DELAY_MS = 500  # after a job ends (it may have downloaded or built a model), the disk is scanned this later

@dataclass
class _Download:
    ref: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int | None = None


class ModelsView(QWidget):
    """The model manager for the generators of ``engine.plugins`` (see the module docstring).

    Signals: ``models_changed()`` after an import, a removal or a finished download; ``message(text, is_error)``
    for the status bar; ``refreshed()`` when the tables show a new scan; ``download_progressed(ref, done, total)``
    (total 0 while unknown) and ``download_ended(ref, outcome)`` with outcome ``done``, ``cancelled`` or ``failed``;
    ``files_listed(repo, files)`` when a repo's files were listed for the file picker (``files``: the matching
    :class:`~desktop.models.hub.RepoFile` list, None when listing failed: the message says why).
    """

    models_changed = Signal()
    message = Signal(str, bool)
    refreshed = Signal()
    download_progressed = Signal(str, object, object)
    download_ended = Signal(str, str)
    files_listed = Signal(str, object)

    def __init__(self, engine: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.plugins = engine.plugins
        self.cache = engine.cache
        self.data: GeneratorModels | None = None
        self.total_bytes: int | None = None
        self.confirm_box: QMessageBox | None = None
        self.file_dialog: QFileDialog | None = None
        self.file_picker: RepoFilesDialog | None = None
        self._confirm_ref: str | None = None
        self._downloads: dict[str, _Download] = {}
        self._tasks = TaskGroup("models", owner=self)  # downloads may take hours: not the engine's pool
        self._unloads = TaskGroup("engine", owner=self)  # unloading can wait for the garbage collector
        self._scan = 0
        self._dirty = False
        self._progress: dict[str, QProgressBar] = {}
        self._actions: dict[str, QPushButton] = {}
        self._loaded_keys: list[CacheKey] = []
        self._build()
        self.loaded_timer = QTimer(self)
        self.loaded_timer.setInterval(LOADED_REFRESH_MS)
        self.loaded_timer.timeout.connect(self.refresh_loaded)
        self.rescan_timer = QTimer(self)  # jobs that end in a burst cause one scan, not one each
        self.rescan_timer.setSingleShot(True)
        self.rescan_timer.setInterval(RESCAN_DELAY_MS)
        self.rescan_timer.timeout.connect(self.refresh)
        for name in ("job_finished", "job_failed", "job_cancelled"):
            signal = getattr(engine, name, None)
            if signal is not None:
                signal.connect(self._on_job_ended)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.cancel_all_downloads)
        self.refresh()

    @property
    def settings(self) -> Any:
        """The engine's settings, read at each use (the token and the pickle switch can change while open)."""
        return self.engine.settings

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.generator_combo = QComboBox(self)
        self.generator_combo.setObjectName("models_generator")
        self.generator_combo.setAccessibleName(self.tr("Generator"))
        # long names ("Image (Stable Diffusion) · Depth estimators") are elided rather than widening the page
        self.generator_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.generator_combo.setMinimumContentsLength(18)
        self._fill_generators()
        self.generator_combo.currentIndexChanged.connect(lambda _index: self.refresh())
        self.refresh_button = self._button("refresh", self.tr("Refresh"), self.tr("Scan the models on disk again"),
                                           self.refresh)
        self.total_label = QLabel(self)
        self.total_label.setObjectName("models_total")
        self.total_label.setAccessibleName(self.tr("Disk use of all models"))
        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("Generator:"), self))
        top.addWidget(self.generator_combo, 1)
        top.addWidget(self.total_label)
        top.addWidget(self.refresh_button)

        self.message_label = QLabel(self)
        self.message_label.setObjectName("models_message")
        self.message_label.setAccessibleName(self.tr("Model manager messages"))
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self._build_installed())
        splitter.addWidget(self._build_recommended())
        splitter.addWidget(self._build_loaded())
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message_label)
        layout.addWidget(splitter, 1)

    def _button(self, name: str, text: str, tip: str, slot: Callable[[], Any], parent: QWidget | None = None
                ) -> QPushButton:
        button = QPushButton(text, parent or self)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _table(self, name: str, accessible: str, headers: list[str], parent: QWidget) -> QTableWidget:
        table = QTableWidget(0, len(headers), parent)
        table.setObjectName(name)
        table.setAccessibleName(accessible)
        table.setHorizontalHeaderLabels(headers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        return table

    def _build_installed(self) -> QGroupBox:
        box = QGroupBox(self.tr("Installed"), self)
        box.setObjectName("installed_box")
        self.installed_table = self._table("installed_table", self.tr("Installed models"),
                                           [self.tr("Model"), self.tr("Source"), self.tr("Size"),
                                            self.tr("Last used"), self.tr("Details")], box)
        self.installed_table.setColumnHidden(4, True)  # shown when a model has details
        self.installed_table.horizontalHeader().setStretchLastSection(False)
        self.installed_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.installed_table.itemSelectionChanged.connect(self._update_installed_buttons)
        self.remove_button = self._button("installed_remove", self.tr("Remove…"),
                                          self.tr("Delete the selected model from disk"), self._remove_selected, box)
        self.import_file_button = self._button("import_file", self.tr("Import file…"),
                                               self.tr("Copy a model file into Studiolo's model folder"),
                                               lambda: self._choose_import(folder=False), box)
        self.import_folder_button = self._button("import_folder", self.tr("Import folder…"),
                                                 self.tr("Copy a model folder into Studiolo's model folder"),
                                                 lambda: self._choose_import(folder=True), box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_file_button)
        buttons.addWidget(self.import_folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(box)
        layout.addWidget(self.installed_table, 1)
        layout.addLayout(buttons)
        return box

    def _build_recommended(self) -> QGroupBox:
        box = QGroupBox(self.tr("Recommended"), self)
        box.setObjectName("recommended_box")
        self.recommended_table = self._table(
            "recommended_table", self.tr("Recommended models"),
            [self.tr("Model"), self.tr("Size"), self.tr("Licence"), self.tr("Good for"), self.tr("Download"), ""], box)
        header = self.recommended_table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(4, 200)
        # The action column fits the widest text its button can show (it read "ownloa" when left to the table).
        probe = QPushButton()  # no parent: never shown (a child would sit over the page until deleted)
        probe.setFont(self.font())
        texts = (self.tr("Download"), self.tr("Downloaded"), self.tr("Resume"), self.tr("Cancel"),
                 self.tr("Cancelling…"), self.tr("Choose file…"))
        widths = []
        for text in texts:
            probe.setText(text)
            widths.append(probe.sizeHint().width())
        probe.deleteLater()
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(5, max(widths) + 8)
        self.recommended_table.setWordWrap(False)
        self.recommended_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.offline_label = QLabel(self.tr("Studiolo is working offline (HF_HUB_OFFLINE is set): models cannot be "
                                            "downloaded."), box)
        self.offline_label.setObjectName("models_offline")
        self.offline_label.setWordWrap(True)
        self.offline_label.hide()
        self.repo_edit = QLineEdit(box)
        self.repo_edit.setObjectName("repo_edit")
        self.repo_edit.setPlaceholderText(self.tr("Hugging Face repo, e.g. org/model-GGUF"))
        self.repo_edit.setAccessibleName(self.tr("Hugging Face repo to download a file of"))
        self.repo_edit.returnPressed.connect(self._choose_typed_repo)
        self.download_file_button = self._button("download_file", self.tr("Download a file…"),
                                                 self.tr("List the repo's model files and download one"),
                                                 self._choose_typed_repo, box)
        self.repo_row = QWidget(box)
        row = QHBoxLayout(self.repo_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.repo_edit, 1)
        row.addWidget(self.download_file_button)
        self.repo_row.hide()  # for single-file generators only
        layout = QVBoxLayout(box)
        layout.addWidget(self.offline_label)
        layout.addWidget(self.repo_row)
        layout.addWidget(self.recommended_table, 1)
        return box

    def _build_loaded(self) -> QGroupBox:
        box = QGroupBox(self.tr("Loaded now"), self)
        box.setObjectName("loaded_box")
        self.loaded_table = self._table("loaded_table", self.tr("Models loaded in memory"),
                                        [self.tr("Generator"), self.tr("Model"), self.tr("Device"), self.tr("Memory"),
                                         self.tr("State"), ""], box)
        self.loaded_table.horizontalHeader().setStretchLastSection(False)
        self.loaded_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(box)
        layout.addWidget(self.loaded_table, 1)
        return box

    # -- the generator ---------------------------------------------------------------------------------------

    def generator_id(self) -> str | None:
        """The id of the generator whose models are shown."""
        return self.generator_combo.currentData()

    def set_generator(self, generator_id: str) -> bool:
        """Show the models of ``generator_id``; False if there is no such generator."""
        index = self.generator_combo.findData(generator_id)
        if index < 0:
            return False
        if index == self.generator_combo.currentIndex():
            self.refresh()
        else:
            self.generator_combo.setCurrentIndex(index)  # refreshes
        return True

    def _fill_generators(self) -> bool:
        """List the plugins' generators that use a model in the combo box (kept as they are when unchanged); True if
        it changed."""
        combo = self.generator_combo
        generators = list(self._model_lists().values())
        if [g.id for g in generators] == [combo.itemData(i) for i in range(combo.count())]:
            return False
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for generator in generators:
            combo.addItem(generator.name, generator.id)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)
        return True

    def sync_generators(self) -> None:
        """Follow plugins enabled or disabled while the app runs: the generator list is rebuilt when it changed (a
        generator that went away is replaced by the first one), then the models are listed again. Also done each
        time the page is shown."""
        if self._fill_generators():
            self.refresh()

    def _model_lists(self) -> dict[str, Any]:
        """id → model list: the generators that use a model, each followed by its add-on kinds' lists
        (:mod:`desktop.models.addons`: ControlNets, upscalers… each listed, downloaded and imported on its own)."""
        generators = sorted(self.plugins.generators.values(), key=lambda g: (g.kind, g.name.lower()))
        return {g.id: g for g in model_lists(generators) if uses_local_model(g)}  # remote ones: their servers list them

    def _generator(self) -> Any:
        generator_id = self.generator_id()
        return self._model_lists().get(generator_id) if generator_id else None

    # -- tasks -----------------------------------------------------------------------------------------------

    def _start(self, work: Callable[[TaskState], Any], on_done: Callable[[Any], None],
               on_failed: Callable[[BaseException], None],
               on_progress: Callable[[int, int | None, str], None] | None = None, *, unload: bool = False) -> None:
        """Run ``work(state)`` on a ``models`` task (``engine`` for an unload); the callbacks run on the GUI thread
        while the view exists."""
        def failed(error: BaseException) -> None:
            if not isinstance(error, StudioloError):
                log.warning("models page task failed", exc_info=error)
            on_failed(error)

        (self._unloads if unload else self._tasks).run(work, on_done=on_done, on_failed=failed,
                                                       on_progress=on_progress)

    def busy(self) -> bool:
        """Whether a task of this view (a scan, download, import, removal or unload) is still running."""
        return bool(self._tasks.pending() or self._unloads.pending())

    # -- messages --------------------------------------------------------------------------------------------

    def show_message(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the page's message line (and send it as ``message``)."""
        self.message_label.setText(text)
        self.message_label.setProperty("error", error)
        self.message_label.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;"
                                         if error else "")
        self.message_label.show()
        self.message.emit(text, error)

    def _error_text(self, what: str, error: BaseException) -> str:
        if isinstance(error, StudioloError):
            detail = error.message + (f" {error.hint}" if error.hint else "")
        else:
            detail = self.tr("Unexpected error: %1").replace("%1", f"{type(error).__name__}: {error}")
        return f"{what} {detail}" if what else detail

    # -- scanning --------------------------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Scan the chosen generator's models again (on a worker) and the loaded models (at once)."""
        self.refresh_loaded()
        generator = self._generator()
        self._scan += 1
        scan = self._scan
        self._dirty = False
        if generator is None:
            self._fill(None, None)
            return
        allow_pickle = bool(self.settings.allow_pickle)

        def work(_state: TaskState) -> tuple[GeneratorModels, int]:
            return inventory.models_for(generator, allow_pickle=allow_pickle), inventory.total_disk_bytes()

        def done(result: tuple[GeneratorModels, int]) -> None:
            if scan == self._scan:
                self._fill(*result)

        def failed(error: BaseException) -> None:
            if scan == self._scan:
                self.show_message(self._error_text(self.tr("Could not list the models:"), error), True)
                self.refreshed.emit()

        self._start(work, done, failed)

    def _fill(self, data: GeneratorModels | None, total: int | None) -> None:
        self.data, self.total_bytes = data, total
        self._fill_installed()
        self._fill_recommended()
        if total is None:
            self.total_label.setText("")
        else:
            text = self.tr("Models on disk: %1").replace("%1", human_bytes(total))
            if data is not None:
                text += self.tr(" (this generator: %1)").replace("%1", human_bytes(data.disk_bytes))
            self.total_label.setText(text)
        self.refreshed.emit()

    def _fill_installed(self) -> None:
        selected = self.selected_installed()
        table = self.installed_table
        table.setRowCount(0)
        models = self.data.installed if self.data is not None else []
        sources = {"demo": self.tr("demo"), "imported": self.tr("imported"), "hub": self.tr("Hugging Face")}
        for row, model in enumerate(models):
            table.insertRow(row)
            details = details_text(model.details)
            cells = (model.ref, sources.get(model.source, model.source), human_bytes(model.size_bytes),
                     self._when(model.last_used), details)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(REF_ROLE, model.ref)
                item.setToolTip(str(model.path) + (f"\n{details}" if details else ""))
                if column == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, column, item)
            if model.ref == selected:
                table.selectRow(row)
        table.setColumnHidden(4, not any(m.details for m in models))
        self._update_installed_buttons()

    def _when(self, timestamp: float | None) -> str:
        if not timestamp:
            return self.tr("never")
        return QDateTime.fromSecsSinceEpoch(int(timestamp)).toString("yyyy-MM-dd HH:mm")

    def _update_installed_buttons(self) -> None:
        generator = self._generator()
        sources = generator.model_sources if generator is not None else frozenset()
        self.import_file_button.setEnabled(ModelSource.FILE in sources)
        self.import_folder_button.setEnabled(ModelSource.FOLDER in sources)
        self.remove_button.setEnabled(self.selected_installed() is not None)

    def installed_details(self, ref: str) -> str:
        """The *Details* cell of the installed model ``ref`` ("" when it has none or is not listed)."""
        table = self.installed_table
        for row in range(table.rowCount()):
            if table.item(row, 0).data(REF_ROLE) == ref:
                return table.item(row, 4).text()
        return ""

    def installed_refs(self) -> list[str]:
        """The references in the installed table, top to bottom."""
        table = self.installed_table
        return [table.item(row, 0).data(REF_ROLE) for row in range(table.rowCount())]

    def selected_installed(self) -> str | None:
        items = self.installed_table.selectedItems()
        return items[0].data(REF_ROLE) if items else None

    def _installed_model(self, ref: str) -> InstalledModel | None:
        models = self.data.installed if self.data is not None else []
        return next((m for m in models if m.ref == ref), None)

    # -- recommended -----------------------------------------------------------------------------------------

    def _fill_recommended(self) -> None:
        table = self.recommended_table
        table.setRowCount(0)
        self._progress.clear()
        self._actions.clear()
        offline = hub.is_offline()
        self.offline_label.setVisible(offline)
        generator = self._generator()
        self.repo_row.setVisible(bool(generator is not None and generator.model_file_patterns))
        self.download_file_button.setEnabled(not offline)
        self.download_file_button.setToolTip(self.tr("Studiolo is working offline (HF_HUB_OFFLINE is set).")
                                             if offline else self.tr("List the repo's model files and download one"))
        recommended = self.data.recommended if self.data is not None else []
        for row, status in enumerate(recommended):
            table.insertRow(row)
            name = QTableWidgetItem(status.name)
            name.setToolTip(status.ref)
            size = QTableWidgetItem(self._size_text(status))
            size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            licence = QTableWidgetItem(status.license or self.tr("unknown"))
            description = QTableWidgetItem(status.description)
            description.setToolTip(status.description)
            for column, item in enumerate((name, size, licence, description)):
                item.setData(REF_ROLE, status.ref)
                table.setItem(row, column, item)
            bar = QProgressBar(table)
            bar.setObjectName(f"progress:{status.ref}")
            bar.setAccessibleName(self.tr("Download of %1").replace("%1", status.name))
            bar.setRange(0, PROGRESS_STEPS)
            table.setCellWidget(row, 4, bar)
            action = QPushButton(table)
            action.setObjectName(f"download:{status.ref}")
            action.clicked.connect(functools.partial(self._on_action, status.ref))
            table.setCellWidget(row, 5, action)
            self._progress[status.ref] = bar
            self._actions[status.ref] = action
            self._show_status(status.ref)

    def _size_text(self, status: RecommendedStatus) -> str:
        if status.size_bytes is None:
            return self.tr("unknown")
        text = human_bytes(status.size_bytes)
        if status.size_checked:
            text = self.tr("%1 (as of %2)").replace("%1", text).replace("%2", status.size_checked)
        return text

    def recommended_refs(self) -> list[str]:
        """The references in the recommended table, top to bottom."""
        table = self.recommended_table
        return [table.item(row, 0).data(REF_ROLE) for row in range(table.rowCount())]

    def _status(self, ref: str) -> RecommendedStatus | None:
        return self.data.recommended_status(ref) if self.data is not None else None

    def action_button(self, ref: str) -> QPushButton | None:
        """The Download / Cancel / Resume button of a recommended model."""
        return self._actions.get(ref)

    def progress_bar(self, ref: str) -> QProgressBar | None:
        return self._progress.get(ref)

    def _show_status(self, ref: str) -> None:
        """Set a recommended model's progress bar and button from its state and any download of it."""
        bar, action, status = self._progress.get(ref), self._actions.get(ref), self._status(ref)
        if bar is None or action is None or status is None:
            return
        download = self._download_of_row(ref)
        action.setEnabled(True)
        action.setToolTip("")
        if download is not None:
            self._set_bar(bar, download.done, download.total)
            cancelling = download.cancel.is_set()
            action.setText(self.tr("Cancelling…") if cancelling else self.tr("Cancel"))
            action.setEnabled(not cancelling)
            action.setToolTip(self.tr("Stop the download; downloading again resumes it"))
        elif status.choose_file:
            bar.setRange(0, PROGRESS_STEPS)
            bar.setValue(PROGRESS_STEPS if status.files else 0)
            bar.setFormat(self.tr("%1 file(s) downloaded").replace("%1", str(len(status.files))) if status.files
                          else self.tr("Not downloaded"))
            bar.setToolTip("\n".join(status.files))
            action.setText(self.tr("Choose file…"))
            action.setToolTip(self.tr("List the files of %1 and download one").replace("%1", status.name))
            if hub.is_offline():
                action.setEnabled(False)
                action.setToolTip(self.tr("Studiolo is working offline (HF_HUB_OFFLINE is set). Unset it and "
                                          "restart Studiolo to download models."))
        elif status.installed:
            bar.setValue(PROGRESS_STEPS)
            bar.setFormat(self.tr("Downloaded"))
            action.setText(self.tr("Downloaded"))
            action.setEnabled(False)
        else:
            if status.partial:
                self._set_bar(bar, status.bytes_on_disk, status.size_bytes)
                bar.setFormat(self.tr("Partly downloaded: %1").replace("%1", human_bytes(status.bytes_on_disk)))
                action.setText(self.tr("Resume"))
                action.setToolTip(self.tr("Download the rest of %1").replace("%1", status.name))
            else:
                bar.setValue(0)
                bar.setFormat(self.tr("Not downloaded"))
                action.setText(self.tr("Download"))
                action.setToolTip(self.tr("Download %1 from Hugging Face").replace("%1", status.name))
            if hub.is_offline():
                action.setEnabled(False)
                action.setToolTip(self.tr("Studiolo is working offline (HF_HUB_OFFLINE is set). Unset it and "
                                          "restart Studiolo to download models."))
        action.setAccessibleName(f"{action.text()} {status.name}")

    def _set_bar(self, bar: QProgressBar, done: int, total: int | None) -> None:
        if total is None or total <= 0:
            if done:
                bar.setRange(0, PROGRESS_STEPS)
                bar.setValue(0)
                bar.setFormat(human_bytes(done))
            else:
                bar.setRange(0, 0)  # busy: the size is not known yet
            return
        bar.setRange(0, PROGRESS_STEPS)
        bar.setValue(min(PROGRESS_STEPS, done * PROGRESS_STEPS // total))
        bar.setFormat(self.tr("%1 of %2").replace("%1", human_bytes(done)).replace("%2", human_bytes(total)))

    def _on_action(self, ref: str, *_checked: Any) -> None:
        download = self._download_of_row(ref)
        status = self._status(ref)
        if download is not None:
            self.cancel_download(download.ref)
        elif status is not None and status.choose_file:
            self.choose_file(ref)
        else:
            self.download(ref)

    def _row_of(self, ref: str) -> str | None:
        """The recommended row that shows the download of ``ref``: its own, or for one file of a repo the row of
        the repo it was chosen from."""
        if ref in self._progress:
            return ref
        one_file = split_hub_file(ref)
        if one_file is None:
            return None
        repo, _filename, revision = one_file
        row = f"{repo}@{revision}" if revision else repo
        status = self._status(row)
        return row if status is not None and status.choose_file else None

    def _download_of_row(self, row: str) -> _Download | None:
        if row in self._downloads:
            return self._downloads[row]
        return next((d for ref, d in self._downloads.items() if self._row_of(ref) == row), None)

    # -- downloading -----------------------------------------------------------------------------------------

    def download(self, ref: str) -> bool:
        """Start downloading the hub model ``ref`` (resuming what is already there) on a worker. False when it
        cannot start (offline, already downloading); the reason is shown."""
        if ref in self._downloads:
            return False
        repo, _, revision = ref.partition("@")
        one_file = split_hub_file(ref)
        generator = self._generator()
        patterns = tuple(generator.model_file_patterns) if generator is not None else ()
        if hub.is_offline():
            self.show_message(self.tr("%1 cannot be downloaded: Studiolo is working offline (HF_HUB_OFFLINE is "
                                      "set). Unset it and restart Studiolo.").replace("%1", ref), True)
            return False
        entry = self._downloads[ref] = _Download(ref)
        token = self.settings.hf_token
        ignore = inventory.pickle_ignore_patterns(bool(self.settings.allow_pickle))

        def work(state: TaskState) -> Path:
            if one_file is not None:
                return hub.download_file(one_file[0], one_file[1], revision=one_file[2], token=token,
                                         cancel=entry.cancel, on_progress=state.progress, file_patterns=patterns)
            return hub.download(repo, revision=revision or None, token=token, cancel=entry.cancel,
                                ignore_patterns=ignore, on_progress=state.progress)

        def progress(done: int, total: int | None, _text: str) -> None:
            entry.done, entry.total = done, total
            row = self._row_of(ref)
            bar = self._progress.get(row) if row is not None else None
            if bar is not None:
                self._set_bar(bar, done, total)
            self.download_progressed.emit(ref, done, total or 0)

        self._start(work, lambda _path: self._download_ended(ref, None), lambda exc: self._download_ended(ref, exc),
                    progress)
        self._show_status(self._row_of(ref) or ref)
        self.show_message(self.tr("Downloading %1…").replace("%1", ref))
        return True

    def cancel_download(self, ref: str) -> bool:
        """Stop downloading ``ref``; what arrived is kept and the next download resumes it."""
        entry = self._downloads.get(ref)
        if entry is None:
            return False
        entry.cancel.set()
        self._show_status(self._row_of(ref) or ref)
        return True

    @Slot()
    def cancel_all_downloads(self) -> None:
        for ref in list(self._downloads):
            self.cancel_download(ref)

    def _download_ended(self, ref: str, error: BaseException | None) -> None:
        self._downloads.pop(ref, None)
        if error is None:
            outcome = "done"
            self.show_message(self.tr("Downloaded %1.").replace("%1", ref))
            self.models_changed.emit()
        elif isinstance(error, JobCancelled):
            outcome = "cancelled"
            self.show_message(self.tr("Download of %1 cancelled. Resume continues where it stopped.")
                              .replace("%1", ref))
        else:
            outcome = "failed"
            self.show_message(self._error_text(self.tr("Could not download %1:").replace("%1", ref), error), True)
        self._show_status(self._row_of(ref) or ref)
        self.refresh()
        self.download_ended.emit(ref, outcome)

    # -- choosing one file of a repo -------------------------------------------------------------------------

    def _choose_typed_repo(self) -> None:
        text = self.repo_edit.text().strip()
        if not text:
            self.show_message(self.tr("Type a Hugging Face repo id first, like org/model-GGUF."), True)
            return
        one_file = split_hub_file(text)
        if one_file is not None:  # a file named already: nothing to choose
            self.download(text)
            return
        self.choose_file(text)

    def choose_file(self, repo_ref: str) -> bool:
        """List the files of the hub repo ``repo_ref`` (``org/name`` or ``org/name@revision``) that the chosen
        generator can use (its ``model_file_patterns``), off the GUI thread, then show them with their sizes in
        :attr:`file_picker`; the file picked there is downloaded. False when it cannot start (offline, a generator
        whose models are whole repos, not a repo id); the reason is shown."""
        generator = self._generator()
        patterns = tuple(generator.model_file_patterns) if generator is not None else ()
        repo, _, revision = repo_ref.strip().partition("@")
        if not patterns:
            self.show_message(self.tr("%1 uses whole repos as models: download %2 as it is.")
                              .replace("%1", generator.name if generator is not None else "?")
                              .replace("%2", repo_ref), True)
            return False
        if hub.is_offline():
            self.show_message(self.tr("The files of %1 cannot be listed: Studiolo is working offline (HF_HUB_OFFLINE "
                                      "is set). Unset it and restart Studiolo.").replace("%1", repo_ref), True)
            return False
        token = self.settings.hf_token

        def work(state: TaskState) -> list[hub.RepoFile]:
            return hub.list_repo_files(repo, revision or None, token, cancel=state.cancel_event)

        def done(files: list[hub.RepoFile]) -> None:
            matching = [f for f in files if matches_patterns(f.path, patterns)]
            self.files_listed.emit(repo_ref, matching)
            if not matching:
                self.show_message(self.tr("%1 has no %2 files.").replace("%1", repo_ref)
                                  .replace("%2", " / ".join(patterns)), True)
                return
            self.show_message(self.tr("%1: %2 file(s) to choose from.").replace("%1", repo_ref)
                              .replace("%2", str(len(matching))))
            self._show_file_picker(repo, revision or None, matching)

        def failed(error: BaseException) -> None:
            self.show_message(self._error_text(self.tr("Could not list the files of %1:").replace("%1", repo_ref),
                                               error), True)
            self.files_listed.emit(repo_ref, None)

        self.show_message(self.tr("Listing the files of %1…").replace("%1", repo_ref))
        self._start(work, done, failed)
        return True

    def _show_file_picker(self, repo: str, revision: str | None, files: list[hub.RepoFile]) -> None:
        installed = set(self.installed_refs())
        downloaded = {f.path for f in files if hub.file_ref(repo, f.path, revision) in installed
                      or hub.file_ref(repo, f.path) in installed}
        if self.file_picker is not None:
            self.file_picker.close()
            self.file_picker.deleteLater()
        dialog = RepoFilesDialog(f"{repo}@{revision}" if revision else repo, files, downloaded, self)
        dialog.file_chosen.connect(lambda path: self.download(hub.file_ref(repo, path, revision)))
        self.file_picker = dialog
        dialog.open()

    # -- importing and removing ------------------------------------------------------------------------------

    def _choose_import(self, folder: bool) -> None:
        dialog = QFileDialog(self, self.tr("Import a model folder") if folder else self.tr("Import a model file"))
        dialog.setObjectName("import_dialog")
        if folder:
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
            dialog.setNameFilters([self.tr("Model weights (*.safetensors *.gguf)"), self.tr("All files (*)")])
        dialog.fileSelected.connect(lambda path: self.import_path(Path(path)))
        self.file_dialog = dialog
        dialog.open()

    def import_path(self, path: Path, name: str | None = None) -> None:
        """Copy the model file or folder at ``path`` into Studiolo's model folder (checked first) on a worker, listed
        under the chosen generator. The outcome is shown as a message; ``models_changed`` follows a success."""
        from desktop.models.store import import_model

        generator_id = self.generator_id()
        allow_pickle = bool(self.settings.allow_pickle)

        def work(_state: TaskState) -> InstalledModel:
            return import_model(Path(path), name=name, allow_pickle=allow_pickle, generator_id=generator_id)

        def done(model: InstalledModel) -> None:
            self.show_message(self.tr("Imported %1 as %2 (%3).").replace("%1", Path(path).name)
                              .replace("%2", model.ref).replace("%3", human_bytes(model.size_bytes)))
            self.models_changed.emit()
            self.refresh()

        def failed(error: BaseException) -> None:
            self.show_message(self._error_text(self.tr("Could not import %1:").replace("%1", str(path)), error), True)

        self.show_message(self.tr("Importing %1…").replace("%1", Path(path).name))
        self._start(work, done, failed)

    def _remove_selected(self) -> None:
        ref = self.selected_installed()
        if ref is not None:
            self.remove(ref)

    def remove(self, ref: str, confirm: bool = True) -> None:
        """Delete the installed model ``ref`` from disk (on a worker), after a confirmation unless ``confirm`` is
        False. The outcome is shown as a message; ``models_changed`` follows a success."""
        repo = ref.partition("@")[0]
        if any(d.partition("@")[0] == repo or d.startswith(repo + "/") for d in self._downloads):
            self.show_message(self.tr("%1 is downloading: cancel the download before removing it.")
                              .replace("%1", ref), True)
            return
        if confirm:
            self._confirm_remove(ref)
            return
        from desktop.models.store import remove_model

        def done(freed: int) -> None:
            self.show_message(self.tr("Removed %1 (%2 freed).").replace("%1", ref).replace("%2", human_bytes(freed)))
            self.models_changed.emit()
            self.refresh()

        def failed(error: BaseException) -> None:
            self.show_message(self._error_text(self.tr("Could not remove %1:").replace("%1", ref), error), True)
            self.refresh()

        self._start(lambda _state: remove_model(repo if ref.startswith(repo + "@") else ref), done, failed)

    def _confirm_remove(self, ref: str) -> None:
        model = self._installed_model(ref)
        size = human_bytes(model.size_bytes) if model is not None else self.tr("its files")
        text = self.tr("Remove %1? This deletes %2 from disk.").replace("%1", ref).replace("%2", size)
        if model is not None and model.source == "hub":
            text += " " + self.tr("It is in the Hugging Face cache, which other programs may use too; it can be "
                                  "downloaded again.")
        elif model is not None and model.source == "demo":
            text += " " + self.tr("The demo model is built again when it is next used.")
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Remove model"), text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("confirm_remove")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText(self.tr("Remove"))
        box.finished.connect(self._on_confirm_finished)
        self.confirm_box, self._confirm_ref = box, ref
        box.open()

    @Slot(int)
    def _on_confirm_finished(self, _result: int) -> None:
        box, ref = self.confirm_box, self._confirm_ref
        self.confirm_box = self._confirm_ref = None
        if box is None or ref is None:
            return
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            self.remove(ref, confirm=False)
        box.deleteLater()

    # -- loaded now ------------------------------------------------------------------------------------------

    @Slot()
    def refresh_loaded(self) -> None:
        """Fill the "Loaded now" table from the engine's model cache (a quick read of its list)."""
        loaded: list[LoadedModel] = self.cache.loaded()
        table = self.loaded_table
        table.setRowCount(0)
        self._loaded_keys = [m.key for m in loaded]
        for row, model in enumerate(loaded):
            table.insertRow(row)
            generator = self.plugins.generators.get(model.key.generator_id)
            state = self.tr("in use") if model.in_use else self.tr("idle for %1").replace(
                "%1", self._duration(model.idle_seconds))
            cells = (generator.name if generator is not None else model.key.generator_id,
                     inventory.label_for_path(model.key.model), model.key.device, human_bytes(model.size), state)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 1:
                    item.setToolTip(model.key.model)
                table.setItem(row, column, item)
            button = QPushButton(self.tr("Unload"), table)
            button.setObjectName(f"unload:{row}")
            button.setAccessibleName(self.tr("Unload %1").replace("%1", cells[1]))
            button.setToolTip(self.tr("Free the memory this model holds (it is loaded again when next used)"))
            button.clicked.connect(functools.partial(self.unload, model.key))
            table.setCellWidget(row, 5, button)

    def _duration(self, seconds: float) -> str:
        if seconds < 60:
            return self.tr("%1 s").replace("%1", str(int(seconds)))
        if seconds < 3600:
            return self.tr("%1 min").replace("%1", str(int(seconds // 60)))
        return self.tr("%1 h").replace("%1", f"{seconds / 3600:.1f}")

    def loaded_keys(self) -> list[CacheKey]:
        """The cache keys in the "Loaded now" table, top to bottom."""
        return list(self._loaded_keys)

    def unload(self, key: CacheKey, *_args: Any) -> None:
        """Unload one model from the engine's cache on a worker (a job using it keeps it until the job ends)."""
        label = inventory.label_for_path(key.model)
        in_use = any(m.key == key and m.in_use for m in self.cache.loaded())

        def done(unloaded: bool) -> None:
            if not unloaded:
                self.show_message(self.tr("%1 was no longer loaded.").replace("%1", label))
            elif in_use:
                self.show_message(self.tr("%1 is unloaded as soon as its job ends.").replace("%1", label))
            else:
                self.show_message(self.tr("Unloaded %1.").replace("%1", label))
            self.refresh_loaded()

        def failed(error: BaseException) -> None:
            self.show_message(self._error_text(self.tr("Could not unload %1:").replace("%1", label), error), True)
            self.refresh_loaded()

        self._start(lambda _state: self.cache.unload(key), done, failed, unload=True)

    @Slot()
    def _on_job_ended(self, *_args: Any) -> None:
        """A job ended: what is loaded changed, and a job may have downloaded or built a model."""
        self.refresh_loaded()
        if self.isVisible():
            self.rescan_timer.start()
        else:
            self._dirty = True

    # -- showing ---------------------------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.loaded_timer.start()
        if self._fill_generators() or self._dirty:
            self.refresh()
        else:
            self.refresh_loaded()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().hideEvent(event)
        self.loaded_timer.stop()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every download and wait (at most ``timeout`` seconds) for the page's tasks; True if they ended.
        For the window's close (a download stops within a fraction of a second of its cancel)."""
        self.cancel_all_downloads()
        return self._tasks.shutdown(int(timeout * 1000))
