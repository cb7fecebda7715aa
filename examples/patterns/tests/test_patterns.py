"""Tests for studiolo-patterns.

They use the fixtures of the pytest plugin Studiolo ships: `studiolo_project` (this package's plugin, found by the
entry point in pyproject.toml, installed or not) and `studiolo_run` (one job, through the real `load` and `generate`).
"""

from __future__ import annotations

import json

import pytest
from studiolo_patterns import DEMO_PALETTE, PATTERNS

from desktop.api import ImageOutput, ModelFormatError, ParamError

GENERATOR_ID = "image.patterns"
PALETTE = {tuple(bytes.fromhex(colour[1:])) for colour in DEMO_PALETTE}


@pytest.fixture
def generator(studiolo_project):
    return studiolo_project.generator(GENERATOR_ID)


def colours(image) -> set[tuple[int, int, int]]:
    return {colour for _, colour in image.getcolors(maxcolors=1 << 16)}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_draws_each_pattern_row_by_row_in_the_palette(generator, studiolo_run, pattern):
    params = {"pattern": pattern, "width": 48, "height": 32, "scale": 8, "smooth": False}
    result = studiolo_run(generator, params, model="demo", seed=1)
    (output,) = result.outputs
    assert isinstance(output, ImageOutput) and not output.partial and output.image.size == (48, 32)
    assert len(colours(output.image)) > 1 and colours(output.image) <= PALETTE
    assert output.metadata["pattern"] == pattern
    assert [p[:2] for p in result.progress] == [(y, 32) for y in range(1, 33)]
    assert result.previews and result.previews[-1].tobytes() == output.image.tobytes()


@pytest.mark.parametrize("pattern", ["stripes", "rings", "plasma", "noise"])
def test_smooth_blends_between_the_palette_colours(generator, studiolo_run, pattern):
    params = {"pattern": pattern, "width": 64, "height": 64, "scale": 16}
    hard = studiolo_run(generator, {**params, "smooth": False}, model="demo", seed=3).outputs[0].image
    smooth = studiolo_run(generator, {**params, "smooth": True}, model="demo", seed=3).outputs[0].image
    assert len(colours(smooth)) > 2 * len(colours(hard)) and not colours(smooth) <= PALETTE


def test_checkers_are_squares_of_the_scale(generator, studiolo_run):
    image = studiolo_run(generator, {"pattern": "checkers", "width": 32, "height": 32, "scale": 8},
                         model="demo", seed=2).outputs[0].image
    assert image.getpixel((0, 0)) == image.getpixel((7, 7)) != image.getpixel((8, 0)) == image.getpixel((0, 8))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_same_seed_draws_the_same_image(generator, studiolo_run, pattern):
    params = {"pattern": pattern, "width": 32, "height": 32, "scale": 8}
    images = [studiolo_run(generator, params, model="demo", seed=s).outputs[0].image.tobytes() for s in (5, 5, 6)]
    assert images[0] == images[1] != images[2]


def test_cancel_stops_at_once_and_keeps_the_rows_drawn(generator, studiolo_run):
    result = studiolo_run(generator, {"width": 16, "height": 64}, model="demo", seed=2, cancel_after=5)
    assert result.cancelled and result.progress_after_cancel == 0
    (partial,) = result.outputs
    assert partial.partial and partial.image.size == (16, 64)
    assert partial.image.getpixel((0, 4)) != (0, 0, 0) and partial.image.getpixel((0, 5)) == (0, 0, 0)


def test_parameters_are_checked(generator, studiolo_run):
    with pytest.raises(ParamError, match="multiple of 8"):
        studiolo_run(generator, {"width": 100}, model="demo")
    with pytest.raises(ParamError, match="must be one of"):
        studiolo_run(generator, {"pattern": "spirals"}, model="demo")


def test_a_bad_palette_is_a_clear_error(generator, studiolo_run, tmp_path):
    (tmp_path / "palette.json").write_text(json.dumps({"colours": ["#123456", "not a colour"]}))
    with pytest.raises(ModelFormatError, match="Cannot read the palette"):
        studiolo_run(generator, model=str(tmp_path))
    (tmp_path / "palette.json").write_text(json.dumps({"colours": ["#123456"]}))
    with pytest.raises(ModelFormatError, match="at least two colours"):
        studiolo_run(generator, model=str(tmp_path))
    (tmp_path / "palette.json").write_text("[1, 2")
    with pytest.raises(ModelFormatError, match="palette.json is not valid JSON"):
        studiolo_run(generator, model=str(tmp_path))
    (tmp_path / "palette.json").write_text(" " * (65 * 1024) + "{}")  # far larger than any palette: not read
    with pytest.raises(ModelFormatError, match="palette.json is too large"):
        studiolo_run(generator, model=str(tmp_path))
