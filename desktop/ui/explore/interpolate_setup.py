"""Setting up an interpolation: the start is the generator page's params, model and seed (read when the window
shows or comes to the front, or with "Use the page's"); the end is a seed, optionally another prompt and any other
field the generator lets change (``name=value`` words, as the CLI's ``--to-param``); and the number of frames.

Every change is checked at once through :func:`~desktop.explore.interpolate.plan_frames` (the host's refusals and
the generator's: another size, a batch, frames out of range), the reason shown under the fields and Run disabled
until it is fixed: nothing bad reaches the engine.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ParamError, StudioloError
from desktop.api.params import from_json, parse_assignments, prompt_field, to_json, validate
from desktop.api.params_form import INVALID_COLOUR
from desktop.explore.interpolate import MAX_FRAMES, MIN_FRAMES, InterpolationSpec, plan_frames
from desktop.ui.explore.grid_setup import Base
from desktop.ui.generator_page import SeedBox
from desktop.ui.theme import mark_error

log = logging.getLogger(__name__)

__all__ = ["InterpolateSetup", "DEFAULT_FRAMES", "END_PARAMS"]

DEFAULT_FRAMES = 8
"""Frames proposed when the window opens (as the CLI's default)."""
END_PARAMS = "end parameters"
"""The field named by an error in the end's ``name=value`` words."""
_STYLE = f'QLineEdit[invalid="true"], QSpinBox[invalid="true"] {{ border: 1px solid {INVALID_COLOUR}; }}'
_SHOWN_PROMPT = 60  # characters of the start's prompt shown


class InterpolateSetup(QWidget):
    """Both ends and the number of frames of an interpolation for ``generator``. ``base()`` gives the page's
    params, model and seed (it may raise a :class:`StudioloError`, shown here). ``run_requested(InterpolationSpec)``
    once Run is pressed with a plan the generator accepts."""

    run_requested = Signal(object)

    def __init__(self, generator: Any, base: Callable[[], Base], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generator = generator
        self.base = base
        self.start: Base | None = None  # the page's, as last read
        self.start_error: StudioloError | None = None
        self.running = False  # an interpolation of this window runs: Run waits for it
        self.prompt = prompt_field(generator.Params)
        self.setStyleSheet(_STYLE)
        self.start_label = QLabel(self)
        self.start_label.setObjectName("interpolate_start")
        self.start_label.setWordWrap(True)
        self.start_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.page_button = QPushButton(self.tr("Use the page's"), self)
        self.page_button.setObjectName("interpolate_use_page")
        self.page_button.setToolTip(self.tr("Read the start (parameters, model and seed) from the generator's page "
                                            "again"))
        self.page_button.clicked.connect(self.refresh_start)
        self.end_seed = SeedBox(self)
        self.end_seed.setObjectName("interpolate_end_seed")
        self.end_seed.setAccessibleName(self.tr("End seed"))
        self.end_seed.setToolTip(self.tr("The last frame's seed (empty: a random one); the frames between blend "
                                         "the two seeds' starting noise"))
        self.end_prompt = QLineEdit(self)
        self.end_prompt.setObjectName("interpolate_end_prompt")
        self.end_prompt.setAccessibleName(self.tr("End prompt"))
        self.end_prompt.setPlaceholderText(self.tr("the start's prompt"))
        self.end_prompt.setToolTip(self.tr("The last frame's prompt (empty: the start's); the frames between blend "
                                           "the two prompts"))
        self.end_params = QLineEdit(self)
        self.end_params.setObjectName("interpolate_end_params")
        self.end_params.setAccessibleName(self.tr("Other end parameters"))
        self.end_params.setPlaceholderText(self.tr("optional: name=value … (quote values with spaces)"))
        self.end_params.setToolTip(self.tr("Other parameters of the last frame, as the command line's --to-param: "
                                           "e.g. negative_prompt=\"blurry\". The generator refuses what cannot "
                                           "change along an interpolation, such as the size."))
        self.frames = QSpinBox(self)
        self.frames.setObjectName("interpolate_frames")
        self.frames.setAccessibleName(self.tr("Frames"))
        self.frames.setRange(MIN_FRAMES, MAX_FRAMES)
        self.frames.setValue(DEFAULT_FRAMES)
        self.frames.setMaximumWidth(120)
        self.frames.setToolTip(self.tr("How many frames, both ends included (%1 to %2); each is a job of its own")
                               .replace("%1", str(MIN_FRAMES)).replace("%2", str(MAX_FRAMES)))
        self.error = QLabel(self)
        self.error.setObjectName("interpolate_error")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("interpolate_count")
        self.count_label.setWordWrap(True)
        self.run_button = QPushButton(self.tr("Run"), self)
        self.run_button.setObjectName("interpolate_run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.request_run)
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_label, 1)
        start_row.addWidget(self.page_button)
        form = QFormLayout()
        form.addRow(self.tr("Start"), start_row)
        form.addRow(self.tr("End seed"), self.end_seed)
        if self.prompt is not None:
            form.addRow(self.tr("End prompt"), self.end_prompt)
        else:
            self.end_prompt.hide()
        form.addRow(self.tr("End, other"), self.end_params)
        form.addRow(self.tr("Frames"), self.frames)
        buttons = QHBoxLayout()
        buttons.addWidget(self.count_label, 1)
        buttons.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.end_seed.textChanged.connect(self.check)
        self.end_prompt.textChanged.connect(self.check)
        self.end_params.textChanged.connect(self.check)
        self.frames.valueChanged.connect(self.check)
        self.error.hide()

    # -- the start ----------------------------------------------------------------------------------------------

    @Slot()
    def refresh_start(self) -> None:
        """Read the start from the generator's page (its form may be invalid: said here) and check again."""
        try:
            self.start, self.start_error = self.base(), None
        except StudioloError as exc:
            self.start, self.start_error = None, exc
        self._show_start()
        self.check()

    def _show_start(self) -> None:
        if self.start is None:
            self.start_label.setText(self.tr("The page's parameters cannot be used: see below."))
            return
        params, model, seed = self.start
        parts = []
        if self.prompt is not None:
            text = str(params.get(self.prompt) or "")
            shown = text if len(text) <= _SHOWN_PROMPT else text[: _SHOWN_PROMPT - 1] + "…"
            parts.append(self.tr("“%1”").replace("%1", shown))
        parts.append(self.tr("seed %1").replace("%1", str(seed)) if seed is not None else self.tr("a random seed"))
        parts.append(self.tr("model %1").replace("%1", model) if model else self.tr("the default model"))
        self.start_label.setText(self.tr("The page's: %1").replace("%1", ", ".join(parts)))

    # -- the plan ----------------------------------------------------------------------------------------------

    def spec(self) -> InterpolationSpec:
        """The interpolation the fields ask for. Raises :class:`StudioloError` naming what is wrong (the page's
        form, an end parameter, the end seed); the generator's own checks are :func:`plan_frames`'s."""
        if self.start is None:
            raise self.start_error or ParamError("start", None, "the page's parameters were not read")
        params, model, seed = self.start
        start = from_json(self.generator.Params, params)
        try:
            words = shlex.split(self.end_params.text())
        except ValueError as exc:
            raise ParamError(END_PARAMS, self.end_params.text(), f"cannot be read ({exc})",
                             hint="Write name=value words; quote a value with spaces in it.") from None
        end = parse_assignments(self.generator.Params, words, base=start)
        if self.prompt is not None and self.end_prompt.text().strip():
            end = validate(replace(end, **{self.prompt: self.end_prompt.text()}), self.generator.Params)
        return InterpolationSpec(self.generator.id, dict(params), dict(to_json(end)), seed, self.end_seed.seed(),
                                 self.frames.value(), model)

    @Slot()
    def check(self) -> bool:
        """Check the plan now: the reason it is refused under the fields (the field concerned marked), or the
        number of jobs. Returns whether Run is allowed."""
        reason, field = None, None
        try:
            cells = plan_frames(self.spec(), self.generator)
        except StudioloError as exc:
            reason, field = str(exc), getattr(exc, "field", None)
        except Exception as exc:  # a third-party generator's bug: said, never raised into Qt
            log.warning("%s could not plan an interpolation", self.generator.id, exc_info=True)
            reason = self.tr("%1 could not plan the frames: %2").replace("%1", self.generator.id) \
                .replace("%2", str(exc) or type(exc).__name__)
        self._mark(field if reason is not None else None)
        self.error.setText(reason or "")
        mark_error(self.error, reason is not None)
        self.error.setVisible(reason is not None)
        if reason is None:
            self.count_label.setText(self.tr("%1 frames: %1 jobs, each saved to the gallery").replace(
                "%1", str(len(cells))))
        else:
            self.count_label.setText(self.tr("Fix the setting above to run."))
        self.run_button.setEnabled(reason is None and not self.running)
        return reason is None

    def _mark(self, field: str | None) -> None:
        """Outline the field an error is about (None: none)."""
        target = None
        if field == "frames":
            target = self.frames
        elif field in ("seed", "variation_seed") and self.end_seed.text().strip():
            target = self.end_seed
        elif field in (self.prompt, "prompt_to") and self.end_prompt.text().strip():
            target = self.end_prompt
        elif field not in (None, "model", "generator", "start") and self.end_params.text().strip():
            target = self.end_params
        for widget in (self.frames, self.end_seed, self.end_prompt, self.end_params):
            invalid = widget is target
            if bool(widget.property("invalid")) != invalid:
                widget.setProperty("invalid", invalid)
                widget.style().unpolish(widget)
                widget.style().polish(widget)

    # -- running -----------------------------------------------------------------------------------------------

    def set_running(self, running: bool) -> None:
        self.running = running
        self.check()

    @Slot()
    def request_run(self) -> None:
        """Run pressed: the interpolation as checked (never while one of this window runs)."""
        if self.running or not self.check():
            if self.running:
                self.error.setText(self.tr("An interpolation is running: wait for it, or cancel it, first."))
                mark_error(self.error, True)
                self.error.show()
            return
        self.run_requested.emit(self.spec())
