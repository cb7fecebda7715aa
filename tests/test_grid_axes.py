"""Grid axes and their expansion (desktop.explore): every value syntax on real params, errors that name the axis
and the value, hostile axis text, the order, labels and seeds of the cells, and the limits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.api import ParamError, param
from desktop.engine.jobs import MAX_SEED
from desktop.explore.axes import MAX_AXIS_VALUES, Axis, axis_fields, parse_axis
from desktop.explore.grid import CONFIRM_JOBS, MAX_GRID_JOBS, GridSpec, expand, job_count, needs_confirmation
from plugins.image.params import ImageParams
from plugins.text.params import TextParams


class ImageGen:
    id = "image.diffusers"
    Params = ImageParams


class TextGen:
    id = "text.transformers"
    Params = TextParams


@dataclass(frozen=True)
class PairParams:
    """A third-party schema whose combinations are checked as a whole."""

    a: int = param(1, min=0, max=10)
    b: int = param(1, min=0, max=10)

    def __post_init__(self) -> None:
        if self.a + self.b > 12:
            raise ParamError("a", self.a, "a + b must be at most 12")


class PairGen:
    id = "acme.pairs"
    Params = PairParams


def values(name: str, text: str, gen=ImageGen) -> tuple:
    return parse_axis(gen, name, text).values


# ------------------------------------------------------------------------------------------------ syntaxes


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("steps", "4,8,16", (4, 8, 16)),
    ("steps", " 4 , 8 ", (4, 8)),
    ("steps", "1-5", (1, 2, 3, 4, 5)),
    ("steps", "1-10 (+2)", (1, 3, 5, 7, 9)),
    ("steps", "10-1 (-3)", (10, 7, 4, 1)),
    ("steps", "5-2", (5, 4, 3, 2)),
    ("steps", "7-7", (7,)),
    ("steps", "1-10 [4]", (1, 4, 7, 10)),
    ("steps", "1-3 [5]", (1, 2, 3)),  # rounded, duplicates dropped
    ("steps", "4|8", (4, 8)),
    ("width", "512-1024 [3]", (512, 768, 1024)),
    ("guidance_scale", "0.5-1.5 (+0.25)", (0.5, 0.75, 1.0, 1.25, 1.5)),
    ("guidance_scale", "0.1-0.7 (+0.1)", (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)),  # no float drift, end included
    ("guidance_scale", "1-0 (-0.5)", (1.0, 0.5, 0.0)),
    ("guidance_scale", "0-1 [3]", (0.0, 0.5, 1.0)),
    ("guidance_scale", "3, 7.5", (3.0, 7.5)),
    ("scheduler", "euler, ddim", ("euler", "ddim")),
    ("prompt", "a fox,  a bird ", ("a fox", "a bird")),
    ("prompt", '"a fox, at dusk", a bird', ("a fox, at dusk", "a bird")),
    ("prompt", "a fox, at dusk|a bird", ("a fox, at dusk", "a bird")),
    ("negative_prompt", "|ugly", ("", "ugly")),
    ("negative_prompt", '"", ugly', ("", "ugly")),
    ("prompt", '"say ""hi"" now" , " kept "', ('say "hi" now', " kept ")),
    ("prompt", '"line one,\nline two",x', ("line one,\nline two", "x")),
    ("vae_tiling", "true,false", (True, False)),
    ("vae_tiling", "yes, no, 1, 0", (True, False, True, False)),
    ("init_image", "none, a.png", (None, Path("a.png"))),
    ("seed", "1-4", (1, 2, 3, 4)),
    ("seed", f"0, {MAX_SEED}", (0, MAX_SEED)),
    ("model", "demo, org/name", ("demo", "org/name")),
])
def test_axis_syntaxes(name, text, expected):
    axis = parse_axis(ImageGen, name, text)
    assert axis.values == expected
    assert [type(v) for v in axis.values] == [type(v) for v in expected]
    assert axis.field == name and axis.text == text


def test_axis_labels():
    assert parse_axis(ImageGen, "dtype", "auto").label == "Number format"  # the spec's label
    assert parse_axis(ImageGen, "guidance_scale", "7").label == "Guidance scale"
    assert parse_axis(ImageGen, "seed", "1").label == "Seed"
    assert parse_axis(ImageGen, "guidance_scale", "0-1 [4]").value_labels == ("0", "0.333333", "0.666667", "1")
    assert parse_axis(ImageGen, "vae_tiling", "on,off").value_labels == ("true", "false")
    long = parse_axis(ImageGen, "prompt", "a  very\nlong " + "x" * 100)
    assert len(long.value_labels[0]) == 40 and long.value_labels[0].startswith("a very long x")
    assert parse_axis(TextGen, "max-new-tokens", "10").field == "max_new_tokens"


def test_axis_fields_leave_out_lists():
    names = axis_fields(TextGen)
    assert "history" not in names and "stop" not in names
    assert names[-2:] == ("seed", "model") and "temperature" in names


# --------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("name", "text", "field", "shown", "allowed"), [
    ("steps", "4, 0, 200", "steps", "0", "between 1 and 150"),  # the FIRST bad value
    ("steps", "4, eight", "steps", "eight", "whole number"),
    ("steps", "1.5-3", "steps", "1.5-3", "whole numbers"),
    ("steps", "1-10 (+0)", "steps", "1-10 (+0)", "must not be 0"),
    ("steps", "1-10 (-2)", "steps", "1-10 (-2)", "wrong way"),
    ("steps", "1-1000", "steps", "1-1000", f"at most {MAX_AXIS_VALUES}"),
    ("steps", "1-9 [0]", "steps", "1-9 [0]", "from 1 to"),
    ("steps", "4,,8", "steps", "''", "empty value"),
    ("steps", "  ", "steps", "'  '", "at least one value"),
    ("width", "500", "width", "500", "multiple of 8"),
    ("guidance_scale", "0-40 (+10)", "guidance_scale", "40", "between 0 and 30"),
    ("guidance_scale", "nan", "guidance_scale", "nan", "finite"),
    ("scheduler", "euler, warp", "scheduler", "warp", "one of default, euler"),
    ("vae_tiling", "maybe", "vae_tiling", "maybe", "true or false"),
    ("seed", "-1", "seed", "-1", f"between 0 and {MAX_SEED}"),
    ("model", "demo,,x", "model", "''", "empty value"),
    ("prompt", 'a, "b', "prompt", "'a, \"b'", "quote is not closed"),
    ("prompt", '"a" b, c', "prompt", "'\"a\" b, c'", "after a closing quote"),
    ("prompt", "a,,b", "prompt", "''", "empty value"),
    ("nosuch", "1", "nosuch", "nosuch", "steps, guidance_scale"),
    ("loras", "a.safetensors", "loras", "loras", "list parameter cannot be a grid axis"),
])
def test_axis_errors_name_the_axis_and_value(name, text, field, shown, allowed):
    with pytest.raises(ParamError) as caught:
        parse_axis(ImageGen, name, text)
    assert caught.value.field == field
    message = str(caught.value)
    assert shown in message and allowed in message


def test_unknown_field_lists_the_possible_axes():
    with pytest.raises(ParamError, match="the axes can be: prompt, .*temperature.*, seed, model"):
        parse_axis(TextGen, "temprature", "1")
    with pytest.raises(ParamError, match="list parameter"):
        parse_axis(TextGen, "history", "a|b")


def test_too_many_values_in_a_list():
    with pytest.raises(ParamError, match=f"at most {MAX_AXIS_VALUES} values"):
        parse_axis(ImageGen, "seed", ",".join(map(str, range(MAX_AXIS_VALUES + 1))))
    assert len(values("seed", ",".join(map(str, range(MAX_AXIS_VALUES))))) == MAX_AXIS_VALUES


# ----------------------------------------------------------------------------------------- hostile strings

_ALPHABET = st.sampled_from(list("0123456789+-.,|()[] \"'\n\t\x00eE_aéx"))
_FIELDS = st.sampled_from(["steps", "guidance_scale", "width", "scheduler", "prompt", "vae_tiling", "init_image",
                           "seed", "model", "loras", "nosuch"])


@settings(derandomize=True, max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_FIELDS, text=st.one_of(st.text(_ALPHABET, max_size=60), st.text(max_size=60)))
def test_hostile_axis_text_gives_an_axis_or_a_param_error(name, text):
    try:
        axis = parse_axis(ImageGen, name, text)
    except ParamError:
        return
    assert isinstance(axis, Axis) and 1 <= len(axis.values) <= MAX_AXIS_VALUES
    assert len(axis.value_labels) == len(axis.values)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", [
    "1" * 9_000,
    "1-" + "9" * 30 + " (+0." + "0" * 29 + "1)",
    "0." + "0" * 29 + "1-" + "9" * 30 + " [64]",
    "(" * 5_000 + ")" * 5_000,
    "1- " * 3_000,
    '"' * 9_999,
    "|" * 10_000,
    "," * 10_000,
    "1" * 10_001,
])
def test_pathological_axis_text_is_refused_quickly(text):
    for name in ("guidance_scale", "steps", "prompt"):
        started = time.perf_counter()
        try:
            parse_axis(ImageGen, name, text)
        except ParamError:
            pass
        assert time.perf_counter() - started < 0.5


# --------------------------------------------------------------------------------------------------- grids


def image_grid(*axes: tuple[str, str], **kwargs) -> GridSpec:
    return GridSpec("image.diffusers", tuple(parse_axis(ImageGen, n, t) for n, t in axes), **kwargs)


def test_expansion_order_count_and_labels():
    spec = image_grid(("steps", "4,8"), ("scheduler", "euler,ddim,unipc"), ("width", "256,512"),
                      base_params={"prompt": "a fox"}, seed=7)
    cells = expand(spec, ImageGen)
    assert job_count(spec) == len(cells) == 12
    assert [c.index for c in cells[:4]] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)]
    assert cells[6].index == (0, 0, 1) and cells[-1].index == (1, 2, 1)
    assert [(c.params["steps"], c.params["scheduler"], c.params["width"]) for c in cells[:3]] == [
        (4, "euler", 256), (8, "euler", 256), (4, "ddim", 256)]
    assert all(c.params["prompt"] == "a fox" and c.params["height"] == 512 for c in cells)
    assert all(c.seed == 7 and c.model is None for c in cells)
    assert cells[3].labels == {"Steps": "8", "Scheduler": "ddim", "Width": "256"}
    assert list(cells[3].labels) == ["Steps", "Scheduler", "Width"]


def test_one_axis_grid_has_y_and_z_zero():
    cells = expand(image_grid(("steps", "4,8")), ImageGen)
    assert [c.index for c in cells] == [(0, 0, 0), (1, 0, 0)]


def test_one_random_seed_is_drawn_for_the_whole_grid():
    seeds = set()
    for _ in range(5):
        cells = expand(image_grid(("steps", "4,8"), ("scheduler", "euler,ddim")), ImageGen)
        assert len({c.seed for c in cells}) == 1
        seeds.add(cells[0].seed)
    assert len(seeds) > 1  # drawn per grid, not fixed


def test_seed_and_model_axes_override_the_spec():
    cells = expand(image_grid(("seed", "1-3"), ("model", "demo,other"), seed=99, model="base"), ImageGen)
    assert [(c.seed, c.model) for c in cells] == [(1, "demo"), (2, "demo"), (3, "demo"),
                                                  (1, "other"), (2, "other"), (3, "other")]
    assert all("seed" not in c.params and "model" not in c.params for c in cells)
    assert cells[4].labels == {"Seed": "2", "Model": "other"}


def test_an_invalid_combination_is_refused_naming_the_cell():
    spec = GridSpec("acme.pairs", (parse_axis(PairGen, "a", "1,5,9"), parse_axis(PairGen, "b", "2,4")))
    with pytest.raises(ParamError) as caught:
        expand(spec, PairGen)
    assert "cell (2, 1, 0)" in str(caught.value) and "A 9, B 4" in str(caught.value)
    assert "a + b must be at most 12" in str(caught.value)
    assert len(expand(GridSpec("acme.pairs", spec.axes[:1]), PairGen)) == 3


def test_bad_base_params_are_refused():
    with pytest.raises(ParamError, match="stepz"):
        expand(image_grid(("steps", "4"), base_params={"stepz": 3}), ImageGen)
    with pytest.raises(ParamError, match="between 64 and 2048"):
        expand(image_grid(("steps", "4"), base_params={"width": 8}), ImageGen)
    with pytest.raises(ParamError, match="seed"):
        expand(image_grid(("steps", "4"), seed=-5), ImageGen)


def test_grid_shape_limits():
    with pytest.raises(ParamError, match="1 to 3 axes"):
        expand(image_grid(), ImageGen)
    with pytest.raises(ParamError, match="1 to 3 axes"):
        expand(image_grid(("steps", "4"), ("width", "512"), ("height", "512"), ("seed", "1")), ImageGen)
    with pytest.raises(ParamError, match="only one axis"):
        expand(image_grid(("steps", "4"), ("steps", "8")), ImageGen)
    with pytest.raises(ValueError, match="text.transformers"):
        expand(image_grid(("steps", "4")), TextGen)


def test_job_limits():
    small = image_grid(("seed", "1-10"), ("steps", "1-10"))
    assert job_count(small) == CONFIRM_JOBS and not needs_confirmation(small)
    assert needs_confirmation(image_grid(("seed", "1-11"), ("steps", "1-10")))
    huge = image_grid(("seed", "1-64"), ("steps", "1-16"))
    assert job_count(huge) == 1024 > MAX_GRID_JOBS
    with pytest.raises(ParamError, match=f"at most {MAX_GRID_JOBS} jobs"):
        expand(huge, ImageGen)
    assert len(expand(image_grid(("seed", "1-50"), ("steps", "1-20")), ImageGen)) == 1000
