"""The welcome page of the first run: what Studiolo is, the recommended downloads with their sizes, and a way to
try everything at once with the demo models (built offline in seconds).

All the work (building demos, downloading) runs as one task (:func:`set_up_models`) on the ``first-run`` pool of
:mod:`desktop.ui.tasks`; it reports back on the GUI thread. The demo models are built first, so the app works right
away even while downloads go on: once they are built the page offers to continue (``finished``) and lets the
downloads run in the background (``activity`` and ``downloads_finished`` report on them). ``finished`` is emitted
once: the user is done with the page (demos built, downloads done or left running, or skipped); ``first_run_done``
is then saved in the settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from PySide6.QtCore import QCoreApplication, Qt, Signal, Slot
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.api import RecommendedModel
from desktop.models import first_run
from desktop.models.first_run import Offer, offered_downloads, size_text, total_bytes
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.tasks import Task, TaskGroup, TaskState
from desktop.ui.theme import mark_error

log = logging.getLogger(__name__)

PROGRESS_STEPS = 1000  # the progress bar's range while downloading (bytes do not fit a QProgressBar's int)


@dataclass
class FirstRunResult:
    """What a run of :func:`set_up_models` left: failures as messages for a person, and whether it was cancelled."""

    demo_failures: list[str] = field(default_factory=list)
    download_failures: list[str] = field(default_factory=list)
    cancelled: bool = False

    @property
    def failures(self) -> list[str]:
        return self.demo_failures + self.download_failures


def set_up_models(plugins: PluginManager, models: Sequence[RecommendedModel], state: TaskState, *,
                  token: str | None = None, allow_pickle: bool = False,
                  builder: first_run.DemoBuilderFn | None = None) -> FirstRunResult:
    """Build every demo model, then download ``models`` one after another; runs on a ``first-run`` task and stops at
    the next check of ``state.cancel_event``. Sends ``progress("demo", done, total, generator name)``,
    ``report(demo failures)`` once the demos are built (each by ``builder``, see
    :func:`~desktop.models.first_run.build_all_demos`), and ``progress("download", model index, models, bytes
    done, bytes total or None, message)``."""
    result = FirstRunResult()
    cancel = state.cancel_event
    try:
        result.demo_failures = first_run.build_all_demos(
            plugins, lambda done, total, name: state.progress("demo", done, total, name), cancel, builder=builder)
        state.report(list(result.demo_failures))
        if models and not cancel.is_set():
            result.download_failures = first_run.download_models(
                list(models), lambda *values: state.progress("download", *values), cancel, token=token,
                allow_pickle=allow_pickle)
    except Exception as exc:  # both functions report failures; this is a last resort
        log.exception("the first-run set-up failed")
        result.download_failures.append(
            f"Setting up the models failed ({type(exc).__name__}: {exc}).\nThe log has the details.")
    result.cancelled = cancel.is_set()
    return result


class WelcomePage(QWidget):
    """The first-run page. ``finished`` is emitted once, when the user is done with it (see the module doc).

    ``activity(text)`` describes the running work (for a status bar while downloads go on in the background);
    ``downloads_finished(failures)`` is emitted when a run that downloaded ends, not cancelled (failures: messages
    for a person, empty when every model arrived).
    """

    finished = Signal()
    activity = Signal(str)
    downloads_finished = Signal(object)

    def __init__(self, plugins: PluginManager, settings: Settings, parent: QWidget | None = None, *,
                 builder: first_run.DemoBuilderFn | None = None) -> None:
        super().__init__(parent)
        self.plugins = plugins
        self.builder = builder  # builds a generator's demo (the engine's: in its worker process)
        self.settings = settings
        self.offers = offered_downloads(plugins)
        self.offline = first_run_offline()
        self.checkboxes: list[tuple[RecommendedModel, QCheckBox]] = []
        self.task: Task | None = None
        self.working_on: list[RecommendedModel] = []  # the models the running task downloads
        self._tasks = TaskGroup("first-run", owner=self)
        self.cancel_event = threading.Event()
        self.is_finished = False
        self.setObjectName("welcome_page")
        self.setAccessibleName(self.tr("Welcome"))
        self._build()
        self._update_selection()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        content = QWidget(self)
        content.setObjectName("welcome_content")
        column = QVBoxLayout(content)
        column.setContentsMargins(32, 24, 32, 24)
        column.setSpacing(12)

        heading = QLabel(self.tr("Welcome to Studiolo"), content)
        heading.setObjectName("welcome_heading")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        heading.setFont(font)
        column.addWidget(heading)

        needing, without = first_run.generators_by_need(self.plugins)
        intro_text = self.tr("Studiolo makes text, pictures, speech and music on this computer, with AI models that "
                             "run offline once they are here. This computer has none yet.")
        if needing:
            intro_text += "<br><br>" + self.tr("Your generators that need a model: %1.").replace(
                "%1", _escape(", ".join(g.name for g in needing)))
        if without:
            intro_text += "<br>" + self.tr("Ready without a model: %1.").replace(
                "%1", _escape(", ".join(g.name for g in without)))
        intro = QLabel(intro_text, content)
        intro.setObjectName("welcome_intro")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        column.addWidget(intro)

        self.demo_button = QPushButton(self.tr("Try it now with demo models (offline, a few seconds)"), content)
        self.demo_button.setObjectName("demo_button")
        self.demo_button.setAccessibleName(self.tr("Try it now with demo models"))
        self.demo_button.setToolTip(self.tr(
            "Builds a tiny model for every generator, without the internet. Demo models show how everything "
            "works; their results are noise, not art. Download real models any time later."))
        self.demo_button.setDefault(True)
        self.demo_button.setMinimumHeight(48)
        bold = QFont(self.demo_button.font())
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.2)
        self.demo_button.setFont(bold)
        self.demo_button.clicked.connect(self.start_demos)
        self.demo_button.setVisible(any(g.has_demo_model for g in self.plugins.generators.values()))
        column.addWidget(self.demo_button)

        column.addLayout(self._build_progress(content))

        self.errors_label = QLabel(content)
        self.errors_label.setObjectName("welcome_errors")
        self.errors_label.setAccessibleName(self.tr("Problems"))
        self.errors_label.setWordWrap(True)
        self.errors_label.setTextFormat(Qt.TextFormat.PlainText)
        self.errors_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mark_error(self.errors_label)
        self.errors_label.hide()
        column.addWidget(self.errors_label)

        self.continue_button = QPushButton(content)
        self.continue_button.setObjectName("continue_button")
        self.continue_button.clicked.connect(self.finish)
        self.continue_button.hide()
        column.addWidget(self.continue_button)

        if self.offers:
            column.addWidget(self._build_downloads(content))

        self.skip_button = QPushButton(self.tr("Skip: I will choose models later"), content)
        self.skip_button.setObjectName("skip_button")
        self.skip_button.setAccessibleName(self.tr("Skip the welcome page"))
        self.skip_button.setToolTip(self.tr("Go straight to the generators. A demo model is built the first time a "
                                            "job uses it."))
        self.skip_button.setFlat(True)
        self.skip_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.skip_button.setStyleSheet("QPushButton { text-decoration: underline; border: none; }")
        self.skip_button.clicked.connect(self.skip)
        skip_row = QHBoxLayout()
        skip_row.addStretch(1)
        skip_row.addWidget(self.skip_button)
        column.addLayout(skip_row)
        column.addStretch(1)

        scroll = QScrollArea(self)
        scroll.setObjectName("welcome_scroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # every text wraps
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    def _build_progress(self, parent: QWidget) -> QHBoxLayout:
        self.progress = QProgressBar(parent)
        self.progress.setObjectName("welcome_progress")
        self.progress.setAccessibleName(self.tr("Progress"))
        self.progress.hide()
        self.status_label = QLabel(parent)
        self.status_label.setObjectName("welcome_status")
        self.status_label.setWordWrap(True)
        self.status_label.hide()  # shown once there is something to say
        self.cancel_button = QPushButton(self.tr("Cancel"), parent)
        self.cancel_button.setObjectName("cancel_button")
        self.cancel_button.setAccessibleName(self.tr("Cancel setting up the models"))
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        row = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.progress)
        left.addWidget(self.status_label)
        row.addLayout(left, 1)
        row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        return row

    def _build_downloads(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(self.tr("Or download real models"), parent)
        box.setObjectName("welcome_downloads")
        column = QVBoxLayout(box)
        note = QLabel(self.tr("They come from Hugging Face and stay on this computer. Pick the ones you want; "
                              "the demo models are built as well, so you can start while they download."), box)
        note.setWordWrap(True)
        column.addWidget(note)
        for offer in self.offers:
            column.addWidget(self._offer_box(offer, box))
        self.total_label = QLabel(box)
        self.total_label.setObjectName("download_total")
        self.download_button = QPushButton(self.tr("Download selected"), box)
        self.download_button.setObjectName("download_button")
        self.download_button.setAccessibleName(self.tr("Download the selected models"))
        self.download_button.clicked.connect(self.start_downloads)
        row = QHBoxLayout()
        row.addWidget(self.total_label, 1)
        row.addWidget(self.download_button)
        column.addLayout(row)
        self.offline_label = QLabel(self.tr(
            "No network: Studiolo is set to work offline (HF_HUB_OFFLINE), so downloads are off. The demo models "
            "work without it."), box)
        self.offline_label.setObjectName("offline_note")
        self.offline_label.setWordWrap(True)
        self.offline_label.setVisible(self.offline)
        column.addWidget(self.offline_label)
        return box

    def _offer_box(self, offer: Offer, parent: QWidget) -> QGroupBox:
        box = QGroupBox(offer.generator_name, parent)
        box.setObjectName(f"offer_{offer.generator_id}")
        column = QVBoxLayout(box)
        for model in offer.models:
            check = QCheckBox(self.tr("%1 — %2").replace("%1", model.name).replace("%2", self._size(model)), box)
            check.setObjectName(f"offer:{model.ref}")
            check.setAccessibleName(self.tr("Download %1").replace("%1", model.name))
            check.setToolTip(model.ref)
            check.toggled.connect(self._update_selection)
            column.addWidget(check)
            column.addWidget(self._details(model, box))
            self.checkboxes.append((model, check))
        return box

    def _size(self, model: RecommendedModel) -> str:
        return self.tr("size unknown") if model.size_bytes is None else size_text(model.size_bytes)

    def _details(self, model: RecommendedModel, parent: QWidget) -> QLabel:
        """The description, licence, repo and how fresh the size is, in small muted text under the checkbox."""
        details = [model.description] if model.description else []
        if model.license:
            details.append(self.tr("Licence: %1").replace("%1", model.license))
        details.append(model.ref)
        if model.size_checked:
            details.append(self.tr("size as of %1").replace("%1", model.size_checked))
        label = QLabel(" · ".join(details), parent)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setIndent(24)
        label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        font = label.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        label.setFont(font)
        return label

    # -- selection --------------------------------------------------------------------------------------------

    def checkbox(self, ref: str) -> QCheckBox:
        """The first checkbox of the recommended model ``ref``."""
        return next(check for model, check in self.checkboxes if model.ref == ref)

    def selected_models(self) -> list[RecommendedModel]:
        """The checked models, each repo once, in the page's order."""
        chosen: dict[str, RecommendedModel] = {}
        for model, check in self.checkboxes:
            if check.isChecked():
                chosen.setdefault(model.ref, model)
        return list(chosen.values())

    @Slot()
    def _update_selection(self) -> None:
        if not self.offers:
            return
        models = self.selected_models()
        if not models:
            self.total_label.setText(self.tr("Nothing selected."))
        else:
            unknown = any(m.size_bytes is None for m in models)
            size = size_text(total_bytes(models))
            self.total_label.setText(self.tr("Selected: %1 model(s), %2 to download.").replace(
                "%1", str(len(models))).replace("%2", self.tr("at least %1").replace("%1", size) if unknown else size))
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.demo_button.setEnabled(not busy)
        self.skip_button.setEnabled(not busy)
        for _model, check in self.checkboxes:
            check.setEnabled(not busy)
        if not self.offers:
            return
        self.download_button.setEnabled(not busy and not self.offline and bool(self.selected_models()))
        if self.offline:
            self.download_button.setToolTip(self.tr(
                "No network: Studiolo is set to work offline (HF_HUB_OFFLINE). Use the demo models now, or "
                "unset HF_HUB_OFFLINE and start Studiolo again to download."))
        elif not self.selected_models():
            self.download_button.setToolTip(self.tr("Tick the models to download first."))
        else:
            self.download_button.setToolTip(self.tr("Download the ticked models one after another; the demo models "
                                                    "are built first, so you can start at once."))

    # -- running -----------------------------------------------------------------------------------------------

    def is_busy(self) -> bool:
        """Whether demos are being built or models downloaded."""
        return self.task is not None

    @Slot()
    def start_demos(self) -> None:
        """Build every generator's demo model on a worker thread, then emit ``finished``."""
        self._start([])

    @Slot()
    def start_downloads(self) -> None:
        """Build the demos, then download the ticked models, on a worker thread."""
        models = self.selected_models()
        if models and not self.offline:
            self._start(models)

    def _start(self, models: list[RecommendedModel]) -> None:
        if self.is_busy():
            return
        self.errors_label.hide()
        self.continue_button.hide()
        self.working_on = list(models)
        self.task = self._tasks.run(
            partial(set_up_models, self.plugins, self.working_on, token=self.settings.hf_token,
                    allow_pickle=self.settings.allow_pickle, builder=self.builder),
            on_progress=self._on_progress, on_report=self._on_demos_built, on_done=self._on_done, name="first-run")
        assert self.task is not None  # the page's group is never shut down
        self.cancel_event = self.task.state.cancel_event
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._set_status(self.tr("Getting ready…"))
        self._update_buttons()

    @Slot()
    def cancel(self) -> None:
        """Stop after the demo being built (or at once, for a download). What is done is kept."""
        if self.is_busy():
            self.cancel_event.set()
            self.cancel_button.setEnabled(False)
            self._set_status(self.tr("Cancelling…"))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.show()
        self.activity.emit(text)

    def _on_progress(self, kind: str, *values: object) -> None:
        if kind == "demo":
            self._on_demo_progress(*values)  # type: ignore[arg-type]
        else:
            self._on_download_progress(*values)  # type: ignore[arg-type]

    def _on_demo_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if name:
            self._set_status(self.tr("Building the demo model of %1 (%2 of %3)…").replace("%1", name).replace(
                "%2", str(done + 1)).replace("%3", str(total)))
        else:
            self._set_status(self.tr("Demo models ready."))

    def _on_demos_built(self, failures: list[str]) -> None:
        if self.task is None or not self.working_on or self.cancel_event.is_set():
            return
        self.continue_button.setText(self.tr("Start using Studiolo (the downloads go on in the background)"))
        self.continue_button.setAccessibleName(self.tr("Start using Studiolo while the models download"))
        self.continue_button.show()

    def _on_download_progress(self, index: int, count: int, done: int, total: int | None, message: str) -> None:
        if total:
            self.progress.setRange(0, PROGRESS_STEPS)
            self.progress.setValue(min(PROGRESS_STEPS, int(PROGRESS_STEPS * done / total)))
            amount = self.tr("%1 of %2").replace("%1", size_text(done)).replace("%2", size_text(total))
        else:
            self.progress.setRange(0, 0)
            amount = size_text(done) if done else ""
        name = self.working_on[index].name if index < len(self.working_on) else ""
        text = self.tr("Downloading %1 (%2 of %3)").replace("%1", name).replace("%2", str(index + 1)).replace(
            "%3", str(count))
        self._set_status(f"{text}: {amount}" if amount else text)
        self.status_label.setToolTip(message)

    def _on_done(self, result: FirstRunResult) -> None:
        models = self.working_on
        self.task = None
        self.progress.hide()
        self.cancel_button.hide()
        self._update_buttons()
        if models and not result.cancelled:
            self.downloads_finished.emit(list(result.download_failures))
        if result.failures:
            self._show_errors(result.failures)
        if result.cancelled:
            self.continue_button.hide()
            self._set_status(self.tr("Cancelled. What was built or downloaded is kept; a download resumes where it "
                                     "stopped."))
            return
        if result.failures:
            self._set_status(self.tr("Done, with problems (below)."))
            self.continue_button.setText(self.tr("Continue to Studiolo"))
            self.continue_button.setAccessibleName(self.tr("Continue to Studiolo"))
            self.continue_button.show()
            return
        self._set_status(self.tr("All set.") if models else self.tr("Demo models ready."))
        self.continue_button.hide()
        self.finish()

    def _show_errors(self, failures: list[str]) -> None:
        self.errors_label.setText(self.tr("Some things did not work:") + "\n\n" + "\n\n".join(failures))
        self.errors_label.show()

    @Slot()
    def skip(self) -> None:
        """Leave the page without building or downloading anything."""
        if not self.is_busy():
            self.finish()

    @Slot()
    def finish(self) -> None:
        """Remember the first run as done and emit ``finished`` (once). Work still running goes on."""
        if self.is_finished:
            return
        self.is_finished = True
        self.continue_button.hide()
        try:
            first_run.mark_done(self.settings)
        except OSError as exc:  # the page is shown again next time: annoying, not harmful
            log.warning("could not save the settings after the first run: %s", exc)
        self.finished.emit()

    @Slot()
    def shutdown(self, timeout_ms: int = 15_000) -> bool:
        """Cancel any running work and wait (at most ``timeout_ms``) for it (at quit). True when nothing runs any
        more. Work still inside one demo build or download step (they end at the next check of the cancel) is kept
        by :mod:`desktop.ui.tasks` until it ends, whatever happens to the page."""
        task = self.task
        if task is None:
            return True
        task.cancel()
        return task.wait(timeout_ms)


def first_run_offline() -> bool:
    """Whether downloads are impossible by the user's choice (``HF_HUB_OFFLINE``)."""
    from desktop.models import hub

    return hub.is_offline()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
