"""Batch plans (desktop.batch.plan): rows × variations into items with validated params, the three seed policies
(random seeds recorded and the plan read back), per-row overrides, the strength spread, errors naming the row, and
flipped/cropped inputs written for image-to-image. Uses the real image generator's Params and params_for_input
(no model is loaded) and the text generator's Params."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from desktop.api import ParamError
from desktop.batch.inputs import BatchInputError, BatchRow
from desktop.batch.plan import BatchPlan, make_plan
from plugins.image.generator import DiffusersImageGenerator
from plugins.text.params import TextParams

SMALL = {"width": 64, "height": 64, "steps": 2}


class TextGen:
    id = "text.transformers"
    name = "Text"
    kind = "text"
    version = "0.1.0"
    Params = TextParams
    input_modes: dict[str, str] = {}


def rows(*prompts: str) -> list[BatchRow]:
    return [BatchRow(n, p, {}) for n, p in enumerate(prompts, 1)]


def plan(generator=None, batch_rows=None, **options):
    options.setdefault("base_params", dict(SMALL))
    options.setdefault("model", "demo")
    options.setdefault("seed_mode", "sequential")
    options.setdefault("seed", 100)
    options.setdefault("source", {"prompts": "p.txt"})
    return make_plan(generator or DiffusersImageGenerator(), batch_rows or rows("a fox", "a bird"), **options)


def test_items_params_and_sequential_seeds() -> None:
    p = plan(variations=2, batch_rows=[BatchRow(1, "a fox", {"steps": 3}, model="other"), BatchRow(4, None, {})])
    assert (p.generator_id, p.kind, p.model, p.seed_mode, p.base_seed) == ("image.diffusers", "image", "demo",
                                                                          "sequential", 100)
    assert [(i.index, i.row, i.variation, i.seed, i.model) for i in p.items] == [
        (0, 1, 0, 100, "other"), (1, 1, 1, 101, "other"), (2, 4, 0, 102, "demo"), (3, 4, 1, 103, "demo")]
    assert [i.params["prompt"] for i in p.items] == ["a fox", "a fox", "", ""]  # None keeps the base prompt
    assert [i.params["steps"] for i in p.items] == [3, 3, 2, 2]
    assert p.items[0].params["width"] == 64 and p.items[0].params["scheduler"] == "default"  # full params


def test_fixed_seeds_and_row_seed_override() -> None:
    p = plan(seed_mode="fixed", seed=7, variations=2,
             batch_rows=[BatchRow(1, "a", {}), BatchRow(2, "b", {}, seed=50)])
    assert [i.seed for i in p.items] == [7, 8, 50, 51]


def test_random_seeds_recorded_and_reproducible() -> None:
    drawn = plan(seed_mode="random", seed=None, variations=3)
    seeds = [i.seed for i in drawn.items]
    assert len(set(seeds)) == 6 and drawn.base_seed == -1
    again = BatchPlan.from_json(drawn.to_json())
    assert again == drawn and [i.seed for i in again.items] == seeds
    seeded = [i.seed for i in plan(seed_mode="random", seed=3).items]
    assert seeded == [i.seed for i in plan(seed_mode="random", seed=3).items] != \
        [i.seed for i in plan(seed_mode="random", seed=4).items]


def test_from_json_refuses_damaged_plan() -> None:
    data = plan().to_json()
    data["items"][1]["index"] = 5
    with pytest.raises(Exception, match="damaged"):
        BatchPlan.from_json(data)
    with pytest.raises(Exception, match="damaged"):
        BatchPlan.from_json({"items": []})


def test_validation_error_names_the_row() -> None:
    with pytest.raises(BatchInputError) as info:
        plan(batch_rows=[BatchRow(1, "ok", {}), BatchRow(7, "x", {"width": 65})])
    assert (info.value.row, info.value.column) == (7, "width")
    assert "Row 7" in str(info.value) and "multiple of 8" in str(info.value)
    with pytest.raises(ParamError, match="steps"):  # the batch's own params: the field named, no row
        plan(base_params={"steps": 0})


def test_text_generator_plan() -> None:
    p = plan(TextGen(), rows("Once", "Twice"), base_params={"max_new_tokens": 5}, model=None, seed_mode="fixed",
             seed=1)
    assert (p.kind, [i.params["prompt"] for i in p.items], [i.seed for i in p.items]) == (
        "text", ["Once", "Twice"], [1, 1])
    with pytest.raises(BatchInputError, match="cannot start from a picture"):
        plan(TextGen(), [BatchRow(1, None, {}, source=Path("a.png"))], base_params={})


def test_pictures_become_img2img_with_strength_spread(tmp_path: Path) -> None:
    picture = tmp_path / "cat.png"
    Image.new("RGB", (8, 8), "red").save(picture)
    p = plan(batch_rows=[BatchRow(1, None, {}, source=picture)], variations=3, strength=(0.3, 0.7))
    assert [i.params["mode"] for i in p.items] == ["img2img"] * 3
    assert [i.params["init_image"] for i in p.items] == [str(picture.resolve())] * 3
    assert [round(i.params["strength"], 6) for i in p.items] == [0.3, 0.5, 0.7]
    assert [i.source for i in p.items] == [str(picture.resolve())] * 3
    one = plan(batch_rows=[BatchRow(1, None, {}, source=picture)], strength=(0.2, 0.6))
    assert round(one.items[0].params["strength"], 6) == 0.4


def test_flip_and_crop_write_transformed_inputs(tmp_path: Path) -> None:
    picture = tmp_path / "in" / "half.png"
    picture.parent.mkdir()
    image = Image.new("RGB", (40, 20), "black")
    image.paste((255, 255, 255), (0, 0, 20, 20))  # white left half
    image.save(picture)
    work = tmp_path / "work"
    p = plan(batch_rows=[BatchRow(1, None, {}, source=picture)], variations=2, flip=True, work_dir=work)
    for item in p.items:
        start = Path(item.params["init_image"])
        assert start.parent == work.resolve() and start.name == f"{item.index:06d}.png"
        assert item.source == str(picture.resolve())  # the item still names the original
        with Image.open(start) as flipped:
            assert flipped.size == (40, 20)
            assert flipped.getpixel((5, 5)) == (0, 0, 0) and flipped.getpixel((35, 5)) == (255, 255, 255)
    cropped = plan(batch_rows=[BatchRow(1, None, {}, source=picture)], crop=0.25, work_dir=work)
    with Image.open(cropped.items[0].params["init_image"]) as small:
        assert small.size == (30, 15)
    with Image.open(picture) as original:
        assert original.getpixel((5, 5)) == (255, 255, 255)  # the input itself is untouched
