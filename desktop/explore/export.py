"""A finished grid as one file: a labelled PNG (image generators) or a Markdown or HTML page (text and audio).

Both record the grid so that it can be run again (:func:`grid_record`): the PNG in its ``studiolo-grid`` text
chunk, the Markdown page in its front matter (``studiolo-grid: {JSON}``, valid YAML). The PNG puts the x axis's
values across the top and the y axis's down the left; with a z axis, one such grid per z value, stacked, each under
a heading. A cell with no image (failed or cancelled) is a grey box saying "failed". An HTML page (:func:`grid_html`)
records the grid in a ``<script type="application/json" id="studiolo-grid">`` element; its audio cells play and
link their files.

:func:`read_grid_spec` reads any of the three back as a :class:`~desktop.explore.grid.GridSpec` for a generator, to
run the grid again: a file that holds no grid, a damaged record or one made for another generator is a
:class:`GridFileError` naming the file and what is wrong, before any job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api.errors import StudioloError
from desktop.explore.grid import GridCell, GridSpec

__all__ = ["GRID_CHUNK", "Layout", "grid_record", "image_layout", "grid_png", "grid_markdown", "grid_html",
           "EXCERPT_CHARS", "GridFileError", "read_grid_record", "spec_from_record", "read_grid_spec",
           "MAX_RECORD_CHARS", "grid_file"]

GRID_CHUNK = "studiolo-grid"
"""The PNG text chunk (and front matter key) holding the grid's record."""
EXCERPT_CHARS = 200
PAD = 4
_BACKGROUND, _INK, _MISSING = (255, 255, 255), (0, 0, 0), (160, 160, 160)


def grid_record(spec: GridSpec, cells: list[GridCell]) -> dict[str, Any]:
    """What re-runs the grid: the generator, each axis's field and text, the base params, model and seed (the seed
    the cells shared when no axis set it, so that the same grid comes out)."""
    seed = spec.seed
    if seed is None and cells and all(c.seed == cells[0].seed for c in cells):
        seed = cells[0].seed
    return {"generator": spec.generator_id, "axes": [{"field": a.field, "values": a.text} for a in spec.axes],
            "params": dict(spec.base_params), "model": spec.model, "seed": seed}


def _axis_values(spec: GridSpec, n: int) -> list[str]:
    if n >= len(spec.axes):
        return [""]
    axis = spec.axes[n]
    return [f"{axis.label}: {v}" for v in axis.value_labels]


@dataclass(frozen=True)
class Layout:
    """Where things go in a grid picture: each cell ``cell_w`` × ``cell_h`` in columns ``col_w`` wide and rows
    ``row_h`` high, after a left margin ``left`` (the y labels) and, in each z block, a heading ``heading`` high
    and a top margin ``top`` (the x labels); ``size`` is the whole picture's."""

    cell_w: int
    cell_h: int
    col_w: int
    row_h: int
    left: int
    top: int
    heading: int
    columns: int
    rows: int
    blocks: int

    @property
    def block_h(self) -> int:
        return self.heading + self.top + self.rows * self.row_h

    @property
    def size(self) -> tuple[int, int]:
        return self.left + self.columns * self.col_w, self.blocks * self.block_h


def _text_size(draw: Any, text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    box = draw.textbbox((0, 0), text)
    return int(box[2] - box[0]), int(box[3] - box[1])


def image_layout(spec: GridSpec, images: list[Any]) -> Layout:
    """The layout of the grid picture of ``spec`` whose cells' images are ``images`` (None for a missing one)."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    sizes = [im.size for im in images if im is not None] or [(64, 64)]
    cell_w, cell_h = max(s[0] for s in sizes), max(s[1] for s in sizes)
    xs, ys, zs = (_axis_values(spec, n) for n in range(3))
    line_h = max(_text_size(draw, t)[1] for t in [*xs, *ys, *zs, "Ag"]) + 2 * PAD
    col_w = max(cell_w, *(_text_size(draw, t)[0] + 2 * PAD for t in xs))
    left = max(_text_size(draw, t)[0] for t in ys) + 2 * PAD if len(spec.axes) > 1 else 0
    heading = line_h if len(spec.axes) > 2 else 0
    return Layout(cell_w, cell_h, col_w, max(cell_h, line_h), left, line_h, heading, len(xs), len(ys), len(zs))


def grid_png(spec: GridSpec, cells: list[GridCell], images: dict[tuple[int, int, int], Any]) -> bytes:
    """The grid picture as PNG bytes; ``images`` maps a cell's index to its PIL image (missing: drawn as failed)."""
    import io

    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    layout = image_layout(spec, [images.get(c.index) for c in cells])
    picture = Image.new("RGB", layout.size, _BACKGROUND)
    draw = ImageDraw.Draw(picture)
    xs, ys, zs = (_axis_values(spec, n) for n in range(3))
    for z, heading in enumerate(zs):
        y0 = z * layout.block_h
        if layout.heading:
            draw.text((PAD, y0 + PAD), heading, fill=_INK)
        top = y0 + layout.heading
        for x, label in enumerate(xs):
            draw.text((layout.left + x * layout.col_w + PAD, top + PAD), label, fill=_INK)
        for y, label in enumerate(ys):
            draw.text((PAD, top + layout.top + y * layout.row_h + PAD), label, fill=_INK)
    for cell in cells:
        x, y, z = cell.index
        origin = (layout.left + x * layout.col_w, z * layout.block_h + layout.heading + layout.top + y * layout.row_h)
        image = images.get(cell.index)
        if image is None:
            box = (origin[0], origin[1], origin[0] + layout.cell_w - 1, origin[1] + layout.cell_h - 1)
            draw.rectangle(box, fill=_MISSING)
            draw.text((origin[0] + 1, origin[1] + 1), "failed", fill=_INK)
        else:
            picture.paste(image.convert("RGB"), origin)
    info = PngInfo()
    info.add_text(GRID_CHUNK, json.dumps(grid_record(spec, cells), ensure_ascii=False))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def grid_markdown(spec: GridSpec, cells: list[GridCell], contents: dict[tuple[int, int, int], str]) -> str:
    """The grid as a Markdown page: front matter recording it, then one table per z value (a section each), rows
    the y axis's values, columns the x axis's; a cell holds ``contents[index]`` (text excerpts, file paths) or
    "failed"."""
    record = json.dumps(grid_record(spec, cells), ensure_ascii=False)
    xs, ys, zs = (_axis_values(spec, n) for n in range(3))
    lines = ["---", f"{GRID_CHUNK}: {record}", "---", "", f"# Grid of {spec.generator_id}", ""]
    for z, heading in enumerate(zs):
        if heading:
            lines += [f"## {_md_cell(heading)}", ""]
        lines.append("| " + " | ".join([""] + [_md_cell(x) for x in xs]) + " |")
        lines.append("|" + "---|" * (len(xs) + 1))
        for y, label in enumerate(ys):
            row = [_md_cell(label)]
            for x in range(len(xs)):
                content = contents.get((x, y, z))
                row.append("failed" if content is None else _md_cell(content))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def grid_file(kind: str, suffix: str, spec: GridSpec, cells: list[GridCell],
              results: dict[tuple[int, int, int], list[Any]], saved: dict[tuple[int, int, int], list[Path]],
              notes: dict[tuple[int, int, int], str] | None = None) -> bytes:
    """The bytes of a finished grid saved as ``suffix`` (``.png`` for images; ``.md`` or ``.html`` for text and
    audio): ``results`` and ``saved`` are each done cell's outputs and saved files (a picture not in memory is read
    from its file); ``notes`` what to write in a cell that has neither (e.g. "cancelled"; else "failed")."""
    notes = notes or {}
    if suffix == ".png":
        images = {}
        for index, outputs in results.items():
            image = next((o.image for o in outputs if getattr(o, "image", None) is not None), None)
            if image is None and saved.get(index):
                from PIL import Image

                with Image.open(saved[index][0]) as opened:
                    image = opened.copy()
            if image is not None:
                images[index] = image
        return grid_png(spec, cells, images)
    if kind == "text":
        contents = {index: excerpt(" ".join(getattr(o, "text", "") for o in outputs))
                    for index, outputs in results.items()}
    elif suffix == ".html":
        contents = {index: "" for index in results}
    else:
        contents = {index: paths_text(paths) for index, paths in saved.items()}
    contents = {**{index: note for index, note in notes.items() if index not in results}, **contents}
    if suffix == ".html":
        return grid_html(spec, cells, contents, saved, audio=kind == "audio").encode("utf-8")
    return grid_markdown(spec, cells, contents).encode("utf-8")


def excerpt(text: str) -> str:
    """The first :data:`EXCERPT_CHARS` characters of a text, with … when cut."""
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def paths_text(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def grid_html(spec: GridSpec, cells: list[GridCell], contents: dict[tuple[int, int, int], str],
              files: dict[tuple[int, int, int], list[Path]] | None = None, *, audio: bool = False) -> str:
    """The grid as an HTML page: the record in a ``<script type="application/json" id="studiolo-grid">``, then one
    table per z value (rows the y axis's values, columns the x axis's). A cell holds ``contents[index]`` (a text's
    excerpt) and a link to each of ``files[index]`` (with a player before it when ``audio``), or "failed"."""
    from html import escape

    files = files or {}
    record = json.dumps(grid_record(spec, cells), ensure_ascii=False)
    record = record.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")  # safe in <script>
    xs, ys, zs = (_axis_values(spec, n) for n in range(3))
    title = escape(f"Grid of {spec.generator_id}")
    lines = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{title}</title>",
             f'<script type="application/json" id="{GRID_CHUNK}">{record}</script>',
             "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px;vertical-align:top}"
             "</style>", "</head><body>", f"<h1>{title}</h1>"]
    for z, heading in enumerate(zs):
        if heading:
            lines.append(f"<h2>{escape(heading)}</h2>")
        lines.append("<table><tr><th></th>" + "".join(f"<th>{escape(x)}</th>" for x in xs) + "</tr>")
        for y, label in enumerate(ys):
            row = [f"<tr><th>{escape(label)}</th>"]
            for x in range(len(xs)):
                index = (x, y, z)
                content, paths = contents.get(index), files.get(index, [])
                if content is None and not paths:
                    row.append("<td>failed</td>")
                    continue
                parts = [f"<p>{escape(content)}</p>"] if content else []
                for path in paths:
                    uri = escape(Path(path).resolve().as_uri())
                    if audio:
                        parts.append(f'<audio controls preload="none" src="{uri}"></audio>')
                    parts.append(f'<a href="{uri}">{escape(Path(path).name)}</a>')
                row.append("<td>" + "<br>".join(parts) + "</td>")
            lines.append("".join(row) + "</tr>")
        lines.append("</table>")
    lines += ["</body></html>", ""]
    return "\n".join(lines)


# -- reading a grid back -------------------------------------------------------------------------------------------

MAX_RECORD_CHARS = 200_000
"""The longest grid record read back (characters of JSON); three axes of the longest text and the params fit."""
_HEAD_BYTES = 1_000_000  # a page records its grid at its top: no more of it is read
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REREAD_HINT = "Open a grid that Studiolo saved (a .png, .md or .html file), or set the grid's axes by hand."


class GridFileError(StudioloError):
    """A file opened as a saved grid holds none, holds a damaged record, or was made for another generator."""


def read_grid_record(path: Path | str) -> dict[str, Any]:
    """The record (:func:`grid_record`) a saved grid holds: a PNG's ``studiolo-grid`` chunk (read without decoding
    the picture), a Markdown page's front matter or an HTML page's ``studiolo-grid`` script. Its shape is checked
    (generator, 1 to 3 axes of a field and its text, params, model, seed); its values are not (see
    :func:`spec_from_record`). Raises :class:`GridFileError`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except FileNotFoundError as exc:
        raise GridFileError(f"There is no file {path}.", hint=_REREAD_HINT) from exc
    except OSError as exc:
        raise GridFileError(f"Cannot read {path}: {exc.strerror or exc}.", hint=_REREAD_HINT) from exc
    text = _png_record(path) if head.startswith(_PNG_SIGNATURE) else _page_record(path, head)
    if text is None:
        raise GridFileError(f"{path.name} holds no Studiolo grid.", hint=_REREAD_HINT)
    if len(text) > MAX_RECORD_CHARS:
        raise _damaged(path, f"the record is too long ({len(text)} characters, at most {MAX_RECORD_CHARS})")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _damaged(path, f"the record is not JSON ({exc})") from exc
    return _checked_record(data, path)


def spec_from_record(record: dict[str, Any], generator: Any) -> GridSpec:
    """The :class:`GridSpec` a record (:func:`read_grid_record`) describes, for ``generator``: its axes parsed and
    its params checked against the generator's as they are now. Raises :class:`GridFileError` for a record made for
    another generator, :class:`~desktop.api.ParamError` (named) for a value this generator does not take."""
    from desktop.api.params import from_json
    from desktop.explore.axes import parse_axis

    made_with = record["generator"]
    if made_with != generator.id:
        raise GridFileError(f"This grid was made with {made_with}, not {generator.id}.",
                            hint=f"Open it from the page of {made_with}, or run it with "
                                 "`studiolo explore grid --from FILE`.")
    axes = tuple(parse_axis(generator, axis["field"], axis["values"]) for axis in record["axes"])
    from_json(generator.Params, record["params"], strict=True)
    return GridSpec(generator.id, axes, dict(record["params"]), record["model"], record["seed"])


def read_grid_spec(path: Path | str, generator: Any) -> GridSpec:
    """The grid saved in ``path`` as a :class:`GridSpec` for ``generator``, to run it again (see
    :func:`read_grid_record` and :func:`spec_from_record` for the errors)."""
    return spec_from_record(read_grid_record(path), generator)


def _damaged(path: Path, what: str) -> GridFileError:
    return GridFileError(f"The grid recorded in {path.name} is damaged: {what}.", hint=_REREAD_HINT)


def _png_record(path: Path) -> str | None:
    from PIL import PngImagePlugin

    try:
        with open(path, "rb") as f:  # the chunks before the picture's data only: a huge grid is not decoded
            text = PngImagePlugin.PngImageFile(f).info.get(GRID_CHUNK)
    except Exception as exc:  # truncated, a bad chunk, a text chunk too big: whatever PIL says of a damaged file
        raise GridFileError(f"{path.name} is not a readable PNG file ({exc}).", hint=_REREAD_HINT) from exc
    return text if isinstance(text, str) else None


def _page_record(path: Path, head: bytes) -> str | None:
    try:
        page = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut at the end of what was read
            raise GridFileError(f"{path.name} is not a grid page (not UTF-8 text).", hint=_REREAD_HINT) from exc
        page = head[:exc.start].decode("utf-8")
    lines = page.lstrip("\ufeff").splitlines()
    if lines and lines[0].strip() == "---":
        for line in lines[1:]:
            if line.strip() == "---":
                break
            if line.startswith(f"{GRID_CHUNK}:"):
                return line[len(GRID_CHUNK) + 1:].strip()
        return None
    if "<script" in page:
        return _html_record(page)
    return None


def _html_record(page: str) -> str | None:
    from html.parser import HTMLParser

    class _Finder(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.inside, self.found = False, None
            self.parts: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "script" and ("id", GRID_CHUNK) in attrs and self.found is None:
                self.inside = True

        def handle_data(self, data: str) -> None:
            if self.inside:
                self.parts.append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "script" and self.inside:
                self.inside, self.found = False, "".join(self.parts)

    finder = _Finder()
    finder.feed(page)
    finder.close()
    return finder.found


def _checked_record(data: Any, path: Path) -> dict[str, Any]:
    from desktop.explore.grid import MAX_AXES

    if not isinstance(data, dict):
        raise _damaged(path, "the record is not a JSON object")
    generator = data.get("generator")
    if not isinstance(generator, str) or not generator.strip():
        raise _damaged(path, "it names no generator")
    axes = data.get("axes")
    if not isinstance(axes, list) or not 1 <= len(axes) <= MAX_AXES:
        raise _damaged(path, f"it needs 1 to {MAX_AXES} axes")
    for axis in axes:
        if not (isinstance(axis, dict) and isinstance(axis.get("field"), str) and isinstance(axis.get("values"), str)):
            raise _damaged(path, 'an axis is not {"field": NAME, "values": TEXT}')
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise _damaged(path, "its params are not a JSON object")
    model, seed = data.get("model"), data.get("seed")
    if model is not None and not isinstance(model, str):
        raise _damaged(path, "its model is not text")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise _damaged(path, "its seed is not a whole number")
    return {"generator": generator, "axes": [{"field": a["field"], "values": a["values"]} for a in axes],
            "params": params, "model": model, "seed": seed}
