"""A finished grid as one file: a labelled PNG (image generators) or a Markdown page (text and audio).

Both record the grid so that it can be run again (:func:`grid_record`): the PNG in its ``studiolo-grid`` text
chunk, the Markdown page in its front matter (``studiolo-grid: {JSON}``, valid YAML). The PNG puts the x axis's
values across the top and the y axis's down the left; with a z axis, one such grid per z value, stacked, each under
a heading. A cell with no image (failed or cancelled) is a grey box saying "failed".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.explore.grid import GridCell, GridSpec

__all__ = ["GRID_CHUNK", "Layout", "grid_record", "image_layout", "grid_png", "grid_markdown", "EXCERPT_CHARS"]

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


def excerpt(text: str) -> str:
    """The first :data:`EXCERPT_CHARS` characters of a text, with … when cut."""
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def paths_text(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths)
