"""A generator's interpolation window: the setup (:class:`~desktop.ui.explore.interpolate_setup.InterpolateSetup`:
from the page's params, model and seed to another seed and/or prompt, in N frames) above the strip of frames
(:class:`~desktop.ui.explore.strip_view.StripView`). Run sends one job per frame through the engine
(:class:`~desktop.explore.interpolate_run.InterpolationRun`: the queue, progress and cancel of any job; every frame
saved to the gallery with the metadata that makes it again). The finished frames save as one animated WebP or GIF,
or a strip PNG (:func:`desktop.explore.strip.strip_bytes`), built and written atomically on a task
(:mod:`desktop.ui.tasks`): the GUI thread never waits on the disk.

Only for a generator that offers interpolation (``Generator.offers_interpolation``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QVBoxLayout, QWidget

from desktop.api import StudioloError, from_json
from desktop.explore.grid import GridCell
from desktop.explore.interpolate import InterpolationSpec
from desktop.explore.strip import FORMATS, strip_bytes
from desktop.ui.explore.grid_setup import Base
from desktop.ui.explore.interpolate_setup import InterpolateSetup
from desktop.ui.explore.strip_view import StripView
from desktop.ui.tasks import TaskGroup, TaskState
from desktop.ui.theme import mark_error

__all__ = ["InterpolateWindow", "frame_images", "write_strip"]


def frame_images(cells: list[GridCell], results: dict, saved: dict) -> dict[int, Any]:
    """Each done frame's PIL image by its number: its output's when in memory, else read from its saved file
    (runs on a task)."""
    from PIL import Image

    images = {}
    for cell in cells:
        outputs = results.get(cell.index)
        if outputs is None:
            continue
        image = next((o.image for o in outputs if getattr(o, "image", None) is not None), None)
        if image is None and saved.get(cell.index):
            with Image.open(saved[cell.index][0]) as opened:
                image = opened.convert("RGB")
        if image is not None:
            images[cell.index[0]] = image
    return images


def write_strip(path: Path, generator_id: str, cells: list[GridCell], results: dict, saved: dict,
                _state: TaskState | None = None) -> Path:
    """Build the frames' file for ``path``'s suffix and write it atomically (a task). Raises a
    :class:`~desktop.destinations.WriteError` naming the file (full disk, a folder in the way)."""
    from desktop.destinations import write_file

    return write_file(path, strip_bytes(path.suffix, generator_id, cells, frame_images(cells, results, saved)))


class InterpolateWindow(QWidget):
    """The interpolation window of one generator page. ``base()`` gives the page's params, model and seed;
    ``reuse(params, seed=, model=)`` shows a frame's on the page.

    Signals: ``run_started(InterpolationRun)``, ``run_finished()``, ``strip_saved(path)``, ``message(text,
    error)`` (also shown in the window)."""

    run_started = Signal(object)
    run_finished = Signal()
    strip_saved = Signal(str)
    message = Signal(str, bool)

    def __init__(self, engine: Any, generator: Any, base: Callable[[], Base], reuse: Callable[..., None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("interpolate_window")
        self.setWindowTitle(self.tr("Interpolate — %1").replace("%1", generator.name))
        self.engine = engine
        self.generator = generator
        self.reuse = reuse
        self.run: Any = None
        self.files = TaskGroup("library", owner=self)  # a file written, one after the other
        self.setup = InterpolateSetup(generator, base, self)
        self.view = StripView(generator, self)
        self.note = QLabel(self)
        self.note.setObjectName("interpolate_message")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.setup)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.note)
        self.setup.run_requested.connect(self.start)
        self.view.save_button.clicked.connect(self.choose_file_to_save)
        self.view.run_finished.connect(self._on_finished)
        self.view.reuse_requested.connect(self._reuse_frame)
        self.view.message.connect(self.say)
        self.resize(960, 640)

    # -- the start follows the page -----------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt)
        """Shown (again): the start is the page's as it is now."""
        self.setup.refresh_start()
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt)
        """Back in front (after editing the page): the start is read again."""
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow() and self.isVisible():
            self.setup.refresh_start()
        super().changeEvent(event)

    # -- running -------------------------------------------------------------------------------------------------

    @Slot(object)
    def start(self, spec: InterpolationSpec) -> Any:
        """Run ``spec`` now. A plan the generator refuses is said in the setup and nothing runs. Returns the
        :class:`~desktop.explore.interpolate_run.InterpolationRun`, or None."""
        from desktop.explore.interpolate_run import InterpolationRun

        try:
            run = InterpolationRun(self.engine, spec, self.generator, self)
        except StudioloError as exc:
            self.say(str(exc), True)
            return None
        previous, self.run = self.run, run
        self.view.show_run(run)
        if previous is not None and previous.is_finished:
            previous.deleteLater()
        self.setup.set_running(not run.is_finished)
        self.say(self.tr("Running %1 frames; each is saved to the gallery.").replace("%1", str(run.total)))
        self.run_started.emit(run)
        return run

    @Slot()
    def _on_finished(self) -> None:
        self.setup.set_running(False)
        self.say(self.tr("Every frame is in the gallery; Save… keeps them as one animation or strip."))
        self.run_finished.emit()

    def _reuse_frame(self, cell: GridCell) -> None:
        self.reuse(from_json(self.generator.Params, cell.params), seed=cell.seed, model=cell.model)
        owner = self.parentWidget()
        if owner is not None:
            owner.window().activateWindow()
        self.say(self.tr("The page now holds frame %1's parameters and seed.").replace("%1",
                                                                                        str(cell.index[0] + 1)))

    # -- saving --------------------------------------------------------------------------------------------------

    @Slot()
    def choose_file_to_save(self) -> None:
        names = {".webp": self.tr("Animated WebP (*.webp)"), ".gif": self.tr("Animated GIF (*.gif)"),
                 ".png": self.tr("Strip PNG, frames side by side (*.png)")}
        dialog = QFileDialog(self, self.tr("Save the frames"))
        dialog.setObjectName("interpolate_save_dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters([names[s] for s in FORMATS])
        dialog.setDefaultSuffix(FORMATS[0].lstrip("."))
        dialog.selectFile(f"interpolation-{self.generator.id}{FORMATS[0]}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda name: self.save(Path(name)))
        dialog.open()

    def save(self, path: Path) -> bool:
        """Write the finished frames to ``path`` (its suffix says how: .webp, .gif or .png; .webp when missing) on
        a task; ``strip_saved`` or an error follows. False (nothing written) when no run has finished or the suffix
        does not fit."""
        run = self.run
        if run is None or not run.is_finished:
            self.say(self.tr("Save the frames once they are all made (or cancelled)."), True)
            return False
        if self.generator.kind != "image":
            self.say(self.tr("Only image frames are saved as one file; each frame is in the gallery."), True)
            return False
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(FORMATS[0])
        if path.suffix.lower() not in FORMATS:
            self.say(self.tr("The frames are saved as %1, not %2.").replace("%1", ", ".join(FORMATS))
                     .replace("%2", path.name), True)
            return False
        work = partial(write_strip, path, self.generator.id, list(run.cells), dict(run.results), dict(run.saved))
        self.files.run(work, on_done=self._on_saved, on_failed=self._on_save_failed)
        self.say(self.tr("Saving the frames…"))
        return True

    def _on_saved(self, path: Path) -> None:
        self.say(self.tr("Frames saved to %1.").replace("%1", str(path)))
        self.strip_saved.emit(str(path))

    def _on_save_failed(self, exc: BaseException) -> None:
        self.say(self.tr("Could not save the frames: %1").replace("%1", str(exc)), True)

    # -- messages and life ----------------------------------------------------------------------------------------

    @Slot(str, bool)
    def say(self, text: str, error: bool = False) -> None:
        mark_error(self.note, error)
        self.note.setText(text)
        self.message.emit(text, error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        """Closing hides the window: frames still running go on (each is a job, saved to the gallery)."""
        self.view.play_button.setChecked(False)
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop playing and drop the drawings and file work not started (the page or window is going away)."""
        self.view.shutdown()
        self.files.shutdown(timeout_ms=2000)
