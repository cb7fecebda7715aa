"""The params schema: declaring, validating, parsing `--param` strings, JSON round trips."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desktop.api import ParamError, from_json, param, prompt_field, schema, to_json, validate
from desktop.api.errors import ParamSchemaError
from desktop.api.params import load_option_names, parse_assignments


@dataclass(frozen=True)
class Sample:
    prompt: str = param("", prompt=True, multiline=True, help="What to make.")
    steps: int = param(20, min=1, max=150)
    width: int = param(512, min=64, max=2048, multiple_of=8)
    guidance: float = param(7.5, min=0.0, max=30.0)
    sampler: str = param("euler", choices=("euler", "ddim", "unipc"))
    tiling: bool = param(False, load_option=True)
    stop: list[str] = param(default_factory=list, max_items=4)
    sizes: list[int] = param(default_factory=lambda: [1, 2], help="numbers")
    init_image: Path | None = param(None)
    strength: float | None = param(None, min=0.0, max=1.0)
    note: str | None = param(None)


def test_schema_lists_fields_with_kinds_and_marks():
    fields = {f.name: f for f in schema(Sample)}
    assert fields["steps"].kind == "int" and fields["steps"].spec.max == 150
    assert fields["stop"].kind == "list" and fields["stop"].item_kind == "str"
    assert fields["init_image"].kind == "path" and fields["init_image"].optional
    assert fields["prompt"].label == "Prompt" and fields["prompt"].spec.help == "What to make."
    assert prompt_field(Sample) == "prompt"
    assert load_option_names(Sample) == ("tiling",)


@pytest.mark.parametrize("make, reason", [
    (lambda: dataclass(type("NoDefault", (), {"__annotations__": {"x": int}})), "has no default"),
    (lambda: dataclass(type("BadType", (), {"__annotations__": {"x": dict}, "x": param(None)})), "unsupported type"),
    (lambda: dataclass(type("TwoPrompts", (), {"__annotations__": {"a": str, "b": str},
                                               "a": param("", prompt=True), "b": param("", prompt=True)})),
     "only one field may be the prompt"),
    (lambda: dataclass(type("BadDefault", (), {"__annotations__": {"n": int}, "n": param(0, min=1)})),
     "the default is not allowed"),
    (lambda: dataclass(type("BadChoice", (), {"__annotations__": {"n": int}, "n": param(1, choices=(1, "x"))})),
     "choice 'x'"),
    (lambda: dict, "must be a dataclass"),
])
def test_malformed_schema_is_refused_with_the_reason(make, reason):
    with pytest.raises(ParamSchemaError, match=reason):
        schema(make())


def test_validate_names_field_value_and_what_is_allowed():
    with pytest.raises(ParamError) as info:
        validate(Sample(steps=0))
    assert info.value.field == "steps"
    assert str(info.value) == "Invalid value for 'steps': 0 — must be between 1 and 150."
    with pytest.raises(ParamError, match="'width': 500 — must be a multiple of 8"):
        validate(Sample(width=500))
    with pytest.raises(ParamError, match="'sampler': 'dpm' — must be one of euler, ddim, unipc"):
        validate(Sample(sampler="dpm"))
    with pytest.raises(ParamError, match="'guidance': nan — must be a finite number"):
        validate(Sample(guidance=float("nan")))
    with pytest.raises(ParamError, match="'tiling': 1 — expected true or false"):
        validate(Sample(tiling=1))
    with pytest.raises(ParamError, match="allows at most 4"):
        validate(Sample(stop=list("abcde")))


def test_validate_normalises_values():
    params = validate(Sample(guidance=7, init_image="in.png", sizes=(3, 4)))
    assert params.guidance == 7.0 and isinstance(params.guidance, float)
    assert params.init_image == Path("in.png")
    assert params.sizes == [3, 4]


def test_parse_assignments_types_every_kind():
    params = parse_assignments(Sample, [
        "prompt=a cat, in a hat = fine", "steps=30", "guidance=3.5", "sampler=ddim", "tiling=yes",
        "stop=###,END", "sizes=[1, \"2\", 3]", "init-image=pic.png", "strength=0.25", "note=",
    ])
    assert params == Sample(prompt="a cat, in a hat = fine", steps=30, guidance=3.5, sampler="ddim", tiling=True,
                            stop=["###", "END"], sizes=[1, 2, 3], init_image=Path("pic.png"), strength=0.25,
                            note=None)


def test_parse_assignments_lists_append_and_json_keeps_commas():
    params = parse_assignments(Sample, ["stop=a", 'stop=["b, c"]', "stop="])
    assert params.stop == ["a", "b, c"]
    assert parse_assignments(Sample, ["strength=none"]).strength is None
    assert parse_assignments(Sample, ["note=none"]).note == "none"  # text stays text


@pytest.mark.parametrize("assignment, message", [
    ("steps", "expected name=value"),
    ("stesp=3", "no such parameter; did you mean 'steps'\\? known parameters: prompt, steps"),
    ("steps=3.5", "'steps': '3.5' — expected a whole number"),
    ("steps=+-5", "expected a whole number"),
    ("steps=9" * 40, "expected a whole number"),
    ("guidance=inf", "must be a finite number"),
    ("guidance=abc", "expected a number"),
    ("tiling=maybe", "expected true or false"),
    ("sizes=[1, [2]]", "expected a whole number"),
    ("sizes=[1,", "not a valid JSON list"),
    ("sizes=x", "expected a whole number"),
    ("init_image=a\x00b", "must be a non-empty file path"),
    ("width=513", "must be a multiple of 8"),
])
def test_parse_assignments_errors_are_clear(assignment, message):
    with pytest.raises(ParamError, match=message):
        parse_assignments(Sample, [assignment])


def test_json_round_trip():
    params = Sample(prompt="p", steps=3, stop=["x"], init_image=Path("/tmp/a.png"), strength=0.5)
    data = json.loads(json.dumps(to_json(params)))
    assert data["init_image"] == "/tmp/a.png"
    assert from_json(Sample, data) == params


def test_from_json_tolerates_unknown_keys_and_missing_ones_unless_strict():
    assert from_json(Sample, {"steps": 5, "from_a_newer_version": 1}) == Sample(steps=5)
    with pytest.raises(ParamError, match="no such parameter"):
        from_json(Sample, {"from_a_newer_version": 1}, strict=True)
    with pytest.raises(ParamError, match="'steps': 'five' — expected a whole number"):
        from_json(Sample, {"steps": "five"})
    with pytest.raises(ParamError, match="expected a JSON object"):
        from_json(Sample, ["steps", 5])


def test_params_with_a_list_default_factory_stay_independent():
    @dataclass
    class Mutable:
        items: list[float] = field(default_factory=list)

    a, b = Mutable(), Mutable()
    a.items.append(1.0)
    assert b.items == [] and schema(Mutable)[0].kind == "list"


def test_fit_params_brings_loose_values_into_the_schema_field_by_field():
    from desktop.api import fit_params

    fitted = fit_params(Sample, {"steps": "999", "width": 775, "guidance": float("nan"), "sampler": "ddim",
                                 "stop": ["a", 3, "", "b\x00", "c", "d", "e", "f"], "prompt": "x\x00y",
                                 "tiling": "yes", "unknown": 1})
    assert fitted == Sample(steps=150, width=768, sampler="ddim", stop=["a", "c", "d", "e"], prompt="xy")
    assert fit_params(Sample, {"sampler": "nope", "sizes": "1,2"}) == Sample()
