"""Interpolation (issue 18, points 3 and 5): the generator capability, the image generator's frames, the run
through the real engine (ends equal to the single runs, a frame's metadata reproducing it, cancel), refusals before
any job, and `studiolo explore interpolate` writing an animated WebP."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import RunGate, install_markov, run_cli
from PIL import Image

from desktop.api import Generator, ImageOutput, ParamError, from_json, to_json
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.explore.interpolate import MAX_FRAMES, InterpolationSpec, plan_frames
from desktop.explore.interpolate_run import InterpolationRun
from desktop.explore.strip import read_record, strip_bytes
from desktop.library import Library
from desktop.plugins import PluginManager
from desktop.settings import Settings
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import read_reuse
from plugins.image.params import ImageParams

WAIT = 120_000  # ms: a safety net only; every wait ends on a signal
FOX = {"prompt": "a red fox", "steps": 2, "width": 64, "height": 64}
GEN = DiffusersImageGenerator()


def spec(frames=3, start=None, end=None, **kwargs) -> InterpolationSpec:
    start = FOX if start is None else start
    end = {**start, "prompt": "a blue whale"} if end is None else end
    return InterpolationSpec("image.diffusers", start, end, kwargs.pop("start_seed", 1), kwargs.pop("end_seed", 2),
                             frames, **kwargs)


# ------------------------------------------------------------------------------------------- the plan


def test_the_frames_are_the_two_ends_and_variations_and_mixes_between():
    cells = plan_frames(spec(frames=5), GEN)
    params = [from_json(ImageParams, c.params) for c in cells]
    assert [c.index for c in cells] == [(k, 0, 0) for k in range(5)] and [c.labels for c in cells][2] == {
        "Frame": "3"}
    assert params[0] == ImageParams(**FOX) and cells[0].seed == 1
    assert params[-1] == ImageParams(**{**FOX, "prompt": "a blue whale"}) and cells[-1].seed == 2
    for k, p in enumerate(params[1:-1], start=1):
        assert (p.prompt, p.prompt_to, p.prompt_mix) == ("a red fox", "a blue whale", k / 4)
        assert (p.variation_seed, p.variation_strength) == (2, k / 4) and cells[k].seed == 1
    same_seed = [from_json(ImageParams, c.params) for c in plan_frames(spec(end_seed=1), GEN)]
    assert same_seed[1].variation_seed is None and same_seed[1].prompt_mix == 0.5  # prompts only


def test_the_api_default_offers_no_interpolation_and_the_host_says_so():
    class Plain(Generator):
        id, name, kind, Params = "acme.plain", "Plain", "image", ImageParams

    assert not Plain().offers_interpolation and GEN.offers_interpolation
    assert Plain().interpolation_frames(ImageParams(), ImageParams(), 1, 2, 3) is None
    with pytest.raises(ParamError, match="offers no interpolation"):
        plan_frames(InterpolationSpec("acme.plain", FOX, FOX, 1, 2, 3), Plain())


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"end": {**FOX, "width": 128}}, "width", "same size (64×64 at the start, 128×64 at the end)"),
    ({"end": {**FOX, "steps": 3}}, "steps", "only the seed and the prompt can change"),
    ({"end_model": "other"}, "model", "same model"),
    ({"frames": 1}, "frames", "2 to 120 frames"),
    ({"frames": MAX_FRAMES + 1}, "frames", "2 to 120 frames"),
    ({"start": {**FOX, "batch_size": 2}}, "batch_size", "one image"),
    ({"start": {**FOX, "variation_seed": 5, "variation_strength": 0.2}}, "variation_seed", "sets the variation"),
    ({"start": {**FOX, "mode": "img2img"}, "end": {**FOX, "mode": "img2img"}}, "mode", "txt2img only"),
])
def test_what_cannot_be_interpolated_is_refused_naming_it(change, field, words):
    with pytest.raises(ParamError) as caught:
        plan_frames(spec(**change), GEN)
    assert caught.value.field == field and words in str(caught.value), str(caught.value)


# --------------------------------------------------------------------------------------- the engine


@pytest.fixture
def engine(qtbot):
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache(), in_process=True)  # torch is imported here already: no process to start
    yield engine
    assert engine.shutdown(timeout=30)


def single(engine, qtbot, params, seed, model) -> np.ndarray:
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        engine.submit("image.diffusers", params, model=model, seed=seed)
    (output,) = finished.args[1]
    return np.asarray(output.image)


def test_the_ends_are_the_single_runs_and_a_frames_metadata_makes_it_again(engine, qtbot, tiny_sd):
    model = str(tiny_sd)
    generator = engine.plugins.generator("image.diffusers")
    run = InterpolationRun(engine, spec(model=model), generator)
    done = []
    run.cell_done.connect(lambda index, job_id, outputs: done.append(index))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        pass
    assert sorted(done) == [(0, 0, 0), (1, 0, 0), (2, 0, 0)] and not run.errors
    frames = [np.asarray(run.results[(k, 0, 0)][0].image) for k in range(3)]
    assert np.array_equal(frames[0], single(engine, qtbot, FOX, 1, model))  # pixel-identical
    assert np.array_equal(frames[2], single(engine, qtbot, {**FOX, "prompt": "a blue whale"}, 2, model))
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[1], frames[2])
    # the middle frame's file says how to make it again: the same pixels
    middle = run.results[(1, 0, 0)][0]
    cell = run.cells[1]
    file = GEN.encode_output(ImageOutput(image=middle.image), {"params": cell.params, "seed": cell.seed,
                                                                "model": model, "output": middle.metadata}).data
    reuse = read_reuse(file)
    assert reuse.params.variation_seed == 2 and reuse.params.prompt_to == "a blue whale" and reuse.seed == 1
    assert np.array_equal(frames[1], single(engine, qtbot, reuse.params, reuse.seed, model))


def test_cancelling_after_the_first_frame_cancels_the_rest(engine, qtbot, monkeypatch, tiny_sd):
    gate = RunGate(monkeypatch)  # the second cell waits until the first one's cancel has landed
    generator = engine.plugins.generator("image.diffusers")
    run = InterpolationRun(engine, spec(frames=4, model=str(tiny_sd)), generator)
    done, cancelled = [], []
    run.cell_done.connect(lambda index, *_: (done.append(index), run.cancel(), gate.release()))
    run.cell_cancelled.connect(lambda index, _id: cancelled.append(index))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        pass
    assert done == [(0, 0, 0)] and sorted(cancelled) == [(1, 0, 0), (2, 0, 0), (3, 0, 0)]
    assert run.is_finished and list(run.results) == [(0, 0, 0)]


def test_different_sizes_are_refused_before_any_job(engine):
    queued = []
    engine.job_queued.connect(queued.append)
    generator = engine.plugins.generator("image.diffusers")
    with pytest.raises(ParamError, match="same size"):
        InterpolationRun(engine, spec(end={**FOX, "height": 128}), generator)
    assert queued == [] and engine.jobs() == []


# ----------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".webp", ".gif", ".png"])
def test_the_frames_are_written_with_their_record(suffix, tmp_path):
    cells = plan_frames(spec(frames=3), GEN)
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    images = {0: Image.new("RGB", (16, 16), colours[0]), 2: Image.new("RGB", (16, 16), colours[2])}  # 1 failed
    path = tmp_path / f"strip{suffix}"
    path.write_bytes(strip_bytes(suffix, "image.diffusers", cells, images))
    with Image.open(path) as opened:
        record = read_record(opened)
        assert record["generator"] == "image.diffusers" and [f["seed"] for f in record["frames"]] == [1, 1, 2]
        assert record["frames"][1]["params"]["variation_strength"] == 0.5
        if suffix == ".png":
            assert opened.size[0] == 3 * 16 and opened.size[1] > 16
            assert opened.convert("RGB").getpixel((2 * 16 + 8, opened.size[1] - 8)) == colours[2]
        else:
            assert opened.n_frames == 3 and opened.is_animated
            opened.seek(1)
            assert opened.convert("RGB").getpixel((15, 15)) == (160, 160, 160)  # the failed frame: grey, numbered
            opened.seek(2)
            if suffix == ".webp":  # lossless: the frame itself
                assert opened.convert("RGB").getpixel((8, 8)) == colours[2]


# -------------------------------------------------------------------------------------------------- CLI


def test_the_cli_writes_an_animated_webp_every_frame_in_the_library(tmp_path, studiolo_home):
    out = tmp_path / "strip.webp"
    result = run_cli("explore", "interpolate", "image.diffusers", "--model", "demo", "--from-seed", "1",
                     "--to-seed", "2", "--from-prompt", "a red fox", "--to-prompt", "a blue whale", "--frames", "4",
                     "--param", "steps=2", "--param", "width=64", "--param", "height=64", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "interpolation written to" in result.stderr and "4 of 4 frames done" in result.stderr
    with Image.open(out) as strip:
        assert strip.n_frames == 4 and strip.size == (64, 64)
        record = read_record(strip)
    assert [f["seed"] for f in record["frames"]] == [1, 1, 1, 2] and record["model"] == "demo"
    with Library(studiolo_home / "data" / "library.db") as library:
        items = library.list_items()
    assert len(items) == 4
    reused = sorted((read_reuse(item.path) for item in items), key=lambda r: (r.seed, r.params.variation_strength))
    assert [r.params.variation_strength for r in reused] == [0.0, 1 / 3, 2 / 3, 0.0]
    assert reused[1].params.prompt_to == "a blue whale" and reused[3].params.prompt == "a blue whale"


@pytest.mark.parametrize(("args", "words"), [
    (["--frames", "1"], "2 to 120 frames"),
    (["--to-param", "width=128"], "same size"),
    (["--output", "strip.mp4"], "written as a .webp, .gif or .png file"),
])
def test_the_cli_refuses_bad_interpolations_before_any_job(tmp_path, studiolo_home, args, words):
    output = ["--output", str(tmp_path / "strip.webp")] if "--output" not in args else []
    result = run_cli("explore", "interpolate", "image.diffusers", "--from-seed", "1", "--to-seed", "2",
                     "--param", "width=64", "--param", "height=64", *args, *output)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
    assert not (studiolo_home / "data" / "library.db").exists()


def test_the_cli_refuses_a_generator_without_interpolation(studiolo_site, tmp_path, studiolo_home):
    install_markov(studiolo_site)
    result = run_cli("explore", "interpolate", "text.markov", "--output", str(tmp_path / "s.webp"),
                     env=studiolo_site.env())
    assert result.returncode == 2 and "this generator offers no interpolation" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


def test_an_interpolation_frame_is_an_ordinary_job_of_the_generator():
    start = ImageParams(**FOX)
    frames = GEN.interpolation_frames(start, replace(start, prompt="x"), 3, 3, 3)
    assert [seed for _, seed in frames] == [3, 3, 3] and to_json(frames[1][0])["prompt_mix"] == 0.5
