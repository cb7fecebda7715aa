"""Typed parameter schemas for generators.

A generator's ``Params`` is a plain frozen :func:`dataclasses.dataclass` whose fields are made with :func:`param`::

    @dataclass(frozen=True)
    class Params:
        prompt: str = param("", prompt=True, help="What to draw.")
        steps: int = param(20, min=1, max=150, help="Denoising steps.")
        sampler: str = param("euler", choices=("euler", "ddim"))
        tiling: bool = param(False, load_option=True, help="Decode in tiles (saves memory).")

Why dataclasses and not pydantic: the schema is read at plugin discovery, in the CLI and in the GUI thread; the
standard library costs nothing to import and adds no dependency a plugin must agree with, and a dataclass is
what a plugin author already knows. Everything pydantic would give us here — validation with clear messages,
parsing from strings, JSON round trips — is the few functions below.

Supported field types: ``str``, ``int``, ``float``, ``bool``, :class:`pathlib.Path`, ``list[T]`` of those, and
``T | None`` of any of them. Every field needs a default so that ``Params()`` is a valid job.

The host uses these helpers; plugins may too:

* :func:`schema` — the fields with their types and specs (the auto-form is built from it);
* :func:`validate` — check every value, return a normalised copy, or raise :class:`ParamError`;
* :func:`parse_assignments` — ``["steps=30", "sampler=ddim"]`` (the CLI's ``--param``) → validated params;
* :func:`to_json` / :func:`from_json` — metadata stored with every output and read back for "reuse parameters";
* :func:`fit_params` — params from loose values another tool wrote (reuse parameters from foreign files).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from desktop.api.errors import ParamError, ParamSchemaError

__all__ = ["ParamSpec", "ParamField", "param", "schema", "prompt_field", "validate", "to_json", "from_json",
           "fit_params", "loose_number"]

METADATA_KEY = "studiolo"
_SCALARS: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool", Path: "path"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"", "none", "null"}
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,30}")


@dataclass(frozen=True)
class ParamSpec:
    """What the host knows about one parameter beyond its type and default.

    ``min``/``max`` bound numbers (inclusive); ``step`` is a UI hint; ``multiple_of`` requires integers divisible
    by it (image sizes); ``choices`` restricts values to a fixed set; ``prompt`` marks the field that holds the
    prompt (searched in the gallery, shown as the job's title); ``load_option`` marks a field that changes how
    the model is loaded (dtype, memory savers) rather than one run — it reaches ``Generator.load`` in ``options``
    and is part of the model cache key; ``multiline`` asks for a multi-line editor; ``label`` overrides the
    label the UI derives from the field name; ``min_items``/``max_items`` bound lists.
    """

    help: str = ""
    label: str | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    multiple_of: int | None = None
    choices: tuple[Any, ...] | None = None
    prompt: bool = False
    load_option: bool = False
    multiline: bool = False
    min_items: int | None = None
    max_items: int | None = None


def param(
    default: Any = MISSING,
    *,
    default_factory: Any = MISSING,
    help: str = "",
    label: str | None = None,
    min: float | None = None,
    max: float | None = None,
    step: float | None = None,
    multiple_of: int | None = None,
    choices: Iterable[Any] | None = None,
    prompt: bool = False,
    load_option: bool = False,
    multiline: bool = False,
    min_items: int | None = None,
    max_items: int | None = None,
) -> Any:
    """Declare a parameter field. Use like :func:`dataclasses.field`; lists need ``default_factory``."""
    spec = ParamSpec(
        help=help,
        label=label,
        min=min,
        max=max,
        step=step,
        multiple_of=multiple_of,
        choices=tuple(choices) if choices is not None else None,
        prompt=prompt,
        load_option=load_option,
        multiline=multiline,
        min_items=min_items,
        max_items=max_items,
    )
    return dataclasses.field(default=default, default_factory=default_factory, metadata={METADATA_KEY: spec})


@dataclass(frozen=True)
class ParamField:
    """One field of a params schema, resolved: ``kind`` is ``str``/``int``/``float``/``bool``/``path``/``list``;
    for lists ``item_kind`` is the element's kind; ``optional`` fields also accept ``None``."""

    name: str
    kind: str
    item_kind: str | None
    optional: bool
    default: Any
    spec: ParamSpec

    @property
    def label(self) -> str:
        return self.spec.label or self.name.replace("_", " ").capitalize()

    def default_value(self) -> Any:
        return list(self.default) if isinstance(self.default, list) else self.default


# --------------------------------------------------------------------------------------------- schema


def schema(params_type: type) -> tuple[ParamField, ...]:
    """The fields of a ``Params`` class, checked. Raises :class:`ParamSchemaError` for a malformed schema."""
    return _schema(params_type)


@lru_cache(maxsize=256)
def _schema(params_type: type) -> tuple[ParamField, ...]:
    if not (isinstance(params_type, type) and dataclasses.is_dataclass(params_type)):
        raise ParamSchemaError(f"Params must be a dataclass, got {params_type!r}.")
    try:
        hints = typing.get_type_hints(params_type)
    except Exception as exc:
        raise ParamSchemaError(f"{params_type.__qualname__}: cannot resolve type annotations ({exc}).") from exc
    fields = []
    for f in dataclasses.fields(params_type):
        if not f.init:
            continue
        kind, item_kind, optional = _resolve_type(params_type, f.name, hints[f.name])
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            raise ParamSchemaError(f"{params_type.__qualname__}.{f.name} has no default; every parameter needs one.")
        spec = f.metadata.get(METADATA_KEY, ParamSpec())
        if not isinstance(spec, ParamSpec):
            raise ParamSchemaError(f"{params_type.__qualname__}.{f.name}: bad metadata; declare fields with param().")
        field = ParamField(f.name, kind, item_kind, optional, default, spec)
        try:
            validate_value(field, default)
        except ParamError as exc:
            raise ParamSchemaError(f"{params_type.__qualname__}: the default is not allowed. {exc}") from exc
        if spec.choices is not None:
            for choice in spec.choices:
                try:
                    _coerce(field, choice, kind if kind != "list" else item_kind)
                except ParamError as exc:
                    raise ParamSchemaError(f"{params_type.__qualname__}.{f.name}: choice {choice!r} is not a "
                                           f"{kind}.") from exc
        fields.append(field)
    prompts = [f.name for f in fields if f.spec.prompt]
    if len(prompts) > 1:
        raise ParamSchemaError(f"{params_type.__qualname__}: only one field may be the prompt, got {prompts}.")
    if any(f.spec.prompt and f.kind != "str" for f in fields):
        raise ParamSchemaError(f"{params_type.__qualname__}: the prompt field must be a str.")
    return tuple(fields)


def _resolve_type(owner: type, name: str, tp: Any) -> tuple[str, str | None, bool]:
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            raise ParamSchemaError(f"{owner.__qualname__}.{name}: only `T | None` unions are supported, got {tp}.")
        optional, tp, origin = True, args[0], typing.get_origin(args[0])
    if tp in _SCALARS:
        return _SCALARS[tp], None, optional
    if origin is list:
        (item,) = typing.get_args(tp) or (None,)
        if item in _SCALARS:
            return "list", _SCALARS[item], optional
    raise ParamSchemaError(
        f"{owner.__qualname__}.{name}: unsupported type {tp!r}; use str, int, float, bool, Path, list[...] of "
        "those, or `T | None`."
    )


def prompt_field(params_type: type) -> str | None:
    """Name of the field marked ``prompt=True``, if any."""
    return next((f.name for f in schema(params_type) if f.spec.prompt), None)


def load_option_names(params_type: type) -> tuple[str, ...]:
    """Names of the fields marked ``load_option=True``."""
    return tuple(f.name for f in schema(params_type) if f.spec.load_option)


# ----------------------------------------------------------------------------------------- validation


def validate(params: Any, params_type: type | None = None) -> Any:
    """Check every field of ``params``; return a normalised copy (ints widened to floats, tuples to lists).

    Raises :class:`ParamError` naming the first field that is not allowed.
    """
    params_type = params_type or type(params)
    if not isinstance(params, params_type):
        raise ParamError("params", params, f"expected {params_type.__qualname__}")
    values = {f.name: validate_value(f, getattr(params, f.name)) for f in schema(params_type)}
    return params_type(**values)


def validate_value(field: ParamField, value: Any) -> Any:
    """Check one value against its field; return it normalised, or raise :class:`ParamError`."""
    value = _normalise(field, value)
    _check_value(field, value)
    return value


def _normalise(field: ParamField, value: Any) -> Any:
    if value is None:
        return None
    if field.kind == "list":
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ParamError(field.name, value, f"expected a list of {field.item_kind} values")
        return [_coerce(field, item, field.item_kind) for item in value]
    return _coerce(field, value, field.kind)


def _coerce(field: ParamField, value: Any, kind: str | None) -> Any:
    """Accept a Python value of the right type (ints for floats, str for paths); reject anything else.

    ``kind`` is None only for the items of a list field without an item kind: nothing is accepted then.
    """
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, int) and abs(value) > 2**53:
                raise ParamError(field.name, value, "too large for a number")
            value = float(value)
            if not math.isfinite(value):
                raise ParamError(field.name, value, "must be a finite number")
            return value
    elif kind == "str":
        if isinstance(value, str):
            if "\x00" in value:
                raise ParamError(field.name, value, "must not contain NUL characters")
            return value
    elif kind == "path":
        if isinstance(value, Path) or isinstance(value, str):
            text = str(value)
            if not text or "\x00" in text:
                raise ParamError(field.name, value, "must be a non-empty file path")
            return Path(text)
    raise ParamError(field.name, value, f"expected {_describe_kind(kind)}")


def _check_value(field: ParamField, value: Any) -> None:
    spec = field.spec
    if value is None:
        if not field.optional:
            raise ParamError(field.name, value, "a value is required")
        return
    if field.kind == "list":
        n = len(value)
        if spec.min_items is not None and n < spec.min_items:
            raise ParamError(field.name, value, f"needs at least {spec.min_items} item(s)")
        if spec.max_items is not None and n > spec.max_items:
            raise ParamError(field.name, value, f"allows at most {spec.max_items} item(s)")
        for item in value:
            _check_scalar(field, item)
    else:
        _check_scalar(field, value)


def _check_scalar(field: ParamField, value: Any) -> None:
    spec = field.spec
    if spec.choices is not None and value not in spec.choices:
        raise ParamError(field.name, value, "must be one of " + ", ".join(map(str, spec.choices)))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            raise ParamError(field.name, value, _range_text(spec))
        if spec.max is not None and value > spec.max:
            raise ParamError(field.name, value, _range_text(spec))
        if spec.multiple_of and (not isinstance(value, int) or value % spec.multiple_of):
            raise ParamError(field.name, value, f"must be a multiple of {spec.multiple_of}")


def _range_text(spec: ParamSpec) -> str:
    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    low = None if spec.min is None else fmt(spec.min)
    high = None if spec.max is None else fmt(spec.max)
    if low is not None and high is not None:
        return f"must be between {low} and {high}"
    if low is not None:
        return f"must be at least {low}"
    return f"must be at most {high}"


def _describe_kind(kind: str | None) -> str:
    return {
        "bool": "true or false",
        "int": "a whole number",
        "float": "a number",
        "str": "text",
        "path": "a file path",
    }.get(kind or "", str(kind))


# --------------------------------------------------------------------------------------- from strings


def parse_value(field: ParamField, text: str) -> Any:
    """Parse the text form of one value (as typed after ``--param name=``) and validate it.

    Booleans: true/false, yes/no, on/off, 1/0. Lists: a JSON array (``["a, b", "c"]``) or comma-separated items
    (``a,b,c``; empty text is the empty list). Optional fields: empty text, ``none`` or ``null`` mean no value
    (for optional text fields only empty text does).
    """
    if not isinstance(text, str):
        raise ParamError(field.name, text, "expected text to parse")
    if field.optional and text.strip().lower() in _NONE and not (field.kind == "str" and text.strip()):
        return None
    if field.kind == "list":
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except (ValueError, RecursionError):
                raise ParamError(field.name, text, "not a valid JSON list") from None
            if not isinstance(items, list):
                raise ParamError(field.name, text, "not a valid JSON list")
            value = [_parse_json_item(field, item) for item in items]
        else:
            value = [] if not stripped else [_parse_scalar(field, part.strip(), field.item_kind) for part in
                                             text.split(",")]
    else:
        value = _parse_scalar(field, text, field.kind)
    return validate_value(field, value)


def _parse_json_item(field: ParamField, item: Any) -> Any:
    if isinstance(item, str) and field.item_kind not in ("str", "path"):
        return _parse_scalar(field, item, field.item_kind)
    return item


def _parse_scalar(field: ParamField, text: str, kind: str | None) -> Any:
    """Parse one value's text as ``kind`` (None, a list without an item kind, parses nothing)."""
    if kind in ("str", "path"):
        return text
    word = text.strip()
    if kind == "bool":
        low = word.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ParamError(field.name, text, "expected true or false (yes/no, on/off, 1/0)")
    if kind == "int":
        if not _INT_TEXT.fullmatch(word):
            raise ParamError(field.name, text, "expected a whole number")
        return int(word)
    if kind == "float":
        try:
            if not word.isascii() or len(word) > 100:
                raise ValueError
            value = float(word)
        except ValueError:
            raise ParamError(field.name, text, "expected a number") from None
        if not math.isfinite(value):
            raise ParamError(field.name, text, "must be a finite number")
        return value
    raise ParamError(field.name, text, f"cannot parse {kind}")  # unreachable for a checked schema


def parse_assignments(params_type: type, assignments: Iterable[str], base: Any = None) -> Any:
    """Build validated params from ``name=value`` strings, starting from ``base`` (or the defaults).

    Names may use ``-`` for ``_``. Repeating a list field appends (``--param stop=a --param stop=b``); repeating
    another field keeps the last value. Unknown names raise :class:`ParamError` listing the known ones.
    """
    fields = {f.name: f for f in schema(params_type)}
    values = {name: getattr(base, name) for name in fields} if base is not None else {
        name: f.default_value() for name, f in fields.items()}
    seen_lists: set[str] = set()
    for assignment in assignments:
        if not isinstance(assignment, str) or "=" not in assignment:
            raise ParamError("param", assignment, "expected name=value")
        raw_name, text = assignment.split("=", 1)
        name = raw_name.strip().replace("-", "_")
        if name not in fields:
            raise ParamError(raw_name.strip() or "param", text, _unknown_name_text(name, fields))
        field = fields[name]
        value = parse_value(field, text)
        if field.kind == "list" and name in seen_lists and value is not None and values[name] is not None:
            value = validate_value(field, list(values[name]) + value)
        values[name] = value
        if field.kind == "list":
            seen_lists.add(name)
    return validate(params_type(**values), params_type)


def _unknown_name_text(name: str, fields: Mapping[str, ParamField]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    return f"no such parameter; {suggestion}known parameters: {', '.join(fields)}"


# ------------------------------------------------------------------------------------------------ JSON


def to_json(params: Any) -> dict[str, Any]:
    """A JSON-ready dict of the params (paths become strings)."""
    out: dict[str, Any] = {}
    for f in schema(type(params)):
        value = getattr(params, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple)):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[f.name] = value
    return out


def from_json(params_type: type, data: Any, *, strict: bool = False) -> Any:
    """Params from a dict read back from metadata.

    Missing fields take their defaults. Unknown keys are ignored (metadata written by a newer version of the
    generator still loads) unless ``strict``. Raises :class:`ParamError` for a value that is not allowed.
    """
    if not isinstance(data, Mapping):
        raise ParamError("params", data, "expected a JSON object")
    fields = {f.name: f for f in schema(params_type)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            if strict:
                raise ParamError(str(key), value, _unknown_name_text(str(key), fields))
            continue
        field = fields[key]
        if field.kind == "list" and isinstance(value, list):
            value = [_parse_json_item(field, item) for item in value]
        values[key] = validate_value(field, value)
    for name, field in fields.items():
        values.setdefault(name, field.default_value())
    return params_type(**values)


# ------------------------------------------------------------------------------------------- loose values


def fit_params(params_type: type, values: Mapping[str, Any]) -> Any:
    """Params from loose values (metadata another tool, or an older version, wrote): each field is brought into
    its type and range where it sensibly can be — numbers from text, clamped to the range, rounded down to a
    multiple; NUL characters dropped; lists filtered and cut to ``max_items`` — and takes its default where it
    cannot. Never raises for what ``values`` holds."""
    fitted: dict[str, Any] = {}
    for field in schema(params_type):
        if field.name in values:
            try:
                fitted[field.name] = validate_value(field, _fit(field, values[field.name]))
            except (ParamError, ValueError, TypeError, OverflowError):
                pass
    return params_type(**fitted)


def _fit(field: ParamField, value: Any) -> Any:
    """``value`` brought into ``field``'s type and range where it sensibly can be; otherwise returned as is for
    :func:`validate_value` to refuse."""
    spec = field.spec
    if field.kind == "list":
        items = [v for v in value if isinstance(v, str) and v and "\x00" not in v] if isinstance(value, list) else value
        return items[: spec.max_items] if isinstance(items, list) and spec.max_items is not None else items
    if field.kind == "str" and isinstance(value, str):
        return value.replace("\x00", "")
    if field.kind not in ("int", "float"):
        return value
    number = loose_number(value)
    if number is None:
        return value
    if spec.choices is not None:  # a choice is taken as it is, never clamped onto another one
        return int(number) if field.kind == "int" and number == int(number) else number
    if spec.min is not None:
        number = max(number, spec.min)
    if spec.max is not None:
        number = min(number, spec.max)
    if field.kind == "float":
        return float(number)
    number = int(number)
    if spec.multiple_of:
        number -= number % spec.multiple_of
        if spec.min is not None and number < spec.min:
            number += spec.multiple_of
    return number


def loose_number(value: Any) -> float | int | None:
    """A finite int or float from a number or a number's text (at most 40 characters), else None."""
    if isinstance(value, str) and len(value) <= 40:
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if isinstance(value, int) or math.isfinite(value) else None
