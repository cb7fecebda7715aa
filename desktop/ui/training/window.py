"""A generator's Training window (issue 22): pick what to train and on which files, start it, watch it (steps, loss
curve, estimate, samples), pause, resume or cancel it, and use the trained model in the next generation.

The run's folder (a run of the same name that stopped part-way is offered Resume / Start over) is read on a task
(:mod:`desktop.ui.tasks`); the training itself is an engine job (``Engine.submit_training``), followed through the
engine's job signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.api import StudioloError, schema
from desktop.api.params_form import INVALID_COLOUR
from desktop.ui.tasks import TaskGroup, TaskState
from desktop.ui.training.form import TrainingSetup
from desktop.ui.training.progress import TrainingProgress

__all__ = ["TrainingWindow", "params_using", "stopped_step"]

CHECK_DELAY_MS = 300
"""The pause after the last keystroke in the name before its run folder is looked at."""
_STYLE = f'QLabel[role="error"] {{ color: {INVALID_COLOUR}; }}'


def stopped_step(generator_id: str, name: str, _state: TaskState | None = None) -> int | None:
    """The step a run named ``name`` stopped at (its latest checkpoint), or None when there is none (a task)."""
    from desktop.engine.training import latest_checkpoint, run_dir

    if not name:
        return None
    latest = latest_checkpoint(run_dir(generator_id, name))
    return latest[0] if latest is not None else None


def run_log(generator_id: str, name: str, _state: TaskState | None = None) -> list[tuple[int, float]]:
    """``(step, loss)`` of each step in the run's log (a task): the whole curve, where the progress signals
    (which the engine thins out) give only some of its points."""
    from desktop.engine.training import read_log, run_dir

    points = []
    for entry in read_log(run_dir(generator_id, name)):
        try:
            points.append((int(entry["step"]), float(entry["loss"])))
        except (KeyError, TypeError, ValueError):
            continue
    return points


def params_using(params_type: type, values: dict[str, Any], ref: str) -> dict[str, Any] | None:
    """``values`` (a generator's params, as JSON) changed to use the trained model ``ref``: added to a ``loras``
    list as ``REF:1.0``, or set as the ``adapter``; None when the params have no such field."""
    fields = {f.name: f for f in schema(params_type)}
    loras = fields.get("loras")
    if loras is not None and loras.kind == "list":
        kept = [entry for entry in values.get("loras") or [] if str(entry).rpartition(":")[0] != ref
                and str(entry) != ref]
        return {**values, "loras": [*kept, f"{ref}:1.0"]}
    adapter = fields.get("adapter")
    if adapter is not None and adapter.kind in ("str", "path"):
        return {**values, "adapter": ref}
    return None


class TrainingWindow(QWidget):
    """The Training window of one generator page. ``model_chooser``: a chooser of the generator's models (the
    base model), showing the page's; ``use_model(ref)``: put the trained model into the page's params (True when
    done), or None when the page cannot.

    Signals: ``checked()`` (the run folder of the name was looked at), ``log_loaded()`` (the loss curve is the
    whole log of the run, read when it stopped), ``training_started(job_id)``,
    ``training_ended(state)`` ("done", "paused", "cancelled" or "failed"), ``message(text, error)``."""

    checked = Signal()
    log_loaded = Signal()
    training_started = Signal(str)
    training_ended = Signal(str)
    message = Signal(str, bool)

    def __init__(self, engine: Any, generator: Any, model_chooser: QWidget | None = None,
                 use_model: Callable[[str], bool] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("training_window")
        self.setWindowTitle(self.tr("Train — %1").replace("%1", generator.name))
        self.setStyleSheet(_STYLE)
        self.engine = engine
        self.generator = generator
        self.use_model = use_model
        self.job_id: str | None = None  # the training job under way (or the last one)
        self.run_name: str | None = None  # the name of the run the window last started, paused or finished
        self.result: str | None = None  # the trained model's reference, once done
        self.stopped: int | None = None  # the step the run of the name stopped at, once looked at
        self._checking = 0  # the number of the latest look at the run folder
        self._then: Callable[[], None] | None = None  # what to do once the look in progress is back
        self._paused = False  # the window's last run ended on a pause
        self.tasks = TaskGroup("scans", owner=self)

        self.setup = TrainingSetup(generator, model_chooser, self)
        self.setup.name_changed.connect(lambda _name: self.schedule_check())
        self.check_timer = QTimer(self)
        self.check_timer.setSingleShot(True)
        self.check_timer.setInterval(CHECK_DELAY_MS)
        self.check_timer.timeout.connect(lambda: self.check_run())
        self.progress = TrainingProgress(self)

        self.start_button = self._button("training_start", self.tr("Start"), self.start)
        self.pause_button = self._button("training_pause", self.tr("Pause"), self.pause)
        self.pause_button.setToolTip(self.tr("Write a checkpoint after the current step and stop: Resume continues "
                                             "from there"))
        self.resume_button = self._button("training_resume", self.tr("Resume"), self.resume)
        self.restart_button = self._button("training_restart", self.tr("Start over"), self.restart)
        self.restart_button.setToolTip(self.tr("Discard the stopped run's checkpoints and train from the start"))
        self.cancel_button = self._button("training_cancel", self.tr("Cancel"), self.cancel)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.resume_button, self.restart_button,
                       self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.status = QLabel(self)  # what the run is doing, or the stopped run's question
        self.status.setObjectName("training_status")
        self.status.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("training_error")
        self.error_label.setProperty("role", "error")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.result_box = QWidget(self)  # "Trained NAME — use it now"
        self.result_box.setObjectName("training_result")
        self.result_label = QLabel(self.result_box)
        self.result_label.setObjectName("training_result_label")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = self._button("training_copy", self.tr("Copy reference"), self.copy_result)
        self.use_button = self._button("training_use", self.tr("Use it now"), self.use_result)
        self.use_button.setToolTip(self.tr("Put the trained model into the generator page's parameters"))
        result_row = QHBoxLayout(self.result_box)
        result_row.setContentsMargins(0, 0, 0, 0)
        result_row.addWidget(self.result_label, 1)
        result_row.addWidget(self.copy_button)
        result_row.addWidget(self.use_button)
        self.result_box.hide()

        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.progress, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.setup)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.result_box)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(900, 600)

        for event in ("queued", "progressed", "previewed", "warned", "finished", "cancelled", "failed"):
            getattr(engine, f"job_{event}").connect(getattr(self, f"_on_{event}"))
        self._update_buttons()

    def _button(self, name: str, text: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    # -- the state shown ---------------------------------------------------------------------------------------

    def running(self) -> bool:
        """Whether the window's training job is queued or running."""
        if self.job_id is None:
            return False
        try:
            return not self.engine.job(self.job_id).state.finished
        except KeyError:
            return False

    def _update_buttons(self) -> None:
        running = self.running()
        stopped = self.stopped is not None and not running
        self.setup.setEnabled(not running)
        self.start_button.setEnabled(not running and not stopped and bool(self.setup.name()))
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.resume_button.setVisible(stopped)
        self.restart_button.setVisible(stopped)
        self.resume_button.setEnabled(stopped)
        self.restart_button.setEnabled(stopped)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))
        if text:
            self.message.emit(text, True)

    def set_data(self, paths: Iterable[str | Path], kind: str | None = None) -> None:
        """Train on these files (the gallery's "Train a LoRA on these…"); ``kind``: the training kind to show."""
        if kind is not None:
            self.setup.set_kind(kind)
        self.setup.data.set_paths(paths)

    # -- the run's folder ---------------------------------------------------------------------------------------

    def schedule_check(self) -> None:
        self.stopped = None
        self._paused = False
        self.status.clear()
        self._update_buttons()
        self.check_timer.start()

    def check_run(self, then: Callable[[], None] | None = None) -> None:
        """Look (on a task) whether a run of the name stopped part-way; offer Resume / Start over if so, else
        ``then()``."""
        self.check_timer.stop()
        self._checking += 1
        number, name = self._checking, self.setup.name()
        self._then = then
        self.start_button.setEnabled(False)

        def done(step: int | None) -> None:
            if number != self._checking:
                return
            self.stopped = step
            then, self._then = self._then, None
            if step is not None and self._paused:
                self.status.setText(self.tr("Paused after step %1: Resume continues from its checkpoint.")
                                    .replace("%1", str(step)))
            elif step is not None:
                self.status.setText(self.tr("A run named %1 stopped at step %2: resume it, or start it over (its "
                                            "checkpoints are then discarded).").replace("%1", name)
                                    .replace("%2", str(step)))
            self._update_buttons()
            self.checked.emit()
            if step is None and then is not None:
                then()

        def failed(exc: BaseException) -> None:
            if number == self._checking:
                self._then = None
                self.show_error(str(exc))
                self._update_buttons()
                self.checked.emit()

        generator_id = self.generator.id
        self.tasks.run(lambda state: stopped_step(generator_id, name, state), on_done=done, on_failed=failed)

    def load_log(self) -> None:
        """Show the whole loss curve of the window's run (its log, read on a task)."""
        if not self.run_name:
            return
        generator_id, name = self.generator.id, self.run_name

        def done(points: list[tuple[int, float]]) -> None:
            if name == self.run_name:
                self.progress.curve.set_points(points)
            self.log_loaded.emit()

        self.tasks.run(lambda state: run_log(generator_id, name, state), on_done=done,
                       on_failed=lambda _exc: self.log_loaded.emit())

    # -- the buttons -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a new run (after looking whether one of its name stopped part-way: that is asked about)."""
        self.check_run(then=lambda: self._submit(resume=False, restart=False))

    def resume(self) -> None:
        """Continue the stopped run of the name from its latest checkpoint (its own params, model and seed)."""
        self._submit(resume=True, restart=False)

    def restart(self) -> None:
        """Discard the stopped run of the name and start it over with what the window shows."""
        self._submit(resume=False, restart=True)

    def pause(self) -> None:
        if self.job_id is not None and self.engine.pause(self.job_id):
            self.status.setText(self.tr("Pausing: a checkpoint after this step, then it stops…"))

    def cancel(self) -> None:
        if self.job_id is not None:
            self.engine.cancel(self.job_id)
            self.status.setText(self.tr("Cancelling…"))

    def _submit(self, *, resume: bool, restart: bool) -> str | None:
        self.show_error("")
        self.result_box.hide()
        name = self.setup.name()
        spec = self.setup.spec()
        try:
            params = None if resume else self.setup.params()
            model = None if resume else self.setup.model()
            job = self.engine.submit_training(self.generator.id, spec.id, params, name=name, model=model,
                                              resume=resume, restart=restart)
        except StudioloError as exc:
            self.show_error(str(exc))
            self._update_buttons()
            return None
        if not resume:
            self.progress.reset()
        self.job_id, self.run_name, self.result, self.stopped, self._paused = job.id, name, None, None, False
        self.progress.queued()
        self.status.setText(self.tr("Resuming %1…") if resume else self.tr("Training %1…"))
        self.status.setText(self.status.text().replace("%1", name))
        self._update_buttons()
        self.training_started.emit(job.id)
        return job.id

    # -- the result ----------------------------------------------------------------------------------------------

    def copy_result(self) -> None:
        if self.result:
            QGuiApplication.clipboard().setText(self.result)
            self.message.emit(self.tr("Copied %1.").replace("%1", self.result), False)

    def use_result(self) -> bool:
        if not self.result or self.use_model is None:
            return False
        used = self.use_model(self.result)
        if used:
            self.message.emit(self.tr("%1 is in the page's parameters: the next generation uses it.")
                              .replace("%1", self.result), False)
        return used

    # -- the engine's signals (this window's job only) ---------------------------------------------------------

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        if job_id == self.job_id:
            self._update_buttons()

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if job_id == self.job_id:
            self.progress.step(done, total, message)
            self.status.setText(self.tr("Training %1: step %2 of %3.").replace("%1", self.run_name or "")
                                .replace("%2", str(done)).replace("%3", str(total)))

    @Slot(str, object)
    def _on_previewed(self, job_id: str, sample: object) -> None:
        if job_id == self.job_id:
            self.progress.show_sample(sample)

    @Slot(str, str)
    def _on_warned(self, job_id: str, message: str) -> None:
        if job_id == self.job_id:
            self.progress.note(message)

    @Slot(str, object)
    def _on_finished(self, job_id: str, _outputs: object) -> None:
        if job_id != self.job_id:
            return
        try:
            self.result = self.engine.job(job_id).training.result
        except KeyError:
            self.result = None
        self.progress.stopped()
        ref = self.result or self.run_name or ""
        self.result_label.setText(self.tr("Trained %1 — use it now: %2").replace("%1", self.run_name or "")
                                  .replace("%2", ref))
        self.use_button.setVisible(self.use_model is not None)
        self.result_box.show()
        self.status.setText(self.tr("Done."))
        self._update_buttons()
        self.load_log()
        self.training_ended.emit("done")

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, _partial: object) -> None:
        if job_id != self.job_id:
            return
        self.progress.stopped()
        try:
            paused = bool(self.engine.job(job_id).training.paused)
        except KeyError:
            paused = False
        self._paused = paused
        self.status.setText(self.tr("Paused.") if paused else self.tr("Cancelled."))
        self._update_buttons()
        self.check_run()  # the checkpoint it stopped at is offered: Resume / Start over
        self.load_log()
        self.training_ended.emit("paused" if paused else "cancelled")

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        if job_id != self.job_id:
            return
        self.progress.stopped()
        self.status.setText(self.tr("The training failed."))
        self.show_error(message)
        self._update_buttons()
        self.training_ended.emit("failed")

    # -- closing ---------------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """The page or window is going away: a training under way is paused (resumable), the folder look
        dropped."""
        if self.running() and self.job_id is not None:
            self.engine.pause(self.job_id)
        self.check_timer.stop()
        self.tasks.shutdown(timeout_ms=2000)
