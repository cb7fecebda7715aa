"""Property tests: hostile strings and values give a clear ParamError or a valid value, never a traceback."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from test_params import Sample

from desktop.api import ParamError, from_json, schema, to_json, validate
from desktop.api.params import parse_assignments

FIELDS = [f.name for f in schema(Sample)]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    st.sampled_from(["", " ", "nan", "-inf", "1e999", "0x10", "1_000", "９", "²", "[", "[[[[", "]", "null", "true",
                     "\x00", "=", "==", "a=b=c", "[1e999]", "[NaN]", "[" * 2000 + "]" * 2000, "9" * 5000,
                     "-0", "+5", "1.0", "[\"a\", null]", "{}", "\ud800".encode("utf-8", "surrogatepass").decode(
                         "utf-8", "replace")]),
    st.from_regex(r"[+-]?[0-9.eE_]{0,12}", fullmatch=True),
)


def assert_valid(params):
    again = validate(params)
    assert again == params
    for f in schema(Sample):
        value = getattr(params, f.name)
        if isinstance(value, float):
            assert math.isfinite(value)
    json.dumps(to_json(params), allow_nan=False)


@seed(20261129)
@SETTINGS
@given(name=st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)), text=hostile_text)
def test_parse_assignment_never_raises_anything_but_param_error(name, text):
    try:
        params = parse_assignments(Sample, [f"{name}={text}"])
    except ParamError as exc:
        assert exc.field and str(exc)
    else:
        assert_valid(params)


@seed(20261129)
@SETTINGS
@given(raw=st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_any_assignment_string(raw):
    try:
        params = parse_assignments(Sample, [raw])
    except ParamError:
        pass
    else:
        assert_valid(params)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@seed(20261129)
@SETTINGS
@given(data=st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), json_values, max_size=6))
def test_from_json_with_hostile_values(data):
    try:
        params = from_json(Sample, data)
    except ParamError as exc:
        assert exc.field in FIELDS or exc.field == "params"
    else:
        assert_valid(params)


valid_params = st.builds(
    Sample,
    prompt=st.text().filter(lambda s: "\x00" not in s),
    steps=st.integers(1, 150),
    width=st.integers(8, 256).map(lambda n: n * 8),
    guidance=st.floats(0, 30),
    sampler=st.sampled_from(["euler", "ddim", "unipc"]),
    tiling=st.booleans(),
    stop=st.lists(st.text().filter(lambda s: "\x00" not in s), max_size=4),
    sizes=st.lists(st.integers()),
    strength=st.none() | st.floats(0, 1),
)


@seed(20261129)
@SETTINGS
@given(params=valid_params)
def test_valid_params_survive_json_and_cli_round_trips(params):
    params = validate(params)
    assert from_json(Sample, json.loads(json.dumps(to_json(params)))) == params
    as_cli = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in to_json(params).items()
              if v is not None]
    assert parse_assignments(Sample, as_cli) == params
