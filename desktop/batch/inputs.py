"""A batch's inputs: the rows a batch is made from, for any generator.

* :func:`read_prompts` — a prompt list: plain lines (blank and ``#`` lines skipped; a line starting with ``--``
  holds AUTOMATIC1111 "prompts from file" options: ``--prompt "a cat" --negative_prompt "blurry" --seed 5
  --steps 20 --cfg_scale 7 --width 512 --height 512 --sampler_name "Euler a"``), CSV (a header row naming the
  columns ``prompt``, ``negative_prompt``, ``seed``, ``model`` and any parameter of the generator) or JSONL (one
  object a line: ``prompt``, ``seed``, ``model``, ``params: {...}`` and/or the parameters themselves);
* :func:`expand_template` — prompts from a ``dynamicprompts`` template (``a {red|green} __animals__``), random or
  every combination, wildcards from a folder of ``NAME.txt`` files;
* :func:`folder_rows` — a folder of input files: pictures to start from (image-to-image variations), texts as
  prompts (to continue, rewrite or speak).

Values are typed and checked with the generator's own ``Params`` schema (:mod:`desktop.api.params`); a value that
is not allowed, an unknown column or option, a malformed row is a :class:`BatchInputError` naming the row and the
column. Nothing here imports Qt, torch or another heavy library (``dynamicprompts`` only inside
:func:`expand_template`).
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api.errors import ParamError, StudioloError
from desktop.api.params import ParamField, parse_value, prompt_field, schema, validate_value
from desktop.engine.jobs import MAX_SEED

__all__ = ["BatchRow", "BatchInputError", "read_prompts", "expand_template", "folder_rows", "IMAGE_SUFFIXES",
           "TEXT_SUFFIXES", "MAX_INPUT_BYTES", "MAX_TEMPLATE_PROMPTS"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
"""Input files taken as pictures to start from (image-to-image)."""
TEXT_SUFFIXES = frozenset({".txt", ".md"})
"""Input files taken as prompts (texts to continue, rewrite or speak)."""
MAX_INPUT_BYTES = 64 * 1024 * 1024
"""The largest prompt list read (bytes)."""
MAX_TEXT_INPUT_BYTES = 1024 * 1024
"""The largest text file of a folder of inputs read as a prompt (bytes)."""
MAX_TEMPLATE_PROMPTS = 100_000
"""The most prompts a template may expand to."""

_HINT = "Correct it in the file, or skip the bad rows (--skip-bad-rows) to run the others."
# AUTOMATIC1111 "prompts from file" option names → Studiolo's (the specials prompt/seed/model, or a Params field)
_A1111_ALIASES = {"sd_model": "model", "cfg_scale": "guidance_scale", "n_iter": "batch_count",
                  "subseed": "variation_seed", "subseed_strength": "variation_strength"}
_SAMPLER_FIELDS = ("sampler", "scheduler")  # what --sampler_name sets, whichever the Params has
_SPECIAL = ("prompt", "seed", "model")


@dataclass(frozen=True)
class BatchRow:
    """One row of a batch's input: the prompt and the overrides it brings.

    ``number`` is the 1-based line (plain and JSONL lists, CSV: the spreadsheet row, the header being row 1) or
    position (a folder's files, sorted by name) in the source, for messages. ``prompt`` None keeps the base
    params' prompt. ``params`` are JSON-ready per-row values by the names of the generator's ``Params`` fields.
    ``seed`` and ``model`` override the batch's. ``source`` is an input file (a folder's picture or text)."""

    number: int
    prompt: str | None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    model: str | None = None
    source: Path | None = None


class BatchInputError(ParamError):
    """A batch input that cannot be used: ``row`` (1-based; 0 for the input as a whole, e.g. a template) and
    ``column`` (a column, key or option name; None when the row as a whole is bad) say where; the message names
    both. A :class:`~desktop.api.ParamError`, so everything that reports parameter errors reports it."""

    def __init__(self, row: int, column: str | None, problem: str, *, file: str | None = None,
                 hint: str | None = _HINT) -> None:
        where = [part for part in (file, f"row {row}" if row else None,
                                   f"column {column!r}" if column is not None else None) if part]
        message = f"{', '.join(where)}: {problem}" if where else problem
        StudioloError.__init__(self, message if file else message[:1].upper() + message[1:], hint=hint)
        self.row = row
        self.column = column
        self.problem = problem
        self.field = column or "row"
        self.value = row
        self.allowed = problem


# ------------------------------------------------------------------------------------------------ lists


def read_prompts(path: Path, params_type: type, *, skip_bad: bool = False
                 ) -> tuple[list[BatchRow], list[BatchInputError]]:
    """The rows of a prompt list, by its suffix: ``.csv``, ``.jsonl``, anything else plain lines.

    Every bad row is found. With ``skip_bad`` the good rows come back with the errors of the bad ones; otherwise the
    first error is raised (its hint counts the others). A problem with the file as a whole (unreadable, too large,
    an unknown CSV column, a generator that takes no prompt given prompts) is raised either way.
    """
    path = Path(path)
    text = _read_text(path)
    fields = {f.name: f for f in schema(params_type)}
    reader = _Reader(fields, prompt_field(params_type), path.name)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = reader.csv_rows(text)
    elif suffix == ".jsonl":
        rows = reader.jsonl_rows(text)
    else:
        rows = reader.line_rows(text)
    if reader.errors and not skip_bad:
        first = reader.errors[0]
        others = len(reader.errors) - 1
        if others:
            first.hint = f"{others} more problem(s) in the list. {_HINT}"
        raise first
    return rows, reader.errors


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():
            raise BatchInputError(0, None, f"{path} is not a file.", hint="Choose a prompt list: .txt, .csv or .jsonl.")
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise BatchInputError(0, None, f"{path.name} is too large ({size // (1024 * 1024)} MB; at most "
                                  f"{MAX_INPUT_BYTES // (1024 * 1024)} MB).", hint="Split it into several lists.")
        data = path.read_bytes()
    except OSError as exc:
        raise BatchInputError(0, None, f"cannot read {path}: {exc.strerror or exc}.", hint=None) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BatchInputError(line, None, "not UTF-8 text.", file=path.name,
                              hint="Save the list as UTF-8 text.") from None


class _Reader:
    """Turns the cells of one source into rows, collecting the errors."""

    def __init__(self, fields: Mapping[str, ParamField], prompt_name: str | None, file: str) -> None:
        self.fields = fields
        self.prompt_name = prompt_name
        self.file = file
        self.errors: list[BatchInputError] = []

    def error(self, row: int, column: str | None, problem: str) -> None:
        self.errors.append(BatchInputError(row, column, problem, file=self.file))

    def fail(self, row: int, column: str | None, problem: str, hint: str | None = None) -> BatchInputError:
        return BatchInputError(row, column, problem, file=self.file, hint=hint)

    # -- plain lines and A1111 options

    def line_rows(self, text: str) -> list[BatchRow]:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("--"):
                row = self.options_row(number, stripped)
            else:
                row = self.row(number, {"prompt": stripped}, _parse_text)
            if row is not None:
                rows.append(row)
        return rows

    def options_row(self, number: int, line: str) -> BatchRow | None:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            self.error(number, None, f"cannot read the options ({exc}); quote values with spaces.")
            return None
        values: dict[str, Any] = {}
        i = 0
        while i < len(tokens):
            option = tokens[i]
            if not option.startswith("--") or len(option) == 2:
                self.error(number, None, f"expected an option like --steps, got {option!r}.")
                return None
            if i + 1 >= len(tokens):
                self.error(number, option, "the option has no value.")
                return None
            name = option[2:].replace("-", "_")
            name = _A1111_ALIASES.get(name, name)
            if name == "sampler_name":
                name = next((f for f in _SAMPLER_FIELDS if f in self.fields), name)
            if name not in _SPECIAL and name not in self.fields:
                self.error(number, option, "no such option for this generator; options: "
                           + ", ".join(["--prompt", "--seed", "--sd_model"] + [f"--{f}" for f in self.fields]) + ".")
                return None
            values[name] = tokens[i + 1]
            i += 2
        return self.row(number, values, _parse_text)

    # -- CSV

    def csv_rows(self, text: str) -> list[BatchRow]:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows: list[BatchRow] = []
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise self.fail(1, None, f"the header row is not valid CSV ({exc}).") from None
        if not header:
            return rows
        columns = [name.strip() for name in header]
        for name in columns:
            if not name:
                raise self.fail(1, None, "a column has no name.", hint="Name every column in the header row.")
            if name not in _SPECIAL and name not in self.fields:
                raise self.fail(1, name, "no such column for this generator; columns: "
                                + ", ".join([*_SPECIAL, *self.fields]) + ".",
                                hint="Rename or remove the column.")
        if len(set(columns)) != len(columns):
            twice = next(name for name in columns if columns.count(name) > 1)
            raise self.fail(1, twice, "the column is named twice.", hint="Keep one of them.")
        last_line = reader.line_num
        while True:
            start = last_line + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.error(start, None, f"not valid CSV ({exc}).")
                break  # the reader cannot go on after a broken quote
            last_line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) > len(columns):
                self.error(start, None, f"{len(cells)} cells for {len(columns)} columns; quote values that hold "
                           "commas.")
                continue
            values = {name: cell for name, cell in zip(columns, cells, strict=False) if cell.strip()}
            row = self.row(start, values, _parse_text)
            if row is not None:
                rows.append(row)
        return rows

    # -- JSONL

    def jsonl_rows(self, text: str) -> list[BatchRow]:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as exc:
                where = f" at character {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
                self.error(number, None, f"not valid JSON{where}.")
                continue
            if not isinstance(data, dict):
                self.error(number, None, "expected a JSON object ({\"prompt\": ...}).")
                continue
            values = {k: v for k, v in data.items() if k != "params"}
            nested = data.get("params", {})
            if not isinstance(nested, dict):
                self.error(number, "params", "expected a JSON object of parameters.")
                continue
            bad = next((k for k in values if k not in _SPECIAL and k not in self.fields), None)
            bad = bad if bad is not None else next((k for k in nested if k not in self.fields), None)
            if bad is not None:
                self.error(number, bad, "no such key for this generator; keys: "
                           + ", ".join([*_SPECIAL, "params", *self.fields]) + ".")
                continue
            values.update(nested)
            row = self.row(number, values, _parse_json)
            if row is not None:
                rows.append(row)
        return rows

    # -- one row

    def row(self, number: int, values: Mapping[str, Any], parse: Callable[[ParamField, Any], Any]
            ) -> BatchRow | None:
        """A row from ``values`` (names already checked); None (and the errors recorded) when a value is bad."""
        before = len(self.errors)
        prompt: str | None = None
        seed: int | None = None
        model: str | None = None
        params: dict[str, Any] = {}
        for name, raw in values.items():
            if name == "prompt" or (name == self.prompt_name and name in self.fields):
                if self.prompt_name is None:
                    raise self.fail(number, name, "this generator takes no prompt.",
                                    hint="Give its parameters as columns (or options) instead, or choose a "
                                         "generator that takes a prompt.")
                if not isinstance(raw, str) or "\x00" in raw:
                    self.error(number, name, "expected text.")
                else:
                    prompt = raw
            elif name == "seed":
                seed = self._seed(number, raw)
            elif name == "model":
                if raw is not None and not (isinstance(raw, str) and "\x00" not in raw):
                    self.error(number, name, "expected a model reference (text).")
                else:
                    model = raw.strip() or None if raw is not None else None
            else:
                try:
                    params[name] = _jsonable(parse(self.fields[name], raw))
                except ParamError as exc:
                    self.error(number, name, exc.message)
        if len(self.errors) > before:
            return None
        return BatchRow(number=number, prompt=prompt, params=params, seed=seed, model=model)

    def _seed(self, number: int, raw: Any) -> int | None:
        value = raw
        if isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                value = raw
        if value is None or value == -1:
            return None  # A1111's -1: a seed drawn by the batch's policy
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED:
            return value
        self.error(number, "seed", f"{raw!r} is not a seed; a whole number from 0 to {MAX_SEED}, or -1.")
        return None


def _parse_text(field: ParamField, text: str) -> Any:
    """A value typed as text (a CSV cell, an option's value); a sampler's A1111 name ("Euler a", "DPM++ 2M") is
    taken for the choice it spells."""
    if field.spec.choices is not None and field.name in _SAMPLER_FIELDS and text not in field.spec.choices:
        spelled = text.strip().lower().replace("++", "pp").replace(" ", "_").replace("-", "_")
        if spelled in field.spec.choices:
            text = spelled
    return parse_value(field, text)


def _parse_json(field: ParamField, value: Any) -> Any:
    """A JSON value (text accepted for a number, a flag or a list, as typed in a form)."""
    if isinstance(value, str) and field.kind not in ("str", "path"):
        return _parse_text(field, value)
    if field.kind == "list" and isinstance(value, list) and field.item_kind not in ("str", "path"):
        value = [parse_value(_item_field(field), v) if isinstance(v, str) else v for v in value]
    return validate_value(field, value)


def _item_field(field: ParamField) -> ParamField:
    return ParamField(field.name, field.item_kind or "str", None, False, None, field.spec)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- template


def expand_template(text: str, *, count: int, combinatorial: bool, wildcards: Path | None, seed: int
                    ) -> list[str]:
    """The prompts of a ``dynamicprompts`` template.

    Random (``combinatorial`` False): ``count`` prompts, each variant and wildcard drawn from a generator seeded
    with ``seed`` (the same seed gives the same prompts). Combinatorial: every combination, in the library's order,
    up to ``count`` of them (0: all, at most :data:`MAX_TEMPLATE_PROMPTS`). ``wildcards``: a folder of ``NAME.txt``
    files, one value a line, used as ``__NAME__`` (``__sub/NAME__`` for one in a sub-folder). A wildcard with no
    file (or an empty one), a malformed template, a folder that is not there: :class:`BatchInputError`.
    """
    if not isinstance(text, str) or not text.strip():
        raise BatchInputError(0, None, "the template is empty.", hint="Type a prompt template such as "
                              "'a {red|green} {cat|dog}'.")
    if count < 0 or (not combinatorial and count == 0):
        raise BatchInputError(0, None, f"cannot make {count} prompts.", hint="Ask for at least one prompt.")
    if count > MAX_TEMPLATE_PROMPTS:
        raise BatchInputError(0, None, f"{count} prompts are too many (at most {MAX_TEMPLATE_PROMPTS}).",
                              hint="Ask for fewer prompts.")
    if wildcards is not None and not Path(wildcards).is_dir():
        raise BatchInputError(0, None, f"the wildcard folder {wildcards} is not there.",
                              hint="Choose the folder that holds your NAME.txt wildcard files.")

    import pyparsing
    from dynamicprompts.generators import CombinatorialPromptGenerator, RandomPromptGenerator
    from dynamicprompts.wildcards import WildcardManager

    class _Missing(Exception):
        pass

    class StrictWildcards(WildcardManager):  # type: ignore[misc]
        """Refuses a wildcard with no values (the library would leave ``__NAME__`` in the prompt)."""

        def get_values(self, wildcard: str) -> Any:
            values = super().get_values(wildcard)
            if not len(values):
                raise _Missing(wildcard)
            return values

    manager = StrictWildcards(Path(wildcards) if wildcards is not None else None)
    try:
        if combinatorial:
            limit = count or MAX_TEMPLATE_PROMPTS + 1
            prompts = CombinatorialPromptGenerator(manager).generate(text, max_prompts=limit)
        else:
            prompts = RandomPromptGenerator(manager, seed=seed).generate(text, count)
    except _Missing as exc:
        name = str(exc)
        where = f"no file {name}.txt in {wildcards}" if wildcards is not None else "no wildcard folder is chosen"
        raise BatchInputError(0, None, f"unknown wildcard __{name}__: {where} (or the file is empty).",
                              hint="Add the file, fix the name, or choose the folder that holds it.") from None
    except pyparsing.ParseBaseException as exc:
        raise BatchInputError(0, None, f"the template cannot be read at character {exc.loc + 1}: {exc.msg}.",
                              hint="Check its braces: {a|b} for choices, __name__ for a wildcard.") from None
    if len(prompts) > MAX_TEMPLATE_PROMPTS:
        raise BatchInputError(0, None, f"the template makes more than {MAX_TEMPLATE_PROMPTS} prompts.",
                              hint="Ask for fewer (a count), or use random prompts.")
    return [str(p) for p in prompts]


# ------------------------------------------------------------------------------------------------ folder


def folder_rows(folder: Path, generator: Any) -> list[BatchRow]:
    """One row per input file of ``folder`` (not its sub-folders or hidden files), sorted by name: a picture
    (PNG, JPEG, WebP) is a row with ``source`` the file (the plan starts an image-to-image job from it); a text
    (``.txt``, ``.md``) is a row whose prompt is the file's text, ``source`` the file. Other files are ignored.
    A picture for a generator that cannot start from one, a text for one that takes no prompt, an unreadable
    text, or a folder with no input file: :class:`BatchInputError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BatchInputError(0, None, f"{folder} is not a folder.", hint="Choose the folder of input files.")
    takes_images = "img2img" in getattr(generator, "input_modes", {})
    takes_text = prompt_field(generator.Params) is not None
    files = sorted((p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()
                    and p.suffix.lower() in IMAGE_SUFFIXES | TEXT_SUFFIXES), key=lambda p: p.name)
    if not files:
        raise BatchInputError(0, None, f"{folder} holds no input files.",
                              hint="Put pictures (PNG, JPEG, WebP) or texts (.txt, .md) in it.")
    rows = []
    for number, path in enumerate(files, 1):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if not takes_images:
                raise BatchInputError(number, None, f"{path.name} is a picture, and {generator.name} cannot start "
                                      "from one.", hint="Remove the pictures, or choose an image generator.")
            rows.append(BatchRow(number=number, prompt=None, params={}, source=path))
            continue
        if not takes_text:
            raise BatchInputError(number, None, f"{path.name} is a text, and {generator.name} takes no prompt.",
                                  hint="Remove the texts, or choose a generator that takes a prompt.")
        try:
            size = path.stat().st_size
            if size > MAX_TEXT_INPUT_BYTES:
                raise BatchInputError(number, None, f"{path.name} is too large for a prompt ({size} bytes).",
                                      hint="Split it, or remove it from the folder.")
            text = path.read_bytes().decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise BatchInputError(number, None, f"{path.name} is not UTF-8 text.",
                                  hint="Save it as UTF-8 text, or remove it from the folder.") from None
        except OSError as exc:
            raise BatchInputError(number, None, f"cannot read {path.name}: {exc.strerror or exc}.",
                                  hint=None) from exc
        rows.append(BatchRow(number=number, prompt=text.replace("\x00", ""), params={}, source=path))
    return rows
