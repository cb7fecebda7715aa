"""Batch inputs (desktop.batch.inputs): prompt lists as plain lines, A1111 options, CSV and JSONL with per-row
overrides typed by the real generators' Params; bad rows named by row and column; dynamicprompts templates
(random, combinatorial, wildcard files, unknown wildcards); folders of input files. No engine, no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from desktop.api import ParamError
from desktop.batch.inputs import BatchInputError, BatchRow, expand_template, folder_rows, read_prompts
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.params import ImageParams
from plugins.text.params import TextParams


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- lists


def test_plain_lines_skip_blank_and_comments(tmp_path: Path) -> None:
    rows, errors = read_prompts(write(tmp_path / "p.txt", "a red fox\n\n# a comment\n  a blue bird  \r\n"),
                                ImageParams)
    assert errors == []
    assert rows == [BatchRow(1, "a red fox", {}), BatchRow(4, "a blue bird", {})]


def test_a1111_options_line(tmp_path: Path) -> None:
    path = write(tmp_path / "prompts.txt",
                 'a plain line -- with dashes\n'
                 '--prompt "a cat, sitting" --negative_prompt "blurry" --seed 42 --steps 3 --cfg_scale 4.5 '
                 '--width 64 --height 96 --sampler_name "DPM++ 2M" --sd_model demo\n')
    rows, _ = read_prompts(path, ImageParams)
    assert rows[0] == BatchRow(1, "a plain line -- with dashes", {})
    assert rows[1] == BatchRow(2, "a cat, sitting", {"negative_prompt": "blurry", "steps": 3, "guidance_scale": 4.5,
                                                     "width": 64, "height": 96, "scheduler": "dpmpp_2m"},
                               seed=42, model="demo")


def test_a1111_unknown_option_and_bad_value_named(tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", "--prompt x --restore_faces true\n--prompt y --steps many\nfine\n")
    with pytest.raises(BatchInputError) as info:
        read_prompts(path, ImageParams)
    assert (info.value.row, info.value.column) == (1, "--restore_faces")
    assert "row 1" in str(info.value) and "--restore_faces" in str(info.value)
    assert "1 more problem(s)" in info.value.hint
    rows, errors = read_prompts(path, ImageParams, skip_bad=True)
    assert [r.prompt for r in rows] == ["fine"]
    assert [(e.row, e.column) for e in errors] == [(1, "--restore_faces"), (2, "steps")]
    assert "whole number" in str(errors[1])


def test_csv_per_row_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'prompt,negative_prompt,seed,model,steps,loras\n'
                                     '"a fox, at dusk",,7,,3,\n'
                                     'a bird,ugly,,other/model,,"a.safetensors,b.safetensors"\n'
                                     '\n')
    rows, errors = read_prompts(path, ImageParams)
    assert errors == []
    assert rows == [BatchRow(2, "a fox, at dusk", {"steps": 3}, seed=7),
                    BatchRow(3, "a bird", {"negative_prompt": "ugly", "loras": ["a.safetensors", "b.safetensors"]},
                             model="other/model")]


def test_csv_malformed_row_named_and_skippable(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "prompt,steps,seed\nok one,2,1\nbad,zero,1\n"
                                     "too,2,1,many\n\"multi\nline\",2,-1\nbad seed,2,x\n")
    with pytest.raises(BatchInputError) as info:
        read_prompts(path, ImageParams)
    assert (info.value.row, info.value.column) == (3, "steps")
    assert "p.csv, row 3, column 'steps'" in str(info.value)
    rows, errors = read_prompts(path, ImageParams, skip_bad=True)
    assert [(r.number, r.prompt, r.seed) for r in rows] == [(2, "ok one", 1), (5, "multi\nline", None)]
    assert [(e.row, e.column) for e in errors] == [(3, "steps"), (4, None), (7, "seed")]
    assert "4 cells for 3 columns" in str(errors[1])


def test_csv_unknown_column_refused_even_when_skipping(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "prompt,stepz\na,2\n")
    with pytest.raises(BatchInputError) as info:
        read_prompts(path, ImageParams, skip_bad=True)
    assert (info.value.row, info.value.column) == (1, "stepz")
    assert isinstance(info.value, ParamError)
    # a column the text generator has but the image one has not
    with pytest.raises(BatchInputError, match="max_new_tokens"):
        read_prompts(write(tmp_path / "q.csv", "prompt,max_new_tokens\na,5\n"), ImageParams)
    rows, _ = read_prompts(tmp_path / "q.csv", TextParams)
    assert rows == [BatchRow(2, "a", {"max_new_tokens": 5})]


def test_jsonl_flat_and_params(tmp_path: Path) -> None:
    lines = [{"prompt": "a fox", "steps": 3, "seed": 9},
             {"prompt": "a bird", "model": "demo", "params": {"guidance_scale": 2, "width": "64"}},
             {"params": {"negative_prompt": "dark"}}]
    path = write(tmp_path / "p.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows, errors = read_prompts(path, ImageParams)
    assert errors == []
    assert rows == [BatchRow(1, "a fox", {"steps": 3}, seed=9),
                    BatchRow(2, "a bird", {"guidance_scale": 2.0, "width": 64}, model="demo"),
                    BatchRow(3, None, {"negative_prompt": "dark"})]


def test_jsonl_bad_lines_named(tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", '{"prompt": "good"}\n{"prompt": "broken",\n[1]\n'
                                       '{"prompt": "x", "params": {"steps": 0}}\n{"prompt": "y", "colour": 1}\n')
    rows, errors = read_prompts(path, ImageParams, skip_bad=True)
    assert [r.prompt for r in rows] == ["good"]
    assert [(e.row, e.column) for e in errors] == [(2, None), (3, None), (4, "steps"), (5, "colour")]
    assert "not valid JSON at character" in str(errors[0])
    assert "between 1 and 150" in str(errors[2])


def test_generator_without_prompt_refuses_prompts(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from desktop.api import param

    @dataclass(frozen=True)
    class NoPrompt:
        size: int = param(8, min=1)

    with pytest.raises(BatchInputError, match="takes no prompt"):
        read_prompts(write(tmp_path / "p.txt", "hello\n"), NoPrompt, skip_bad=True)
    rows, _ = read_prompts(write(tmp_path / "p.csv", "size\n4\n"), NoPrompt)
    assert rows == [BatchRow(2, None, {"size": 4})]


# ---------------------------------------------------------------------------------------------- templates


def test_template_combinatorial_all_combinations() -> None:
    prompts = expand_template("a {red|green} {cat|dog}", count=0, combinatorial=True, wildcards=None, seed=0)
    assert prompts == ["a red cat", "a red dog", "a green cat", "a green dog"]
    assert expand_template("a {red|green} {cat|dog}", count=3, combinatorial=True, wildcards=None, seed=0) == \
        prompts[:3]


def test_template_wildcard_file(tmp_path: Path) -> None:
    folder = tmp_path / "wildcards"
    folder.mkdir()
    write(folder / "colors.txt", "red\ngreen\nblue\n")
    combos = expand_template("a __colors__ cat", count=0, combinatorial=True, wildcards=folder, seed=0)
    assert sorted(combos) == ["a blue cat", "a green cat", "a red cat"]
    random_one = expand_template("a __colors__ {cat|dog}", count=20, combinatorial=False, wildcards=folder, seed=5)
    assert len(random_one) == 20
    assert {p.split()[1] for p in random_one} == {"red", "green", "blue"}
    assert {p.split()[2] for p in random_one} == {"cat", "dog"}
    assert expand_template("a __colors__ {cat|dog}", count=20, combinatorial=False, wildcards=folder, seed=5) == \
        random_one
    assert expand_template("a __colors__ {cat|dog}", count=20, combinatorial=False, wildcards=folder, seed=6) != \
        random_one


def test_template_unknown_wildcard_and_bad_template(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError) as info:
        expand_template("a __nope__ cat", count=2, combinatorial=True, wildcards=tmp_path, seed=0)
    assert "__nope__" in str(info.value) and str(tmp_path) in str(info.value)
    with pytest.raises(BatchInputError, match="__nope__"):
        expand_template("a __nope__ cat", count=2, combinatorial=False, wildcards=None, seed=0)
    with pytest.raises(BatchInputError, match="cannot be read"):
        expand_template("a {red|green", count=2, combinatorial=True, wildcards=None, seed=0)
    with pytest.raises(BatchInputError, match="not there"):
        expand_template("a cat", count=2, combinatorial=True, wildcards=tmp_path / "missing", seed=0)


# ------------------------------------------------------------------------------------------------ folders


def test_folder_rows(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    write(tmp_path / "c.txt", "a story begins\n")
    write(tmp_path / "notes.csv", "ignored")
    write(tmp_path / ".hidden.png", "ignored")
    rows = folder_rows(tmp_path, DiffusersImageGenerator())
    assert [(r.number, r.prompt, r.source.name) for r in rows] == [(1, None, "a.jpg"), (2, None, "b.png"),
                                                                   (3, "a story begins", "c.txt")]

    class TextGen:
        name = "Text"
        Params = TextParams
        input_modes: dict[str, str] = {}

    with pytest.raises(BatchInputError, match="a.jpg is a picture"):
        folder_rows(tmp_path, TextGen())
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchInputError, match="no input files"):
        folder_rows(tmp_path / "empty", TextGen())
