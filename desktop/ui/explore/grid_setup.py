"""Setting up a grid: up to three axes (x, y, z), each a parameter of the generator (or seed or model) and its
values, checked as they are typed (:func:`desktop.explore.axes.parse_axis`: the bad value is named under the
field), the number of jobs, and Run — refused past :data:`~desktop.explore.grid.MAX_GRID_JOBS`, asked for first past
:data:`~desktop.explore.grid.CONFIRM_JOBS`.

The grid's other params, model and seed are the generator page's at the moment Run is pressed (``base``), or those
of a saved grid opened with "Open grid…" (:meth:`GridSetup.load_spec`), until "Use the page's" is pressed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ParamError, StudioloError
from desktop.api.params import schema
from desktop.api.params_form import INVALID_COLOUR
from desktop.explore.axes import MODEL_AXIS, SEED_AXIS, Axis, axis_fields, parse_axis
from desktop.explore.grid import CONFIRM_JOBS, MAX_AXES, MAX_GRID_JOBS, GridSpec
from desktop.models.modelless import uses_model
from desktop.ui.theme import mark_error

__all__ = ["GridSetup", "Base"]

Base = tuple[dict[str, Any], "str | None", "int | None"]
"""A grid's base: the params (JSON-ready), the model (None: the generator's default) and the seed (None: random)."""

_NAMES = ("X", "Y", "Z")
_STYLE = f'QLineEdit[invalid="true"] {{ border: 1px solid {INVALID_COLOUR}; }} ' \
         f'QLabel[role="error"] {{ color: {INVALID_COLOUR}; }}'


@dataclass
class _AxisRow:
    """One axis's widgets and what was parsed from them (``axis`` None while empty or invalid)."""

    field: QComboBox
    values: QLineEdit
    error: QLabel
    axis: Axis | None = None


class GridSetup(QWidget):
    """The axes of a grid for ``generator``. ``run_requested(GridSpec)`` once Run is pressed (and a big grid
    confirmed); ``open_requested()`` for "Open grid…". ``base()`` gives the page's params, model and seed (it may
    raise a :class:`StudioloError`, shown here)."""

    run_requested = Signal(object)
    open_requested = Signal()

    def __init__(self, generator: Any, base: Callable[[], Base], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.generator = generator
        self.base = base
        self.loaded_base: Base | None = None  # a saved grid's, while it is used
        self.running = False  # a grid of this window runs: Run waits for it
        self.confirm_box: QMessageBox | None = None
        self.setStyleSheet(_STYLE)
        fields = {f.name: f for f in schema(generator.Params)}
        names = [n for n in axis_fields(generator) if n != MODEL_AXIS or uses_model(generator)]
        self._choices = [(fields[n].label if n in fields else n.capitalize(), n) for n in names]
        self._fields = fields
        grid = QGridLayout()
        grid.setColumnStretch(2, 1)
        self.rows: list[_AxisRow] = []
        for n, name in enumerate(_NAMES[:MAX_AXES]):
            row = self._make_row(n, name)
            grid.addWidget(QLabel(name, self), 2 * n, 0)
            grid.addWidget(row.field, 2 * n, 1)
            grid.addWidget(row.values, 2 * n, 2)
            grid.addWidget(row.error, 2 * n + 1, 1, 1, 2)
            self.rows.append(row)
        self.base_label = QLabel(self)
        self.base_label.setObjectName("grid_base")
        self.base_label.setWordWrap(True)
        self.page_base_button = QPushButton(self.tr("Use the page's"), self)
        self.page_base_button.setObjectName("grid_use_page")
        self.page_base_button.setToolTip(self.tr("Take the other parameters, the model and the seed from the "
                                                 "generator's page again"))
        self.page_base_button.clicked.connect(self.use_page_base)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("grid_count")
        self.count_label.setWordWrap(True)
        self.status = QLabel(self)
        self.status.setObjectName("grid_setup_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton(self.tr("Open grid…"), self)
        self.open_button.setObjectName("grid_open")
        self.open_button.setToolTip(self.tr("Run a saved grid again: open its PNG, Markdown or HTML file"))
        self.open_button.clicked.connect(self.open_requested)
        self.run_button = QPushButton(self.tr("Run grid"), self)
        self.run_button.setObjectName("grid_run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.request_run)
        base_row = QHBoxLayout()
        base_row.addWidget(self.base_label, 1)
        base_row.addWidget(self.page_base_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.count_label, 1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addLayout(base_row)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._show_base()
        self.validate()

    def _make_row(self, n: int, name: str) -> _AxisRow:
        combo = QComboBox(self)
        combo.setObjectName(f"axis_{name.lower()}_field")
        combo.setAccessibleName(self.tr("%1 axis: parameter").replace("%1", name))
        combo.addItem(self.tr("(none)"), None)
        for label, field in self._choices:
            combo.addItem(label, field)
        values = QLineEdit(self)
        values.setObjectName(f"axis_{name.lower()}_values")
        values.setAccessibleName(self.tr("%1 axis: values").replace("%1", name))
        values.setToolTip(self.tr("Values: 4,8,16 · a range 1-10 or 1-10 (+2) · evenly spaced 0.5-1.5 [5] · "
                                  "text with commas: a|b|c or \"a, b\", c"))
        error = QLabel(self)
        error.setObjectName(f"axis_{name.lower()}_error")
        error.setProperty("role", "error")
        error.setWordWrap(True)
        error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        error.hide()
        row = _AxisRow(combo, values, error)
        if n == 0 and self._choices:  # x starts on the first parameter, waiting for its values
            combo.setCurrentIndex(1)
        combo.currentIndexChanged.connect(self.validate)
        values.textChanged.connect(self.validate)
        return row

    # -- the axes ----------------------------------------------------------------------------------------------

    def set_axis(self, n: int, field: str | None, text: str = "") -> None:
        """Show ``field`` (None: no axis) with ``text`` as axis ``n`` (0 x, 1 y, 2 z)."""
        row = self.rows[n]
        row.field.setCurrentIndex(max(0, row.field.findData(field)) if field is not None else 0)
        row.values.setText(text)

    def axes(self) -> list[Axis]:
        """The axes parsed now, x first (those shown valid)."""
        return [row.axis for row in self.rows if row.axis is not None]

    @Slot()
    def validate(self) -> bool:
        """Parse every axis (the bad value named under its field), show the number of jobs, and allow Run only for
        a complete grid within the limit. Returns whether Run is allowed."""
        used: list[str] = []
        complete, count, previous_set = True, 1, True
        for n, row in enumerate(self.rows):
            row.field.setEnabled(previous_set)  # y once x is chosen, z once y is
            field = row.field.currentData() if previous_set else None
            row.values.setEnabled(field is not None)
            row.axis, reason = None, None
            if field is not None and row.values.text().strip():
                if field in used:
                    reason = self.tr("%1 is already an axis of this grid.").replace("%1", row.field.currentText())
                else:
                    try:
                        row.axis = parse_axis(self.generator, field, row.values.text())
                    except ParamError as exc:
                        reason = str(exc)
            if field is not None:
                used.append(field)
                row.values.setPlaceholderText(self._placeholder(field))
                complete = complete and row.axis is not None
                count *= len(row.axis.values) if row.axis is not None else 1
            elif n == 0:
                complete = False
            previous_set = field is not None
            self._mark(row, reason)
        too_many = count > MAX_GRID_JOBS
        if not complete:
            text = self.tr("Choose a parameter for X and type its values.") if not self.axes() else \
                self.tr("Type the values of every axis chosen (or choose (none)).")
        elif too_many:
            text = self.tr("%1 jobs: a grid has at most %2. Use fewer values.").replace("%1", str(count)) \
                .replace("%2", str(MAX_GRID_JOBS))
        else:
            sizes = " × ".join(str(len(a.values)) for a in self.axes())
            text = self.tr("%1 jobs (%2)").replace("%1", str(count)).replace("%2", sizes)
            if count > CONFIRM_JOBS:
                text += self.tr(" — you will be asked to confirm")
        self.count_label.setText(text)
        mark_error(self.count_label, complete and too_many)
        allowed = complete and not too_many
        self.run_button.setEnabled(allowed and not self.running)
        return allowed

    def _mark(self, row: _AxisRow, reason: str | None) -> None:
        row.values.setProperty("invalid", reason is not None)
        row.values.style().unpolish(row.values)
        row.values.style().polish(row.values)
        row.error.setText(reason or "")
        row.error.setVisible(reason is not None)

    def _placeholder(self, field: str) -> str:
        if field == SEED_AXIS:
            return self.tr("e.g. 1-4 or 1,7,42")
        if field == MODEL_AXIS:
            return self.tr("e.g. demo|path/to/model")
        spec = self._fields[field]
        if spec.spec.choices:
            return ", ".join(str(c) for c in spec.spec.choices[:4])
        if spec.kind in ("int", "float"):
            return self.tr("e.g. 4,8,16 or 1-10 (+2) or 0.5-1.5 [5]")
        if spec.kind == "bool":
            return "true,false"
        return self.tr("e.g. a red fox|a blue bird")

    # -- the base ------------------------------------------------------------------------------------------------

    def load_spec(self, spec: GridSpec, source: str) -> None:
        """Show a saved grid (its axes, and its params, model and seed as the base) read from ``source``."""
        for n in range(len(self.rows)):
            axis = spec.axes[n] if n < len(spec.axes) else None
            self.set_axis(n, axis.field if axis else None, axis.text if axis else "")
        self.loaded_base = (dict(spec.base_params), spec.model, spec.seed)
        self._show_base(source)
        self.show_status("")
        self.validate()

    @Slot()
    def use_page_base(self) -> None:
        self.loaded_base = None
        self._show_base()

    def _show_base(self, source: str = "") -> None:
        if self.loaded_base is None:
            self.base_label.setText(self.tr("The other parameters, the model and the seed: the page's when you "
                                            "run the grid."))
        else:
            self.base_label.setText(self.tr("The other parameters, the model and the seed: from %1.")
                                    .replace("%1", source))
        self.page_base_button.setVisible(self.loaded_base is not None)

    def spec(self) -> GridSpec:
        """The grid to run: the axes and the base. Raises :class:`StudioloError` (an axis or the page's form)."""
        if not self.validate():
            raise ParamError("grid", self.count_label.text(), "the grid is not complete or too big")
        params, model, seed = self.loaded_base if self.loaded_base is not None else self.base()
        return GridSpec(self.generator.id, tuple(self.axes()), dict(params), model, seed)

    # -- running -----------------------------------------------------------------------------------------------

    def show_status(self, text: str, *, error: bool = False) -> None:
        mark_error(self.status, error)
        self.status.setText(text)

    def set_running(self, running: bool) -> None:
        self.running = running
        self.validate()

    @Slot()
    def request_run(self) -> None:
        """Run pressed: the grid, after asking when it has more than :data:`CONFIRM_JOBS` jobs (never waits: the
        question is a window of its own). Not while a grid of this window runs."""
        if self.running:
            self.show_status(self.tr("A grid is running: wait for it, or cancel it, first."), error=True)
            return
        try:
            spec = self.spec()
        except StudioloError as exc:
            self.show_status(str(exc), error=True)
            return
        self.show_status("")
        count = 1
        for axis in spec.axes:
            count *= len(axis.values)
        if count <= CONFIRM_JOBS:
            self.run_requested.emit(spec)
            return
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Run a big grid?"),
                          self.tr("This grid has %1 jobs (more than %2). Each is a job of its own, saved to the "
                                  "gallery. Run them all?").replace("%1", str(count)).replace("%2", str(CONFIRM_JOBS)),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("grid_confirm")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(_result: int) -> None:
            self.confirm_box = None
            if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
                self.run_requested.emit(spec)
            else:
                self.show_status(self.tr("Not run."))

        box.finished.connect(answered)
        self.confirm_box = box
        box.open()
