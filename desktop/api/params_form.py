"""``ParamsForm``: a ``Params`` dataclass turned into editors, validated as you type (import it from
``desktop.api.widgets``; it imports Qt).

The main window shows a :class:`ParamsForm` for every generator without a custom panel, and a custom panel can
embed one for the plain fields of its params (``fields=``) next to the widgets it builds itself. Each field of the
schema (:func:`desktop.api.params.schema`) gets the editor its kind calls for:

=====================  ====================================================================================
int                    a spin box with the spec's range and step (``multiple_of`` as the step), and a
                       slider beside it when the range is bounded and modest; an int whose bounds do not
                       fit a spin box (beyond 32 bits) gets a line edit instead
float                  a double spin box (decimals from step, default and bounds), a slider when bounded
bool                   a check box (tri-state when optional: partially checked means no value)
``choices``            a combo box of the choices (``(none)`` first when optional); each item's data is its
                       choice (``combo.findData(choice)``), so a panel may relabel items (``setItemText``)
prompt / ``multiline`` a plain-text editor (the prompt first in the form, and large)
str                    a line edit
path                   a line edit and a *Browse…* button opening a (non-blocking) file dialog
list                   a line edit: comma-separated items, or a JSON array when an item needs it
=====================  ====================================================================================

Each editor's object name is the field's name and its accessible name the field's label
(:meth:`ParamsForm.field_widget` returns it). An empty optional editor (or the ``(none)`` item / the spin box's
``(none)`` below its minimum) means ``None``. Fields marked ``load_option=True`` go in a *Model options* group
below the others (when the form shows others too).

Every edit is checked at once with :func:`~desktop.api.params.parse_value` /
:func:`~desktop.api.params.validate_value`: an invalid editor gets the dynamic property ``invalid=true`` (a red
border), its tooltip and a small label under it say why, and :attr:`ParamsForm.validity_changed` reports the
form going valid or invalid. A number typed outside a spin box's range is kept while typing (the form says the
range) and brought to the nearest bound when the editor loses focus, never refused keystroke by keystroke.

The mouse wheel changes a spin box, combo box or slider only while it has focus (:mod:`desktop.api.wheel_guard`):
scrolling the form over a field scrolls the form.

Values given to :meth:`ParamsForm.set_params` (or :meth:`ParamsForm.set_values`) come back from
:meth:`ParamsForm.params` (or :meth:`ParamsForm.values`) exactly, even where the editor shows them rounded (a float
with more decimals than the spin box shows, text whose line endings the editor normalises), until that field is
edited: "reuse parameters" must not change what is reused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api.errors import ParamError
from desktop.api.params import ParamField, from_json, parse_value, schema, validate, validate_value
from desktop.api.wheel_guard import install_wheel_guard

__all__ = ["ParamsForm"]

_INT_LIMITS = (-(2**31), 2**31 - 1)  # what a QSpinBox holds
_FLOAT_LIMIT = 1e15  # beyond this a double spin box shows noise; such bounds get a line edit
_MAX_SLIDER_POSITIONS = 1000  # an int range with more steps than this gets no slider; floats are coarsened
INVALID_COLOUR = "#e53935"
"""The border of an invalid field: at least 3:1 (WCAG, non-text) against field and window backgrounds in both
built-in themes (tests/test_theme.py), so one colour serves light and dark and a panel needs no theme to use it."""
_STYLE = """
*[invalid="true"] { border: 1px solid %s; }
QLabel[role="error"] { border: none; }
""" % INVALID_COLOUR  # the error text's colour is the theme's (resources/themes/*.qss)


@dataclass
class _Slider:
    """A slider beside a spin box: position ``p`` stands for the value ``base + p * step``."""

    widget: QSlider
    base: float
    step: float
    positions: int
    is_int: bool
    decimals: int = 0

    def position(self, value: float) -> int:
        return max(0, min(self.positions, round((value - self.base) / self.step)))

    def value(self, position: int) -> float:
        if self.is_int:
            return int(self.base + position * int(self.step))
        return round(self.base + position * self.step, self.decimals)


@dataclass
class _Row:
    """One field's editors and state."""

    field: ParamField
    editor: QWidget
    error: QLabel
    slider: _Slider | None = None
    limits: tuple[float, float] | None = None  # what a spin box can show (its none-sentinel excluded)
    loaded: tuple[Any, Any] | None = None  # (editor state, exact value) from set_params
    reason: str | None = None  # why the field is invalid, or None
    seen: Any = None  # the editor state last checked (a spin box reports one edit through two signals)
    layout: QFormLayout | None = None  # the form layout holding the row
    widgets: tuple[QWidget, ...] = ()  # the row's label and its editors' box, shown or hidden together


class ParamsForm(QWidget):
    """A form for a ``Params`` dataclass: one validated editor per field, load options grouped apart.

    ``params_type`` is the dataclass; ``fields`` (optional) names the fields to show, in order (but the prompt
    first and the load options in their group last), for a custom panel that builds its own widgets for the
    others; ``scrollable=False`` leaves out the scroll area the form otherwise sits in (for a form placed inside a
    panel's own scroll area).

    ``changed`` is emitted on any edit (and once per :meth:`set_params` / :meth:`set_values`);
    ``validity_changed(bool)`` when the form goes from valid to invalid or back.
    """

    changed = Signal()
    """Any field was edited, or the form was filled by :meth:`set_params` / :meth:`set_values`."""
    validity_changed = Signal(bool)
    """The form went valid (``True``) or invalid (``False``)."""

    def __init__(self, params_type: type, parent: QWidget | None = None, *, fields: Iterable[str] | None = None,
                 scrollable: bool = True) -> None:
        super().__init__(parent)
        self._type = params_type
        self._base = params_type()  # what params() gives for the fields this form does not show
        self._rows: dict[str, _Row] = {}
        self._loading = False
        self._valid = True
        self._options_group: QGroupBox | None = None
        self.setStyleSheet(_STYLE)
        install_wheel_guard()

        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        if not scrollable:
            inner_layout.setContentsMargins(0, 0, 0, 0)
        main = QFormLayout()
        main.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        inner_layout.addLayout(main)
        shown = sorted(_chosen_fields(params_type, fields), key=lambda f: not f.spec.prompt)  # stable: prompt first
        options = [f for f in shown if f.spec.load_option and not f.spec.prompt]
        if len(options) == len(shown):  # nothing to set them apart from
            options = []
        for f in shown:
            if f not in options:
                self._add_row(main, f)
        if options:
            self._options_group = QGroupBox(self.tr("Model options"), inner)
            self._options_group.setObjectName("model_options")
            self._options_group.setToolTip(self.tr("These change how the model is loaded; changing one "
                                                   "reloads the model."))
            group_layout = QFormLayout(self._options_group)
            group_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for f in options:
                self._add_row(group_layout, f)
            inner_layout.addWidget(self._options_group)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        if scrollable:
            if not any(isinstance(r.editor, QPlainTextEdit) for r in self._rows.values()):
                inner_layout.addStretch(1)
            scroll = QScrollArea(self)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(inner)
            outer.addWidget(scroll)
        else:
            outer.addWidget(inner)
        self.set_params(self._base)

    # -- public API -------------------------------------------------------------------------------------

    def params(self) -> Any:
        """The validated params. Raises :class:`ParamError` (for the first invalid field, all marked) if any
        field is invalid. A form showing only some fields (``fields=``) gives the others their values from the
        last :meth:`set_params` (the defaults until then)."""
        return validate(replace(self._base, **self.values()), self._type)

    def values(self) -> dict[str, Any]:
        """The shown fields' values, each validated: field name → value, in the form's order. Raises
        :class:`ParamError` (for the first invalid field, all marked) if any field is invalid."""
        values: dict[str, Any] = {}
        first: ParamError | None = None
        for name, row in self._rows.items():
            try:
                values[name] = self._read(row)
            except ParamError as exc:
                self._mark(row, exc.allowed)
                first = first or exc
            else:
                self._mark(row, None)
        self._update_validity()
        if first is not None:
            raise first
        return values

    def set_params(self, params: Any) -> None:
        """Fill every editor from ``params``: an instance of the form's ``Params``, or its JSON form (a dict, as
        ``params_applied`` may carry). Validated first: a :class:`ParamError` leaves the form as it was. Emits
        ``changed`` once, and ``validity_changed`` only if the form was invalid before."""
        params = validate(from_json(self._type, params) if isinstance(params, Mapping) else params, self._type)
        self._fill({name: getattr(params, name) for name in self._rows})
        self._base = params

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Fill the editors of the fields named in ``values`` (the others keep what they show), e.g. from a
        preset. Each value is validated first: a :class:`ParamError` (or a ``KeyError`` for a field the form
        does not show) leaves the form as it was. Emits ``changed`` once."""
        unknown = [name for name in values if name not in self._rows]
        if unknown:
            raise KeyError(f"not a field of this form: {', '.join(unknown)}")
        self._fill({name: validate_value(self._rows[name].field, value) for name, value in values.items()})

    def _fill(self, values: dict[str, Any]) -> None:
        """Write validated values into their editors (all checked to fit first), then check every field."""
        for name, value in values.items():
            self._check_fits(self._rows[name], value)
        self._loading = True
        try:
            for name, value in values.items():
                self._write(self._rows[name], value)
        finally:
            self._loading = False
        for row in self._rows.values():
            self._check(row)
        self.changed.emit()
        self._update_validity()

    def reset(self) -> None:
        """Back to the defaults."""
        self.set_params(self._type())

    def errors(self) -> dict[str, str]:
        """Field name → why it is invalid, for the fields invalid now."""
        return {name: row.reason for name, row in self._rows.items() if row.reason is not None}

    def is_valid(self) -> bool:
        """Whether every field holds an allowed value."""
        return all(row.reason is None for row in self._rows.values())

    def field_names(self) -> list[str]:
        """The names of the fields this form shows, in its order."""
        return list(self._rows)

    def field_widget(self, name: str) -> QWidget:
        """The main editor of a field (a ``KeyError`` for an unknown name)."""
        return self._rows[name].editor

    def set_field_visible(self, name: str, visible: bool) -> None:
        """Show or hide a field's row (its label, editor, slider and error), e.g. a setting only one mode uses.
        A hidden field still counts in :meth:`params` and :meth:`values`."""
        row = self._rows[name]
        assert row.layout is not None
        for widget in row.widgets:
            row.layout.setRowVisible(widget, visible)

    def slider(self, name: str) -> QSlider | None:
        """The slider beside a number field's spin box, if it has one."""
        slider = self._rows[name].slider
        return slider.widget if slider else None

    def error_label(self, name: str) -> QLabel:
        """The label under a field that says why it is invalid (hidden while it is valid)."""
        return self._rows[name].error

    def prompt_editor(self) -> QPlainTextEdit | None:
        """The prompt's editor, if the params have a prompt field."""
        row = next((r for r in self._rows.values() if r.field.spec.prompt), None)
        return row.editor if row is not None and isinstance(row.editor, QPlainTextEdit) else None

    def options_group(self) -> QGroupBox | None:
        """The "Model options" group holding the load options, if there are any."""
        return self._options_group

    # -- building -----------------------------------------------------------------------------------------

    def _add_row(self, layout: QFormLayout, f: ParamField) -> None:
        editor, extra, row = self._make_editor(f)
        editor.setObjectName(f.name)
        editor.setAccessibleName(f.label)
        row.error.setObjectName(f"{f.name}_error")
        row.error.setProperty("role", "error")
        row.error.setWordWrap(True)
        row.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.error.hide()
        self._rows[f.name] = row
        self._show_help(row)

        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(editor, 1)
        for widget in extra:
            line.addWidget(widget, 2 if isinstance(widget, QSlider) else 0)
        box = QWidget()
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.setSpacing(2)
        box_layout.addLayout(line)
        box_layout.addWidget(row.error)
        label = QLabel(f.label)
        label.setObjectName(f"{f.name}_label")
        label.setBuddy(editor)
        row.layout, row.widgets = layout, (label, box)
        if isinstance(editor, QPlainTextEdit):  # full width under its label
            layout.addRow(label)
            layout.addRow(box)
        else:
            layout.addRow(label, box)

    def _make_editor(self, f: ParamField) -> tuple[QWidget, list[QWidget], _Row]:
        """The main editor, the widgets beside it, and the row (its signals connected)."""
        spec, error = f.spec, QLabel()
        if spec.choices is not None and f.kind != "list":
            combo = QComboBox()
            if f.optional:
                combo.addItem(self.tr("(none)"))
            for choice in spec.choices:
                combo.addItem(str(choice), choice)
            row = _Row(f, combo, error)
            combo.currentIndexChanged.connect(partial(self._on_edit, row))
            return combo, [], row
        if f.kind == "bool":
            check = QCheckBox()
            check.setTristate(f.optional)
            row = _Row(f, check, error)
            check.checkStateChanged.connect(partial(self._on_edit, row))
            return check, [], row
        if f.kind in ("int", "float"):
            spin_row = self._make_spin(f, error)
            if spin_row is not None:
                return spin_row
        if f.kind == "str" and (spec.prompt or spec.multiline):
            text = QPlainTextEdit()
            text.setTabChangesFocus(True)
            lines = 6 if spec.prompt else 3
            text.setMinimumHeight(text.fontMetrics().lineSpacing() * lines + 12)
            text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            if spec.prompt:
                text.setPlaceholderText(spec.help)
            row = _Row(f, text, error)
            text.textChanged.connect(partial(self._on_edit, row))
            return text, [], row
        edit = QLineEdit()
        row = _Row(f, edit, error)
        extra: list[QWidget] = []
        if f.kind == "list" and spec.choices is not None:
            allowed = ", ".join(map(str, spec.choices))
            edit.setPlaceholderText(self.tr("Comma-separated, from: %1").replace("%1", allowed))
        elif f.kind == "list":
            edit.setPlaceholderText(self.tr("Comma-separated, or a JSON list"))
        elif f.optional:
            edit.setPlaceholderText(self.tr("(none)"))
        if f.kind == "path":
            browse = QToolButton()
            browse.setText(self.tr("Browse…"))
            browse.setObjectName(f"{f.name}_browse")
            browse.setAccessibleName(self.tr("Browse for %1").replace("%1", f.label))
            browse.setToolTip(self.tr("Choose a file"))
            browse.clicked.connect(partial(self._browse, row))
            extra.append(browse)
        edit.textChanged.connect(partial(self._on_edit, row))
        return edit, extra, row

    def _make_spin(self, f: ParamField, error: QLabel) -> tuple[QWidget, list[QWidget], _Row] | None:
        """A spin box (and a slider) for a number field, or None when its bounds do not fit one."""
        spec = f.spec
        spin: QSpinBox | QDoubleSpinBox
        limits: tuple[float, float]  # what the spin box can show, its none-sentinel excluded (ints stay ints)
        if f.kind == "int":
            lo = _int_bound(spec.min, math.ceil, _INT_LIMITS[0])
            hi = _int_bound(spec.max, math.floor, _INT_LIMITS[1])
            if lo is None or hi is None or (f.default is not None and not lo <= f.default <= hi):
                return None
            step = spec.multiple_of or max(1, int(spec.step or 1))
            if f.optional:
                lo = max(lo, _INT_LIMITS[0] + step)
            limits = (lo, hi)
            spin = _SpinBox()
            spin.setRange(lo - step if f.optional else lo, hi)
            spin.setSingleStep(step)
            base = math.ceil(lo / step) * step if spec.multiple_of else lo
            positions = (hi - base) // step
            slider = _Slider(QSlider(), base, step, positions, True) if (
                spec.min is not None and spec.max is not None and 1 <= positions <= _MAX_SLIDER_POSITIONS) else None
        else:
            flo = -_FLOAT_LIMIT if spec.min is None else float(spec.min)
            fhi = _FLOAT_LIMIT if spec.max is None else float(spec.max)
            if not (-_FLOAT_LIMIT <= flo <= fhi <= _FLOAT_LIMIT) or (
                    f.default is not None and not flo <= f.default <= fhi):
                return None
            bounded = spec.min is not None and spec.max is not None and fhi > flo
            fstep = float(spec.step) if spec.step else (
                10.0 ** math.floor(math.log10((fhi - flo) / 100)) if bounded else 0.1)
            decimals = max(2, *(_decimals(x) for x in (fstep, f.default, spec.min, spec.max) if
                                isinstance(x, (int, float))))
            spin = _DoubleSpinBox()
            spin.setDecimals(decimals)
            spin.setRange(round(flo - fstep, decimals) if f.optional else flo, fhi)
            spin.setSingleStep(fstep)
            limits = (flo, fhi)
            slider = None
            if bounded:
                positions = min(_MAX_SLIDER_POSITIONS, max(1, round((fhi - flo) / max(fstep, 10.0 ** -decimals))))
                slider = _Slider(QSlider(), flo, (fhi - flo) / positions, positions, False, decimals)
        if f.optional:
            spin.setSpecialValueText(self.tr("(none)"))
        spin.setAccelerated(True)
        spin.setKeyboardTracking(True)
        row = _Row(f, spin, error, slider, limits)
        spin.textChanged.connect(partial(self._on_edit, row))  # value changes, typed or not
        spin.lineEdit().textChanged.connect(partial(self._on_edit, row))  # half-typed numbers too
        extra: list[QWidget] = []
        if slider is not None:
            widget = slider.widget
            widget.setOrientation(Qt.Orientation.Horizontal)
            widget.setRange(0, slider.positions)
            widget.setObjectName(f"{f.name}_slider")
            widget.setAccessibleName(self.tr("%1 (slider)").replace("%1", f.label))
            widget.setToolTip(spec.help)
            widget.setValue(slider.position(f.default) if f.default is not None else 0)
            widget.valueChanged.connect(partial(self._slider_moved, row))
            spin.valueChanged.connect(partial(self._spin_moved, row))
            extra.append(widget)
        return spin, extra, row

    # -- reading and writing editors ----------------------------------------------------------------------

    def _state(self, row: _Row) -> Any:
        """What the editor shows now, to tell whether it was edited since :meth:`set_params`."""
        w = row.editor
        if isinstance(w, QAbstractSpinBox):
            return w.text()
        if isinstance(w, QComboBox):
            return w.currentIndex()
        if isinstance(w, QCheckBox):
            return w.checkState()
        if isinstance(w, QPlainTextEdit):
            return w.toPlainText()
        return w.text()  # type: ignore[attr-defined]

    def _read(self, row: _Row) -> Any:
        """The field's value, validated; raises :class:`ParamError` with the reason."""
        if row.loaded is not None and row.loaded[0] == self._state(row):
            return validate_value(row.field, row.loaded[1])
        return validate_value(row.field, self._parse(row))

    def _parse(self, row: _Row) -> Any:
        f, w = row.field, row.editor
        if isinstance(w, QComboBox):
            index = w.currentIndex() - (1 if f.optional else 0)
            if index < 0:
                if f.optional:
                    return None
                raise ParamError(f.name, None, "a value is required")
            return f.spec.choices[index]  # type: ignore[index]
        if isinstance(w, QCheckBox):
            state = w.checkState()
            return None if state == Qt.CheckState.PartiallyChecked else state == Qt.CheckState.Checked
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            if not w.hasAcceptableInput():  # a half-typed number: say what is wrong with it
                return _parse_number(f, w.cleanText(), w)
            if f.optional and w.value() == w.minimum():
                return None
            return w.value()
        text = w.toPlainText() if isinstance(w, QPlainTextEdit) else w.text()  # type: ignore[attr-defined]
        if f.kind in ("str", "path"):
            return None if f.optional and text == "" else text
        return parse_value(f, text)  # lists, and numbers too wide for a spin box

    def _check_fits(self, row: _Row, value: Any) -> None:
        if row.limits is not None and value is not None and not row.limits[0] <= value <= row.limits[1]:
            lo, hi = (_fmt(x) for x in row.limits)
            raise ParamError(row.field.name, value, f"outside what this form can show ({lo} to {hi})")

    def _write(self, row: _Row, value: Any) -> None:
        f, w = row.field, row.editor
        if isinstance(w, QComboBox):
            offset = 1 if f.optional else 0
            choices = [validate_value(f, c) for c in f.spec.choices or ()]
            w.setCurrentIndex(0 if value is None else offset + choices.index(value))
        elif isinstance(w, QCheckBox):
            w.setCheckState(Qt.CheckState.PartiallyChecked if value is None else
                            Qt.CheckState.Checked if value else Qt.CheckState.Unchecked)
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(w.minimum() if value is None else value)  # type: ignore[arg-type]
        elif isinstance(w, QPlainTextEdit):
            w.setPlainText("" if value is None else value)
        elif f.kind == "list":
            w.setText(_list_text(f, value))  # type: ignore[attr-defined]
        elif f.kind in ("int", "float"):
            w.setText("" if value is None else repr(value))  # type: ignore[attr-defined]
        else:
            w.setText("" if value is None else str(value))  # type: ignore[attr-defined]
        row.seen = self._state(row)
        row.loaded = (row.seen, value)

    # -- validation and signals ---------------------------------------------------------------------------

    def _on_edit(self, row: _Row, *_: object) -> None:
        state = self._state(row)
        if self._loading or state == row.seen:
            return
        row.seen = state
        self._check(row)
        self.changed.emit()
        self._update_validity()

    def _check(self, row: _Row) -> None:
        try:
            self._read(row)
        except ParamError as exc:
            self._mark(row, exc.allowed)
        else:
            self._mark(row, None)

    def _mark(self, row: _Row, reason: str | None) -> None:
        if reason == row.reason:
            return
        row.reason = reason
        editor = row.editor
        editor.setProperty("invalid", reason is not None)
        editor.style().unpolish(editor)
        editor.style().polish(editor)
        row.error.setText(reason[:1].upper() + reason[1:] + "." if reason else "")
        row.error.setVisible(reason is not None)
        self._show_help(row)

    def _show_help(self, row: _Row) -> None:
        text = "\n".join(t for t in (row.field.spec.help, row.error.text()) if t)
        row.editor.setToolTip(text)
        row.editor.setAccessibleDescription(text)

    def _update_validity(self) -> None:
        valid = self.is_valid()
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)

    def _spin_moved(self, row: _Row, value: float) -> None:
        assert row.slider is not None
        with QSignalBlocker(row.slider.widget):
            row.slider.widget.setValue(row.slider.position(value))

    def _slider_moved(self, row: _Row, position: int) -> None:
        assert row.slider is not None
        row.editor.setValue(row.slider.value(position))  # type: ignore[attr-defined]

    def _browse(self, row: _Row) -> None:
        """Ask for a file in a window-modal dialog (no nested event loop); the choice fills the field."""
        editor: QLineEdit = row.editor  # type: ignore[assignment]
        dialog = QFileDialog(self, self.tr("Choose %1").replace("%1", row.field.label),
                             str(Path(editor.text()).parent) if editor.text() else "")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(editor.setText)
        dialog.open()


class _LenientRange:
    """Mixed into a spin box: a number typed outside the range is Intermediate, not Invalid, so the keystroke is
    kept and the form can say the range; :meth:`fixup` (on leaving the field) brings it to the nearest bound."""

    def _typed_number(self, text: str) -> float | None:
        box: QAbstractSpinBox = self  # type: ignore[assignment]
        prefix, suffix = box.prefix(), box.suffix()  # type: ignore[attr-defined]
        if prefix and text.startswith(prefix):
            text = text[len(prefix):]
        if suffix and text.endswith(suffix):
            text = text[:-len(suffix)]
        text = text.strip()
        number, ok = (box.locale().toLongLong(text) if isinstance(box, QSpinBox) else box.locale().toDouble(text))
        return number if ok and text else None

    def _out_of_range(self, text: str) -> float | None:
        number = self._typed_number(text)
        box: QSpinBox = self  # type: ignore[assignment]
        if number is None or box.minimum() <= number <= box.maximum():
            return None
        return number

    def validate(self, text: str, pos: int) -> object:
        result = super().validate(text, pos)  # type: ignore[misc]
        state = result[0] if isinstance(result, tuple) else result
        if state == QValidator.State.Invalid and self._out_of_range(text) is not None:
            return QValidator.State.Intermediate, text, pos
        return result

    def fixup(self, text: str) -> str:
        number = self._out_of_range(text)
        if number is None:
            return super().fixup(text)  # type: ignore[misc]
        box: QSpinBox = self  # type: ignore[assignment]
        bound = box.maximum() if number > box.maximum() else box.minimum()
        return box.prefix() + box.textFromValue(bound) + box.suffix()


# The mixin's validate() returns what Qt's does, typed loosely: PySide6's stubs type each class's differently.
class _SpinBox(_LenientRange, QSpinBox):  # type: ignore[misc]
    """The form's int spin box (see :class:`_LenientRange`)."""


class _DoubleSpinBox(_LenientRange, QDoubleSpinBox):  # type: ignore[misc]
    """The form's float spin box (see :class:`_LenientRange`)."""


# -- helpers ------------------------------------------------------------------------------------------------


def _chosen_fields(params_type: type, names: Iterable[str] | None) -> list[ParamField]:
    """The schema's fields, or those named (in that order); an unknown or repeated name is a ``ValueError``."""
    fields = schema(params_type)
    if names is None:
        return list(fields)
    by_name = {f.name: f for f in fields}
    names = list(names)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"{params_type.__name__} has no field {unknown[0]!r}; its fields are: {', '.join(by_name)}")
    if len(set(names)) < len(names):
        raise ValueError(f"a field is named twice in fields={names!r}")
    return [by_name[n] for n in names]


def _int_bound(bound: float | None, rounding: Any, default: int) -> int | None:
    """A spec bound as a spin-box bound, or None when it does not fit a 32-bit spin box."""
    if bound is None:
        return default
    if not math.isfinite(bound):
        return None
    value = int(rounding(bound))
    return value if _INT_LIMITS[0] <= value <= _INT_LIMITS[1] else None


def _decimals(x: float) -> int:
    """The fewest decimals (up to 10) that show ``x``."""
    for d in range(11):
        if math.isclose(round(x, d), x, rel_tol=1e-9, abs_tol=1e-12):
            return d
    return 10


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _parse_number(f: ParamField, text: str, spin: QAbstractSpinBox) -> Any:
    """A number typed in a spin box that the box does not accept yet, validated (to get the reason)."""
    text = text.strip()
    if f.optional and not text:
        return None
    locale = spin.locale()
    number, ok = locale.toLongLong(text) if f.kind == "int" else locale.toDouble(text)
    if not ok:
        raise ParamError(f.name, text, "expected a whole number" if f.kind == "int" else "expected a number")
    return validate_value(f, number)


def _list_text(f: ParamField, items: list[Any] | None) -> str:
    """A list as comma-separated text when that reads back the same, else as a JSON array."""
    if items is None:
        return ""
    words = ["true" if v is True else "false" if v is False else repr(v) if isinstance(v, float) else str(v)
             for v in items]
    text = ", ".join(words)
    try:
        if parse_value(f, text) == items:
            return text
    except ParamError:
        pass
    return json.dumps([str(v) if isinstance(v, Path) else v for v in items], ensure_ascii=False)
