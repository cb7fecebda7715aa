"""One generator's page: model chooser (none for a generator that uses no model) and seed box (the host's), then
the generator's own panel or a form built from its params, with Generate/Cancel, progress and results."""

from __future__ import annotations

import logging
import traceback
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt, Signal, Slot
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api import Generator, ModelSource, ParamError, StudioloError, fit_params, from_json, to_json
from desktop.api.models import DEMO_MODEL
from desktop.api.remote import REMOTE_SCHEME
from desktop.api.wheel_guard import install_wheel_guard
from desktop.engine.jobs import MAX_SEED
from desktop.models.modelless import uses_model
from desktop.ui.output_view import OutputView
from desktop.ui.panel_host import GeneratorHost
from desktop.ui.tasks import TaskGroup, TaskState
from desktop.ui.theme import mark_error

log = logging.getLogger(__name__)


def _list_installed(generator: Generator, allow_pickle: bool,
                    _state: TaskState) -> tuple[list[tuple[str, str]], list[str]] | None:
    """The models ``generator`` can run without a download, as (label, ref), and the problems met listing them (a
    remote generator's servers that could not be asked); None when they cannot be listed. Reads the disk, or asks
    the servers (a ``ModelSource.REMOTE`` generator): runs on a ``scans`` task."""
    from desktop.models.inventory import installed_refs

    try:
        if ModelSource.REMOTE in generator.model_sources:
            listing = generator.remote_models()
            return [(f"{m.model_id} — {m.server}", m.ref) for m in listing.models], list(listing.problems)
        return installed_refs(generator, allow_pickle=allow_pickle), []
    except Exception:  # the chooser keeps what it lists
        log.warning("could not list the installed models of %s", generator.id, exc_info=True)
        return None


class ModelChooser(QComboBox):
    """An editable list of model references: the default, the demo, the recommended ones, the models installed for
    this generator (listed off the GUI thread: :meth:`refresh_installed`); or type a path or id."""

    installed_listed = Signal()

    def __init__(self, generator: Generator, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generator = generator
        self.setEditable(True)
        self.setObjectName("model_chooser")
        self.setAccessibleName(self.tr("Model"))
        self.setToolTip(self.tr("A Hugging Face repo id, a local folder or file, or 'demo'."))
        # long model names must not widen the page (the list shows them whole)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(24)
        self._static: list[tuple[str, str]] = []  # (label, ref): the default, the demo, the recommended models
        if generator.default_model:
            self._static.append((self._label(generator, generator.default_model), generator.default_model))
        if generator.has_demo_model:
            self._static.append((self._label(generator, DEMO_MODEL), DEMO_MODEL))
        self._static += [(f"{model.name} — {model.ref}", model.ref) for model in generator.recommended_models]
        self._installed_refs: set[str] = set()
        self.problems: list[str] = []  # servers a remote generator could not ask, from the last listing
        self._scans = TaskGroup("scans", owner=self)  # a chooser deleted while one runs gets nothing
        self._fill([])

    def _fill(self, installed: list[tuple[str, str]]) -> None:
        """List the static entries (those installed marked so), then the other installed models; the choice (or
        the typed text) is kept."""
        text = self.currentText()
        typed = text if text.strip() and (self.currentIndex() < 0 or self.itemText(self.currentIndex()) != text) \
            else None  # an empty box is no choice: the first entry (the default model) is shown, not a blank
        current = self.itemData(self.currentIndex()) if self.currentIndex() >= 0 else None
        installed_refs = {ref for _label, ref in installed}
        self._installed_refs = installed_refs
        entries, seen = [], set()
        for label, ref in self._static:
            if ref not in seen:
                marked = ref != DEMO_MODEL and ref in installed_refs
                entries.append((self.tr("%1 (installed)").replace("%1", label) if marked else label, ref))
                seen.add(ref)
        entries += [(label, ref) for label, ref in installed if ref not in seen]
        self.blockSignals(True)
        try:
            self.clear()
            for label, ref in entries:
                self.addItem(label, ref)
            index = self.findData(current) if current is not None else -1
            if index >= 0:
                self.setCurrentIndex(index)
            if typed is not None:
                self.setEditText(typed)
        finally:
            self.blockSignals(False)

    def refresh_installed(self, allow_pickle: bool = False) -> None:
        """List the installed models again in the background (after a download, import or removal)."""
        self._scans.run(partial(_list_installed, self.generator, allow_pickle), on_done=self._on_installed)

    def _on_installed(self, listed: tuple[list[tuple[str, str]], list[str]] | None) -> None:
        if listed is not None:
            refs, self.problems = listed
            self._fill(refs)
            if ModelSource.REMOTE in self.generator.model_sources:
                self.setToolTip("\n".join([self.tr("A model on one of your servers (Settings → Servers)."),
                                           *self.problems]))
        self.installed_listed.emit()

    def _label(self, generator: Generator, ref: str) -> str:
        if ref == DEMO_MODEL:
            return self.tr("Demo model (tiny, made offline to try things out; not for real work)")
        return ref

    def ref(self) -> str | None:
        index = self.currentIndex()
        if index >= 0 and self.itemText(index) == self.currentText():
            return self.itemData(index)
        text = self.currentText().strip()
        return text or None

    def is_installed(self, ref: str) -> bool:
        """Whether ``ref`` can run without a download: the demo, a model listed as installed, or a local path."""
        if ref == DEMO_MODEL or ref in self._installed_refs or ref.startswith(REMOTE_SCHEME):  # remote: no download
            return True
        try:
            return Path(ref).expanduser().exists()
        except (OSError, ValueError):
            return False

    def set_ref(self, ref: str | None) -> None:
        if ref is None:
            return
        index = self.findData(ref)
        if index >= 0:
            self.setCurrentIndex(index)
        else:
            self.setEditText(ref)


class SeedBox(QLineEdit):
    """The job's seed: empty means a new random seed each time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("seed_box")
        self.setAccessibleName(self.tr("Seed"))
        self.setPlaceholderText(self.tr("random"))
        self.setToolTip(self.tr("The same seed, model and parameters give the same result. Empty: random."))
        self.setValidator(QRegularExpressionValidator(QRegularExpression(r"-?\d{0,19}"), self))
        self.setMaximumWidth(180)

    def seed(self) -> int | None:
        text = self.text().strip()
        if text in ("", "-", "-1"):
            return None
        value = int(text)
        if not 0 <= value <= MAX_SEED:
            raise ParamError("seed", value, f"must be a whole number from 0 to {MAX_SEED}, or empty for random")
        return value


class ErrorPage(QWidget):
    """Shown in place of a panel that raised while being built."""

    def __init__(self, title: str, details: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel_error")
        layout = QVBoxLayout(self)
        label = QLabel(title, self)
        label.setWordWrap(True)
        label.setStyleSheet("font-weight: bold;")
        mark_error(label)
        self.details = QPlainTextEdit(details, self)
        self.details.setReadOnly(True)
        self.details.setObjectName("panel_error_details")
        layout.addWidget(label)
        layout.addWidget(self.details)


class GeneratorPage(QWidget):
    """A generator's page in the window."""

    message = Signal(str, bool)  # text, is_error

    def __init__(self, engine: Any, generator: Generator, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        install_wheel_guard()  # the wheel changes a field only when it has focus, in custom panels too
        self.generator = generator
        self.engine = engine
        self.current_job: str | None = None
        self.model_chooser: ModelChooser | None = None  # a generator that uses no model has none
        if uses_model(generator):
            self.model_chooser = ModelChooser(generator, self)
            self.model_chooser.refresh_installed(allow_pickle=bool(getattr(engine.settings, "allow_pickle", False)))
        self.seed_box = SeedBox(self)
        self.host = GeneratorHost(engine, generator, model=self.model_ref, seed=self.seed_box.seed,
                                  message=lambda text, error: self.message.emit(text, error), reuse=self.reuse,
                                  parent=self)
        title = QLabel(f"<h2>{generator.name}</h2>" + (f"<p>{generator.description}</p>"
                                                       if generator.description else ""), self)
        title.setWordWrap(True)
        top = QFormLayout()
        if self.model_chooser is not None:
            top.addRow(self.tr("Model"), self.model_chooser)
        self.new_seed_button = QToolButton(self)
        self.new_seed_button.setObjectName("new_seed")
        self.new_seed_button.setText(self.tr("New seed"))
        self.new_seed_button.setToolTip(self.tr("Clear the seed: the next job draws a new random one (a variation)"))
        self.new_seed_button.clicked.connect(self.seed_box.clear)
        self.grid_window = None  # the "Explore grid…" window, made on first use (desktop.ui.explore)
        self.grid_button = QToolButton(self)
        self.grid_button.setObjectName("explore_grid")
        self.grid_button.setText(self.tr("Explore grid…"))
        self.grid_button.setToolTip(self.tr("Run a grid over up to three parameters, seed or model (Ctrl+Shift+G)"))
        self.grid_button.clicked.connect(lambda _checked=False: self.open_grid())
        self.interpolate_window = None  # the "Interpolate…" window, made on first use (desktop.ui.explore)
        self.batch_window = None  # the "Batch…" window, made on first use (desktop.ui.batch)
        self.training_window = None  # the "Train…" window, made on first use (desktop.ui.training)
        self.interpolate_button = QToolButton(self)
        self.interpolate_button.setObjectName("explore_interpolate")
        self.interpolate_button.setText(self.tr("Interpolate…"))
        self.interpolate_button.setToolTip(self.tr("Run the frames from this seed and prompt to another seed and/or "
                                                   "prompt, shown as a strip (Ctrl+Shift+I)"))
        self.interpolate_button.clicked.connect(lambda _checked=False: self.open_interpolation())
        self.interpolate_button.setVisible(bool(getattr(generator, "offers_interpolation", False)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_box)
        seed_row.addWidget(self.new_seed_button)
        seed_row.addStretch(1)
        seed_row.addWidget(self.grid_button)
        seed_row.addWidget(self.interpolate_button)
        top.addRow(self.tr("Seed"), seed_row)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(top)
        self.form = None
        self.custom_panel = self._build_custom_panel()
        if self.custom_panel is not None:
            layout.addWidget(self.custom_panel, 1)
        else:
            layout.addWidget(self._build_auto_panel(), 1)

    # -- building ------------------------------------------------------------------------------------------

    def _build_custom_panel(self) -> QWidget | None:
        try:
            panel = self.generator.create_panel(self.host)
        except Exception:
            details = traceback.format_exc()
            log.error("the panel of %s raised while being built\n%s", self.generator.id, details)
            return ErrorPage(self.tr("The panel of %1 could not be built. This is a bug in its plugin; the "
                                     "details below help its author.").replace("%1", self.generator.name),
                             details, self)
        if panel is not None and not isinstance(panel, QWidget):
            return ErrorPage(self.tr("The panel of %1 is not a widget.").replace("%1", self.generator.name),
                             f"create_panel returned {panel!r}", self)
        return panel

    def _build_auto_panel(self) -> QWidget:
        from desktop.api.widgets import JobFollower, ParamsForm

        self.form = ParamsForm(self.generator.Params, self)
        self.generate_button = QPushButton(self.tr("Generate"), self)
        self.generate_button.setObjectName("generate")
        self.generate_button.setToolTip(self.tr("Generate (Ctrl+Enter)"))
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setToolTip(self.tr("Cancel (Esc)"))
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("progress")
        self.status = QLabel(self)
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.output = OutputView(self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.form, 1)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.output)
        splitter.setStretchFactor(1, 1)
        left.setMinimumWidth(min(480, left.sizeHint().width() + 24))
        splitter.setSizes([460, 700])
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.jobs = JobFollower(self.host, self, all_jobs=True)  # jobs run again from Activity are shown too
        for event in ("queued", "progressed", "previewed", "finished", "failed", "cancelled"):
            getattr(self.jobs, event).connect(getattr(self, f"_on_{event}"))
        self.jobs.running_changed.connect(self.cancel_button.setEnabled)
        self.host.params_applied.connect(self.apply_params)
        return splitter

    # -- actions ---------------------------------------------------------------------------------------------

    @Slot()
    def generate(self) -> str | None:
        """Submit a job with the form's params (Ctrl+Enter). Invalid input is marked and nothing is queued."""
        if self.custom_panel is not None:
            generate = getattr(self.custom_panel, "generate", None)
            return generate() if callable(generate) else None
        try:
            params = self.form.params()
            job_id = self.jobs.submit(params)
        except StudioloError as exc:
            self.status.setText(str(exc))
            mark_error(self.status)
            return None
        return job_id

    @Slot()
    def cancel(self) -> None:
        """Cancel this generator's jobs (Esc)."""
        if self.custom_panel is not None and callable(getattr(self.custom_panel, "cancel", None)):
            self.custom_panel.cancel()
        else:
            self.host.cancel()

    def apply_recipe(self, recipe: Any) -> None:
        """Reuse what made an output (a :class:`~desktop.library.Recipe`): see :meth:`reuse`."""
        self.reuse(recipe.params, seed=recipe.seed, model=recipe.model)

    def reuse(self, params: Any, *, seed: int | None = None, model: str | None = None) -> None:
        """Show what made an output, to make it again: ``params`` in the panel (or the form), ``seed`` in the seed
        box (the same seed; "New seed" beside the box draws another) and ``model`` in the chooser, with a note when
        that model is not installed here. A seed or model of None leaves the page's as it is. What
        :meth:`desktop.api.PanelHost.reuse` does for a panel (a dropped file, a draft), and the gallery's "Reuse"."""
        self.host.apply_params(params)
        notes, missing = [], None
        if seed is not None:
            self.seed_box.setText(str(seed))
            notes.append(self.tr("seed %1").replace("%1", str(seed)))
        if model is not None and self.model_chooser is not None:
            self.model_chooser.set_ref(model)
            notes.append(self.tr("model %1").replace("%1", model))
            if not self.model_chooser.is_installed(model):
                missing = self.tr("This was made with the model %1, which is not installed here: it is downloaded "
                                  "when you generate, or choose another model.").replace("%1", model)
        if notes:
            note = self.tr("Reusing %1: Generate makes the same again; New seed makes a variation.") \
                .replace("%1", ", ".join(notes))
            if self.form is not None:  # the auto-built page has a status line of its own
                mark_error(self.status, False)
                self.status.setText(note)
            elif missing is None:  # a custom panel's page: the window's status bar
                self.message.emit(note, False)
        if missing is not None:
            self.message.emit(missing, True)

    def use_as_input(self, path: Path, mode: str, recipe: Any = None) -> bool:
        """Start from the file at ``path`` in ``mode`` (one of the generator's ``input_modes``): the params of
        ``recipe`` (what made the file, a :class:`~desktop.library.Recipe`; fitted field by field when another
        generator made it) with the input set by ``Generator.params_for_input``, shown in the panel or the form;
        the model that made it chosen when this generator made it. The seed box is left as it is. False (and a
        message) when the generator cannot start from it."""
        generator = self.generator
        values = recipe.params if recipe is not None and isinstance(recipe.params, dict) else {}
        try:
            params = generator.params_for_input(fit_params(generator.Params, values), Path(path), mode)
            to_json(params)  # a Params instance, or the generator's bug is said here
        except (StudioloError, NotImplementedError, TypeError, ValueError) as exc:
            self.message.emit(self.tr("%1 cannot start from %2: %3").replace("%1", generator.name)
                              .replace("%2", Path(path).name).replace("%3", str(exc) or type(exc).__name__), True)
            return False
        self.host.apply_params(params)
        same = recipe is not None and recipe.generator_id == generator.id
        if same and recipe.model is not None and self.model_chooser is not None:
            self.model_chooser.set_ref(recipe.model)
        label = generator.input_modes.get(mode, mode)
        note = self.tr("%1 is the input of %2: Generate starts from it.").replace("%1", Path(path).name) \
            .replace("%2", label)
        if self.form is not None:
            mark_error(self.status, False)
            self.status.setText(note)
        else:
            self.message.emit(note, False)
        return True

    def open_grid(self, spec: Any = None) -> Any:
        """Show this generator's grid window (made on first use); with ``spec`` (a GridSpec), fill it with that grid
        and run it (asking first for a big one). Returns the window."""
        if self.grid_window is None:
            from desktop.ui.explore import GridWindow

            self.grid_window = GridWindow(self.engine, self.generator, self.grid_base, self.reuse, self)
        self.grid_window.show()
        self.grid_window.raise_()
        self.grid_window.activateWindow()
        if spec is not None:
            self.grid_window.run_grid(spec)
        return self.grid_window

    def open_interpolation(self) -> Any:
        """Show this generator's interpolation window (made on first use), starting from the page's params, model
        and seed. Returns the window; None, and a message, for a generator that offers no interpolation."""
        if not getattr(self.generator, "offers_interpolation", False):
            self.message.emit(self.tr("%1 offers no interpolation.").replace("%1", self.generator.name), True)
            return None
        if self.interpolate_window is None:
            from desktop.ui.explore.interpolate_window import InterpolateWindow

            self.interpolate_window = InterpolateWindow(self.engine, self.generator, self.grid_base, self.reuse, self)
        elif self.interpolate_window.isVisible():
            self.interpolate_window.setup.refresh_start()  # (shown afresh, it reads the page itself)
        self.interpolate_window.show()
        self.interpolate_window.raise_()
        self.interpolate_window.activateWindow()
        return self.interpolate_window

    def open_batch(self) -> Any:
        """Show this generator's Batch window (made on first use; its shared params, model and seed are the
        page's). Returns the window."""
        if self.batch_window is None:
            from desktop.ui.batch import BatchWindow

            self.batch_window = BatchWindow(self.engine, self.generator, self.grid_base, self)
        self.batch_window.show()
        self.batch_window.raise_()
        self.batch_window.activateWindow()
        return self.batch_window

    def open_training(self, files: Any = None, kind: str | None = None) -> Any:
        """Show this generator's Training window (made on first use; its base model the page's), with ``files`` to
        train on when given (the gallery's "Train a LoRA on these…"). Returns the window; None, and a message, for a
        generator that trains nothing."""
        if not getattr(self.generator, "training_kinds", ()):
            self.message.emit(self.tr("%1 cannot train.").replace("%1", self.generator.name), True)
            return None
        if self.training_window is None:
            from desktop.ui.training import TrainingWindow, params_using

            chooser = ModelChooser(self.generator, None) if self.model_chooser is not None else None
            if chooser is not None:
                chooser.refresh_installed(allow_pickle=bool(getattr(self.engine.settings, "allow_pickle", False)))
                chooser.set_ref(self.model_ref())
            offers = params_using(self.generator.Params, {}, "x") is not None
            self.training_window = TrainingWindow(self.engine, self.generator, chooser,
                                                  self._use_trained if offers else None, self)
            self.training_window.message.connect(self.message)
        if files is not None:
            self.training_window.set_data(files, kind)
        self.training_window.show()
        self.training_window.raise_()
        self.training_window.activateWindow()
        return self.training_window

    def _use_trained(self, ref: str) -> bool:
        """Put the trained model ``ref`` into the page's params (a LoRA added, the adapter set): the Training
        window's "Use it now"."""
        from desktop.ui.training import params_using

        try:
            values = self.grid_base()[0]
        except StudioloError as exc:
            self.message.emit(str(exc), True)
            return False
        changed = params_using(self.generator.Params, values, ref)
        if changed is None:
            return False
        self.host.apply_params(changed)
        return True

    def grid_base(self) -> tuple[dict[str, Any], str | None, int | None]:
        """What a grid's cells share unless an axis sets it: the params the page shows (the form's, or a custom
        panel's ``params()``; the defaults for a panel that has none), its model and its seed. Raises
        :class:`StudioloError` for a form or seed that is not valid."""
        seed = self.seed_box.seed()
        if self.form is not None:
            params = to_json(self.form.params())
        else:
            read = getattr(self.custom_panel, "params", None)
            try:
                params = to_json(read()) if callable(read) else {}
            except StudioloError:
                raise
            except Exception:  # a panel whose params() wants more than nothing: the defaults
                log.info("the panel of %s gave no params for a grid", self.generator.id, exc_info=True)
                params = {}
        return params, self.model_ref(), seed

    @Slot(object)
    def apply_params(self, params: Any) -> None:
        """Fill the auto-built form with ``params`` (a Params instance or its JSON dict, e.g. from the gallery).
        Values this version cannot take are reported in the page, and the form keeps what it had."""
        if self.form is None:
            return
        try:
            if isinstance(params, dict):
                params = from_json(self.generator.Params, params)
            self.form.set_params(params)
        except ParamError as exc:
            self.message.emit(self.tr("These parameters cannot be reused: %1").replace("%1", str(exc)), True)

    # -- state --------------------------------------------------------------------------------------------

    def model_ref(self) -> str | None:
        """The model chosen on the page; None for the generator's default, and always for one that uses no model."""
        return self.model_chooser.ref() if self.model_chooser is not None else None

    def state(self) -> dict[str, Any]:
        """What the page shows, kept when the window closes: the model, the seed, and the form's values as they
        are (edits not used in a job yet included); a custom panel's own through its ``panel_state()``."""
        state: dict[str, Any] = {"seed": self.seed_box.text()}
        if self.model_chooser is not None:
            state["model"] = self.model_chooser.ref()
        if self.form is not None and self.form.is_valid():
            state["params"] = to_json(self.form.params())
        panel_state = getattr(self.custom_panel, "panel_state", None)
        if callable(panel_state):
            try:
                kept = panel_state()
            except Exception:  # a plugin's bug must not keep the window from closing
                log.warning("the panel of %s could not give its state", self.generator.id, exc_info=True)
            else:
                if isinstance(kept, dict):
                    state["panel"] = kept
        return state

    def restore(self, state: dict[str, Any]) -> None:
        if self.model_chooser is not None:  # a model saved before the generator stopped using one is dropped
            self.model_chooser.set_ref(state.get("model"))
        if isinstance(state.get("seed"), str):
            self.seed_box.setText(state["seed"])
        if self.form is not None and isinstance(state.get("params"), dict):
            try:
                self.form.set_params(from_json(self.generator.Params, state["params"]))
            except ParamError as exc:  # saved by another version: keep the defaults for what no longer fits
                log.info("not restoring the params of %s: %s", self.generator.id, exc)
        restore_panel_state = getattr(self.custom_panel, "restore_panel_state", None)
        if callable(restore_panel_state) and isinstance(state.get("panel"), dict):
            try:
                restore_panel_state(state["panel"])
            except Exception:  # what another version kept: the panel keeps what it shows
                log.warning("the panel of %s could not restore its state", self.generator.id, exc_info=True)

    # -- job signals (this generator's, through self.jobs; the page shows the last one queued) ---------------

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        self.current_job = job_id
        self.output.clear()
        self.progress.setRange(0, 0)
        mark_error(self.status, False)
        self.status.setText(self.tr("Queued…"))

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if job_id != self.current_job:
            return
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.status.setText(message or self.tr("Generating…"))

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        if job_id == self.current_job:
            self.output.add_preview(preview)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: object) -> None:
        if job_id != self.current_job:
            return
        self.output.show_outputs(list(outputs))
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        job = self.engine.job(job_id)
        self.status.setText(self.tr("Done (seed %1).").replace("%1", str(job.seed)))

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        if job_id != self.current_job:
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        mark_error(self.status)
        self.status.setText(message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: object) -> None:
        if job_id != self.current_job:
            return
        if partial:
            self.output.show_outputs(list(partial))
        else:  # its previews (noise, half a sentence) are not a result: the last one, or nothing, is shown
            self.output.drop_previews()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(self.tr("Cancelled.") + (self.tr(" The partial result was kept.") if partial else ""))
