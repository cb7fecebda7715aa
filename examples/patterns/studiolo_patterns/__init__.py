"""Patterns: procedural images for Studiolo — stripes, checkers, rings, plasma and noise in a palette's colours.

A complete torch-free plugin, started with `studiolo plugins new patterns --kind image` and grown from there. Its
model is a palette file (palette.json, a list of "#rrggbb" colours); the demo model is a palette written offline.
It needs neither numpy nor torch: every pattern is a value per pixel, turned into a colour through a table of the
palette's colours (blended, or in hard bands), one row of plain bytes at a time, handed to Pillow at the end.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop.api import Generator, ImageOutput, JobCancelled, ModelFormatError, hookimpl, param, read_json_object

DEMO_PALETTE = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#fefae0"]
PATTERNS = ("stripes", "checkers", "rings", "plasma", "noise")
SHADES = 64  # colours in the table between two neighbouring palette colours

Row = Callable[[int], list[float]]  # y -> one value per x, in palette colours (1.0 = one colour further on)


@dataclass(frozen=True)
class PatternsParams:
    prompt: str = param("", prompt=True, help="A title for the image: stored with it, searchable in the gallery.")
    pattern: str = param("plasma", choices=PATTERNS, help="What to draw.")
    width: int = param(256, min=8, max=2048, multiple_of=8, help="Width in pixels.")
    height: int = param(256, min=8, max=2048, multiple_of=8, help="Height in pixels.")
    scale: int = param(24, min=1, max=1024, help="The size of the pattern's stripes, squares, rings or blobs, in "
                                                 "pixels.")
    angle: float = param(30.0, min=0.0, max=180.0, step=5.0, help="The direction of the stripes, in degrees.")
    smooth: bool = param(True, help="Blend from one palette colour to the next; off: hard bands of colour.")


class PatternsGenerator(Generator):
    id = "image.patterns"
    name = "Patterns"
    kind = "image"
    version = "1.0.0"
    description = "Procedural stripes, checkers, rings, plasma and noise in the colours of a palette."
    Params = PatternsParams
    default_model = "demo"

    def build_demo_model(self, dest: Path) -> None:
        (dest / "palette.json").write_text(json.dumps({"colours": DEMO_PALETTE}), encoding="utf-8")

    def load(self, model_path, device, options):
        # A model is a palette.json file, or a folder holding one.
        path = model_path / "palette.json" if model_path.is_dir() else model_path
        document = read_json_object(path, max_bytes=64 * 1024)  # never a pipe or a device; a palette is small
        try:
            palette = [bytes.fromhex(colour.removeprefix("#")) for colour in document["colours"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelFormatError(f"Cannot read the palette {path}: {exc}",
                                   hint='Choose a palette.json holding {"colours": ["#rrggbb", ...]}, or a folder '
                                        "with one.") from exc
        if len(palette) < 2 or any(len(colour) != 3 for colour in palette):
            raise ModelFormatError(f"The palette {path} needs at least two colours, each written #rrggbb.",
                                   hint="Add colours to it.")
        return palette

    def generate(self, palette, params, ctx):
        from PIL import Image  # imported when a job runs, not when Studiolo starts

        rng = random.Random(ctx.seed)  # all randomness from the job's seed: the same seed draws the same image
        colours = rng.sample(palette, len(palette))
        table = colour_table(colours, params.smooth)
        row_values = PATTERN_ROWS[params.pattern](params, rng, len(colours))
        width, height = params.width, params.height
        pixels = bytearray(width * height * 3)  # black until drawn

        def image():
            return Image.frombytes("RGB", (width, height), bytes(pixels))

        for y in range(height):
            if ctx.cancelled:  # checked every row; the rows drawn so far are handed over
                raise JobCancelled(partial=[ImageOutput(image=image(), partial=True)])
            row = b"".join(table[math.floor(value * SHADES) % len(table)] for value in row_values(y))
            pixels[y * width * 3:(y + 1) * width * 3] = row
            ctx.progress(y + 1, height)
            if (y + 1) % max(1, height // 8) == 0:
                ctx.preview(image())
        return [ImageOutput(image=image(), metadata={"pattern": params.pattern, "colours": len(colours)})]


def colour_table(colours: list[bytes], smooth: bool) -> list[bytes]:
    """``SHADES`` entries per palette colour: a blend towards the next colour when ``smooth``, else the colour."""
    table = []
    for i, start in enumerate(colours):
        end = colours[(i + 1) % len(colours)]
        for shade in range(SHADES):
            t = shade / SHADES if smooth else 0.0
            table.append(bytes(round(a + (b - a) * t) for a, b in zip(start, end, strict=True)))
    return table


def stripes(params: PatternsParams, rng: random.Random, n: int) -> Row:
    angle = math.radians(params.angle)
    dx, dy = math.cos(angle) / params.scale, math.sin(angle) / params.scale
    offset = rng.uniform(0, n)
    columns = [x * dx for x in range(params.width)]
    return lambda y: [c + y * dy + offset for c in columns]


def checkers(params: PatternsParams, rng: random.Random, n: int) -> Row:
    offset = rng.randrange(n)
    columns = [x // params.scale for x in range(params.width)]
    return lambda y: [float(c + y // params.scale + offset) for c in columns]


def rings(params: PatternsParams, rng: random.Random, n: int) -> Row:
    cx, cy = rng.uniform(0, params.width), rng.uniform(0, params.height)
    return lambda y: [math.hypot(x - cx, y - cy) / params.scale for x in range(params.width)]


def plasma(params: PatternsParams, rng: random.Random, n: int) -> Row:
    """Four sine waves (across, down, diagonal, around a point) added up: smooth, seeded blobs."""
    s = params.scale
    p1, p2, p3, p4 = (rng.uniform(0, math.tau) for _ in range(4))
    cx, cy = rng.uniform(0, params.width), rng.uniform(0, params.height)
    across = [math.sin(x / s + p1) for x in range(params.width)]
    diagonal = [math.sin(d / (s * 1.5) + p3) for d in range(params.width + params.height)]

    def row(y: int) -> list[float]:
        down = math.sin(y / s + p2)
        return [(across[x] + down + diagonal[x + y] + math.sin(math.hypot(x - cx, y - cy) / s + p4) + 4) * n / 8
                for x in range(params.width)]

    return row


def noise(params: PatternsParams, rng: random.Random, n: int) -> Row:
    """Value noise: seeded random values on a grid ``scale`` pixels apart, smoothly interpolated between."""
    s = params.scale
    grid = [[rng.uniform(0, n) for _ in range(params.width // s + 2)] for _ in range(params.height // s + 2)]

    def smooth(t: float) -> float:
        return t * t * (3 - 2 * t)

    def row(y: int) -> list[float]:
        gy, ty = divmod(y, s)
        wy = smooth(ty / s)
        top, bottom = grid[gy], grid[gy + 1]
        values = []
        for x in range(params.width):
            gx, tx = divmod(x, s)
            wx = smooth(tx / s)
            upper = top[gx] + (top[gx + 1] - top[gx]) * wx
            lower = bottom[gx] + (bottom[gx + 1] - bottom[gx]) * wx
            values.append(upper + (lower - upper) * wy)
        return values

    return row


PATTERN_ROWS: dict[str, Callable[[PatternsParams, random.Random, int], Row]] = {
    "stripes": stripes, "checkers": checkers, "rings": rings, "plasma": plasma, "noise": noise}


@hookimpl
def register_generators(register):
    register(PatternsGenerator())
