"""One axis of a grid: a parameter of a generator (or the pseudo-fields ``seed`` and ``model``) and its values.

:func:`parse_axis` turns the text a person types into typed, validated values. The syntaxes:

* comma lists: ``4,8,16``, ``euler, ddim`` (items are trimmed; a quoted item is kept as written, commas and
  all: ``"a, b", c``; ``""`` is an empty text and ``"say ""hi"" now"`` holds quotes);
* pipe lists: ``a red fox|a blue bird, at dusk`` (for text with commas; an empty item is an empty text);
* integer ranges, both ends included: ``1-10`` (step 1), ``1-10 (+2)``, ``10-1 (-3)`` (descending), ``10-1``;
* number ranges: ``0.5-1.5 (+0.25)`` (each value is ``start + i*step``, computed in decimal: no float drift);
* evenly spaced values: ``1-10 [4]`` (4 values from 1 to 10; rounded, and duplicates dropped, for whole numbers);
* booleans: true/false, yes/no, on/off, 1/0; a field with choices takes only its choices.

Every value is converted to the field's type and checked with :func:`desktop.api.params.validate_value`: the first
value that is not allowed raises :class:`~desktop.api.ParamError` naming the axis, the value and what is allowed,
before any job runs. Parsing is bounded: the text is at most :data:`MAX_AXIS_TEXT` characters, an axis at most
:data:`MAX_AXIS_VALUES` values (a range's size is computed before any value is), and the only regular expression is
tried on short text and has no nested repetition; anything else than a valid axis is a ``ParamError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from desktop.api import ParamError
from desktop.api.params import ParamField, ParamSpec, parse_value, schema, validate_value
from desktop.engine.jobs import MAX_SEED

__all__ = ["Axis", "parse_axis", "axis_fields", "MAX_AXIS_VALUES", "MAX_AXIS_TEXT", "SEED_AXIS", "MODEL_AXIS"]

MAX_AXIS_VALUES = 64
"""The most values one axis may have."""
MAX_AXIS_TEXT = 10_000
"""The longest axis text accepted (characters)."""
SEED_AXIS = "seed"
MODEL_AXIS = "model"
_LABEL_CHARS = 40
_MAX_RANGE_TEXT = 200  # a range is short; longer text is never tried against the range pattern

_NUMBER = r"[+-]?[0-9]{1,30}(?:\.[0-9]{1,30})?"
_RANGE = re.compile(
    rf"\s*(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})\s*"
    rf"(?:\(\s*(?P<step>[+-]\s*[0-9]{{1,30}}(?:\.[0-9]{{1,30}})?)\s*\)|\[\s*(?P<count>[0-9]{{1,6}})\s*\])?\s*"
)

_SEED_FIELD = ParamField(SEED_AXIS, "int", None, False, 0, ParamSpec(label="Seed", min=0, max=MAX_SEED))
_MODEL_FIELD = ParamField(MODEL_AXIS, "str", None, False, "", ParamSpec(label="Model"))


@dataclass(frozen=True)
class Axis:
    """A parsed axis: ``field`` is the parameter's name (or ``seed``/``model``), ``label`` its label for display,
    ``values`` the typed, validated values in order, ``value_labels`` a short display string for each, and
    ``text`` the text it was parsed from (saved with a grid so that it can be run again)."""

    field: str
    label: str
    values: tuple[Any, ...]
    value_labels: tuple[str, ...]
    text: str = ""


def axis_fields(generator: Any) -> tuple[str, ...]:
    """The names that can be axes of ``generator``'s grids: its non-list params, then ``seed`` and ``model``."""
    return tuple(f.name for f in schema(generator.Params) if f.kind != "list") + (SEED_AXIS, MODEL_AXIS)


def parse_axis(generator: Any, name: str, text: str) -> Axis:
    """Parse ``text`` as the values of the axis ``name`` of ``generator``'s grids; see the module's doc.

    Raises :class:`ParamError` for an unknown or list-typed field, an empty or too long axis, or a value that is
    not allowed (the first one).
    """
    field = _axis_field(generator, name)
    if not isinstance(text, str):
        raise ParamError(field.name, text, "expected the axis values as text")
    if len(text) > MAX_AXIS_TEXT:
        raise ParamError(field.name, text, f"the axis text is too long (at most {MAX_AXIS_TEXT} characters)")
    if not text.strip():
        raise ParamError(field.name, text, "an axis needs at least one value")
    values = _values(field, text)
    if len(values) > MAX_AXIS_VALUES:
        raise ParamError(field.name, text, f"an axis has at most {MAX_AXIS_VALUES} values, this one {len(values)}")
    return Axis(field.name, field.label, tuple(values), tuple(_value_label(v) for v in values), text)


def _axis_field(generator: Any, name: str) -> ParamField:
    key = name.strip().replace("-", "_") if isinstance(name, str) else ""
    if key == SEED_AXIS:
        return _SEED_FIELD
    if key == MODEL_AXIS:
        return _MODEL_FIELD
    fields = {f.name: f for f in schema(generator.Params)}
    field = fields.get(key)
    if field is None:
        raise ParamError(str(name) or "axis", name, "no such parameter; the axes can be: "
                         + ", ".join(axis_fields(generator)))
    if field.kind == "list":
        raise ParamError(field.name, name, "a list parameter cannot be a grid axis; the axes can be: "
                         + ", ".join(axis_fields(generator)))
    return field


def _values(field: ParamField, text: str) -> list[Any]:
    if "|" in text:
        return [_item(field, part.strip(), allow_empty=True) for part in text.split("|")]
    if field.kind in ("int", "float") and field.spec.choices is None and len(text) <= _MAX_RANGE_TEXT:
        match = _RANGE.fullmatch(text)
        if match:
            return _range(field, text, match)
    return [_item(field, word, allow_empty=quoted) for word, quoted in _split_commas(field, text)]


def _split_commas(field: ParamField, text: str) -> list[tuple[str, bool]]:
    """The items of a comma list, each with whether it was quoted: an unquoted item is trimmed; a quoted one
    (``"a, b"``, ``""`` for a quote inside) is kept as written and may hold commas and newlines. One pass."""
    items: list[tuple[str, bool]] = []
    current: list[str] = []
    blank, quoted, in_quotes, i = True, False, False, 0
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == '"' and text.startswith('""', i):
                current.append('"')
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == ",":
            items.append(("".join(current) if quoted else "".join(current).strip(), quoted))
            current, blank, quoted = [], True, False
        elif ch == '"' and blank and not quoted:
            current, in_quotes, quoted = [], True, True
        elif quoted and not ch.isspace():
            raise ParamError(field.name, text, "text after a closing quote (quote the whole value)")
        elif not quoted:
            current.append(ch)
            blank = blank and ch.isspace()
        i += 1
    if in_quotes:
        raise ParamError(field.name, text, "a quote is not closed")
    items.append(("".join(current) if quoted else "".join(current).strip(), quoted))
    return items


def _item(field: ParamField, word: str, *, allow_empty: bool) -> Any:
    if not word and not (allow_empty and field.kind == "str" and field is not _MODEL_FIELD):
        raise ParamError(field.name, word, "an empty value (a comma or bar too many?)")
    return parse_value(field, word)


def _range(field: ParamField, text: str, match: re.Match[str]) -> list[Any]:
    whole = field.kind == "int"
    start, end = Decimal(match["start"]), Decimal(match["end"])
    step_text, count_text = match["step"], match["count"]
    step = Decimal(step_text.replace(" ", "")) if step_text else None
    if whole and any(v is not None and v != v.to_integral_value() for v in (start, end, step)):
        raise ParamError(field.name, text, "a range of whole numbers needs whole numbers")
    if count_text is not None:
        return _spaced(field, text, start, end, int(count_text))
    if step is None:
        step = Decimal(1) if end >= start else Decimal(-1)
    if step == 0:
        raise ParamError(field.name, text, "the step of a range must not be 0")
    if (end - start) * step < 0:
        raise ParamError(field.name, text, "the step goes the wrong way (use + to count up, - to count down)")
    try:
        count = int(((end - start) / step).to_integral_value(rounding=ROUND_FLOOR)) + 1
    except (InvalidOperation, OverflowError):
        count = MAX_AXIS_VALUES + 1
    if count > MAX_AXIS_VALUES:
        raise ParamError(field.name, text, f"an axis has at most {MAX_AXIS_VALUES} values, this range {count}")
    return [_number(field, start + i * step) for i in range(count)]


def _spaced(field: ParamField, text: str, start: Decimal, end: Decimal, count: int) -> list[Any]:
    if not 1 <= count <= MAX_AXIS_VALUES:
        raise ParamError(field.name, text, f"the number of values must be from 1 to {MAX_AXIS_VALUES}")
    if count == 1:
        return [_number(field, start)]
    gap = (end - start) / (count - 1)
    values = [_number(field, end if i == count - 1 else start + i * gap) for i in range(count)]
    if field.kind == "int":
        values = list(dict.fromkeys(values))
    return values


def _number(field: ParamField, value: Decimal) -> Any:
    if field.kind == "int":
        number: Any = int(value.to_integral_value(rounding=ROUND_HALF_UP))
    else:
        number = float(value)
    return validate_value(field, number)


def _value_label(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".6g")
    text = " ".join(str(value).split())
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"
