"""A generator's grid window: the setup (:class:`~desktop.ui.explore.grid_setup.GridSetup`) above the grid
(:class:`~desktop.ui.explore.grid_view.GridView`). Run sends one job per cell through the engine
(:class:`~desktop.explore.run.GridRun`: the queue, progress and cancel of any job; every cell saved to the gallery).
A finished grid saves as one file (:func:`desktop.explore.export.grid_file`: PNG for images, HTML or Markdown for text
and audio), and a saved grid opens again (:func:`desktop.explore.export.read_grid_record`) to be run again. Files are
read and written on tasks (:mod:`desktop.ui.tasks`): the GUI thread never waits on the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QCheckBox, QFileDialog, QLabel, QSplitter, QVBoxLayout, QWidget

from desktop.api import ModelSource, StudioloError, from_json
from desktop.explore.export import grid_file, read_grid_record, spec_from_record
from desktop.explore.grid import GridSpec
from desktop.ui.explore.grid_setup import Base, GridSetup
from desktop.ui.explore.grid_view import GridView
from desktop.ui.tasks import TaskGroup, TaskState
from desktop.ui.theme import mark_error

__all__ = ["GridWindow", "save_suffixes"]


def save_suffixes(kind: str) -> tuple[str, ...]:
    """The kinds of file a grid of ``kind`` outputs saves as, the first the default."""
    return (".png",) if kind == "image" else (".html", ".md")


def _save(kind: str, path: Path, spec: GridSpec, cells: list[Any], results: dict, saved: dict, notes: dict,
          _state: TaskState) -> Path:
    """Build the grid's file and write it (a task: pictures may be read from the library)."""
    from desktop.destinations import write_file

    return write_file(path, grid_file(kind, path.suffix.lower(), spec, cells, results, saved, notes))


class GridWindow(QWidget):
    """The grid window of one generator page. ``base()`` gives the page's params, model and seed; ``reuse(params,
    seed=, model=)`` shows a cell's on the page.

    Signals: ``grid_started(GridRun)``, ``grid_finished()``, ``grid_loaded(GridSpec)`` (a saved grid is in the
    setup), ``grid_saved(path)``, ``message(text, error)`` (also shown in the window)."""

    grid_started = Signal(object)
    grid_finished = Signal()
    grid_loaded = Signal(object)
    grid_saved = Signal(str)
    message = Signal(str, bool)

    def __init__(self, engine: Any, generator: Any, base: Callable[[], Base], reuse: Callable[..., None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("grid_window")
        self.setWindowTitle(self.tr("Grid — %1").replace("%1", generator.name))
        self.engine = engine
        self.generator = generator
        self.reuse = reuse
        self.run: Any = None
        self.files = TaskGroup("library", owner=self)  # a grid file read or written, one after the other
        self.setup = GridSetup(generator, base, self)
        self.view = GridView(generator, self)
        self.note = QLabel(self)
        self.note.setObjectName("grid_message")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.setup)
        splitter.addWidget(self.view)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.spread_box = QCheckBox(self.tr("Spread the cells over all my servers (each takes as many at once as its "
                                            "concurrency; a cell whose server goes away runs on another)"), self)
        self.spread_box.setObjectName("grid_spread")
        self.spread_box.setVisible(ModelSource.REMOTE in generator.model_sources)  # remote generators only
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.spread_box)
        layout.addWidget(self.note)
        self.setup.run_requested.connect(self.start)
        self.setup.open_requested.connect(self.choose_file_to_open)
        self.view.save_button.clicked.connect(self.choose_file_to_save)
        self.view.grid_finished.connect(self._on_finished)
        self.view.reuse_requested.connect(self._reuse_cell)
        self.view.message.connect(self.say)
        self.resize(1000, 760)

    # -- running -------------------------------------------------------------------------------------------------

    @Slot(object)
    def start(self, spec: GridSpec) -> Any:
        """Run ``spec`` now (no question asked: :meth:`GridSetup.request_run` asks). A cell that is not allowed is
        said in the setup and nothing runs. Returns the :class:`GridRun`, or None."""
        from desktop.explore.run import GridRun

        try:
            run = GridRun(self.engine, spec, self.generator, self, spread=self._spread(spec))
        except StudioloError as exc:
            self.setup.show_status(str(exc), error=True)
            return None
        previous, self.run = self.run, run
        self.view.show_run(run)
        if previous is not None and previous.is_finished:
            previous.deleteLater()
        self.setup.set_running(not run.is_finished)
        self.say(self.tr("Running %1 jobs; each is saved to the gallery.").replace("%1", str(run.total)))
        self.grid_started.emit(run)
        return run

    def _spread(self, spec: GridSpec) -> Any:
        """The spread over every configured server when the box is ticked (None otherwise); a
        :class:`~desktop.api.ParamError` when a cell's model is not on a server or no server is configured."""
        if not (self.spread_box.isChecked() and ModelSource.REMOTE in self.generator.model_sources):
            return None
        from desktop.explore.grid import expand
        from desktop.remote.spread import spread_from_names

        models = [cell.model for cell in expand(spec, self.generator)]
        return spread_from_names("all", self.engine.settings.servers(), models)

    def run_grid(self, spec: GridSpec) -> None:
        """Show ``spec`` in the setup and run it as Run would (asking first for a big grid)."""
        self.setup.load_spec(spec, self.tr("the grid given"))
        self.setup.request_run()

    @Slot()
    def _on_finished(self) -> None:
        self.setup.set_running(False)
        self.say(self.tr("Every cell is in the gallery; Save grid… keeps the grid as one file, to run again."))
        self.grid_finished.emit()

    def _reuse_cell(self, cell: Any) -> None:
        self.reuse(from_json(self.generator.Params, cell.params), seed=cell.seed, model=cell.model)
        owner = self.parentWidget()
        if owner is not None:
            owner.window().activateWindow()
        self.say(self.tr("The page now holds this cell's parameters (%1).").replace(
            "%1", ", ".join(f"{k} {v}" for k, v in cell.labels.items())))

    # -- saving --------------------------------------------------------------------------------------------------

    @Slot()
    def choose_file_to_save(self) -> None:
        suffixes = save_suffixes(self.generator.kind)
        names = {".png": self.tr("PNG picture (*.png)"), ".html": self.tr("HTML page (*.html)"),
                 ".md": self.tr("Markdown (*.md)")}
        dialog = QFileDialog(self, self.tr("Save the grid"))
        dialog.setObjectName("grid_save_dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters([names[s] for s in suffixes])
        dialog.setDefaultSuffix(suffixes[0].lstrip("."))
        dialog.selectFile(f"grid-{self.generator.id}{suffixes[0]}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda name: self.save(Path(name)))
        dialog.open()

    def save(self, path: Path) -> bool:
        """Write the finished grid to ``path`` (its suffix says how; added when missing) on a task; ``grid_saved``
        or an error follows. False (nothing written) when there is no finished grid or the suffix does not fit."""
        run = self.run
        if run is None or not run.is_finished:
            self.say(self.tr("Save the grid once it has finished."), True)
            return False
        suffixes = save_suffixes(self.generator.kind)
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(suffixes[0])
        if path.suffix.lower() not in suffixes:
            self.say(self.tr("A grid of %1 outputs is saved as %2, not %3.").replace("%1", self.generator.kind)
                     .replace("%2", " or ".join(suffixes)).replace("%3", path.name), True)
            return False
        notes = {index: self.tr("cancelled") for index in run.cancelled}
        work = partial(_save, self.generator.kind, path, run.spec, list(run.cells), dict(run.results),
                       dict(run.saved), notes)
        self.files.run(work, on_done=self._on_saved, on_failed=partial(self._failed, self.tr("Could not save the "
                                                                                            "grid: %1")))
        self.say(self.tr("Saving the grid…"))
        return True

    def _on_saved(self, path: Path) -> None:
        self.say(self.tr("Grid saved to %1.").replace("%1", str(path)))
        self.grid_saved.emit(str(path))

    def _failed(self, text: str, exc: BaseException) -> None:
        self.say(text.replace("%1", str(exc)), True)

    # -- opening a saved grid -------------------------------------------------------------------------------------

    @Slot()
    def choose_file_to_open(self) -> None:
        dialog = QFileDialog(self, self.tr("Open a saved grid"))
        dialog.setObjectName("grid_open_dialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters([self.tr("Saved grids (*.png *.md *.html)"), self.tr("All files (*)")])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda name: self.open_file(Path(name)))
        dialog.open()

    def open_file(self, path: Path) -> None:
        """Read the grid saved in ``path`` (on a task) into the setup: its axes, and its params, model and seed as
        the base; ``grid_loaded`` follows, or the error is said in the setup."""
        path = Path(path)

        def loaded(record: dict[str, Any]) -> None:
            try:
                spec = spec_from_record(record, self.generator)
            except StudioloError as exc:
                self.setup.show_status(str(exc), error=True)
                return
            self.setup.load_spec(spec, path.name)
            self.say(self.tr("Opened the grid of %1: Run runs it again.").replace("%1", path.name))
            self.grid_loaded.emit(spec)

        def failed(exc: BaseException) -> None:
            text = str(exc) if isinstance(exc, StudioloError) else \
                self.tr("Cannot read %1: %2").replace("%1", str(path)).replace("%2", str(exc))
            self.setup.show_status(text, error=True)

        self.files.run(lambda _state: read_grid_record(path), on_done=loaded, on_failed=failed)

    # -- messages and life ----------------------------------------------------------------------------------------

    @Slot(str, bool)
    def say(self, text: str, error: bool = False) -> None:
        mark_error(self.note, error)
        self.note.setText(text)
        self.message.emit(text, error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        """Closing hides the window: a grid still running goes on (its cells are jobs, saved to the gallery)."""
        self.view.player.stop()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop playing and drop the drawings and file work not started (the page or window is going away)."""
        self.view.shutdown()
        self.files.shutdown(timeout_ms=2000)

