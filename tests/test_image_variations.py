"""Variations (issue 18, point 2) and prompt mixing (point 3) in the image generator, on the tiny SD model: the
variation seed and strength (AUTOMATIC1111's: a slerp of two seeds' starting noise), identical to a direct diffusers
call with the same noise; the second prompt and its mix; their metadata; and "Vary subtle / strong" in the image
panel, the gallery and the window."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from desktop.api import VARY_STRONG, VARY_SUBTLE, ImageOutput, LoadOptions, ParamError, to_json, vary_params
from desktop.testing import run_generator
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import read_reuse
from plugins.image.params import ImageParams

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "steps": 3, "width": 64, "height": 64}
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture(scope="module")
def sd(tiny_sd):
    values = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False}
    return GEN.load(tiny_sd, "cpu", LoadOptions(values))


def images(handle, seed=1, **params) -> list[np.ndarray]:
    result = run_generator(GEN, {**BASE, **params}, handle=handle, seed=seed)
    return [np.asarray(o.image).astype(np.int16) for o in result.outputs]


# ------------------------------------------------------------------------------------------- variations


@pytest.mark.parametrize("scheduler", ["default", "euler_a"])  # euler_a also draws each step's noise from the seed
def test_strength_0_is_the_seed_and_1_the_variation_seed_pixel_for_pixel_batches_included(sd, scheduler):
    seed_1, seed_2 = (images(sd, s, batch_size=2, scheduler=scheduler) for s in (1, 2))  # seeds 1, 2 and 2, 3
    at_0, at_1, half = (images(sd, 1, batch_size=2, variation_seed=2, variation_strength=strength,
                               scheduler=scheduler) for strength in (0.0, 1.0, 0.5))
    for k in range(2):
        assert np.array_equal(at_0[k], seed_1[k]) and np.array_equal(at_1[k], seed_2[k]), f"image {k}"
        assert not np.array_equal(half[k], seed_1[k]) and not np.array_equal(half[k], seed_2[k]), f"image {k}"
    assert not np.array_equal(half[0], half[1])  # image k mixes seed 1+k with variation seed 2+k


def test_a_variation_records_each_images_own_variation_seed(sd):
    result = run_generator(GEN, {**BASE, "batch_size": 2, "variation_seed": 10, "variation_strength": 0.3},
                           handle=sd, seed=4)
    keys = ("seed", "batch_index", "mode", "variation_seed")  # (the rest: dtype and scheduler, for reproduce)
    assert [{key: o.metadata[key] for key in keys} for o in result.outputs] == [
        {"seed": 4, "batch_index": 0, "mode": "txt2img", "variation_seed": 10},
        {"seed": 5, "batch_index": 1, "mode": "txt2img", "variation_seed": 11}]
    plain = run_generator(GEN, BASE, handle=sd, seed=4).outputs[0]
    assert "variation_seed" not in plain.metadata


def a1111_slerp(val, low, high):
    """AUTOMATIC1111's slerp (modules/processing.py), written out again here to check ours against."""
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


@pytest.mark.parametrize("scheduler", ["default", "euler_a"])  # euler_a draws the sampler's noise from the seed
def test_a_variation_is_a_direct_diffusers_call_with_the_slerped_noise(sd, tiny_sd, scheduler):
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
    from diffusers.utils.torch_utils import randn_tensor

    ours = images(sd, 1234, variation_seed=99, variation_strength=0.3, scheduler=scheduler)[0]
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if scheduler == "euler_a":
        pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    shape = (1, pipe.unet.config.in_channels, 64 // pipe.vae_scale_factor, 64 // pipe.vae_scale_factor)
    generator = torch.Generator().manual_seed(1234)
    noise = randn_tensor(shape, generator=generator, dtype=torch.float32)
    other = randn_tensor(shape, generator=torch.Generator().manual_seed(99), dtype=torch.float32)
    latents = a1111_slerp(0.3, noise[0], other[0]).unsqueeze(0)
    direct = pipe("a red fox", num_inference_steps=3, guidance_scale=7.0, width=64, height=64, latents=latents,
                  generator=generator).images[0]  # the same generator, advanced past the noise as in a plain run
    assert np.array_equal(ours, np.asarray(direct).astype(np.int16))


def test_variations_are_txt2img_only_named_in_the_error(sd, tmp_path):
    Image.new("RGB", (64, 64), (90, 120, 200)).save(tmp_path / "init.png")
    with pytest.raises(ParamError) as caught:
        images(sd, 1, mode="img2img", init_image=str(tmp_path / "init.png"), variation_seed=3,
               variation_strength=0.5)
    assert caught.value.field == "variation_seed" and "txt2img only" in str(caught.value)
    # a variation seed at strength 0 is no variation: allowed everywhere
    assert len(images(sd, 1, mode="img2img", init_image=str(tmp_path / "init.png"), variation_seed=3)) == 1


# ------------------------------------------------------------------------------------------ prompt mix


def test_prompt_mix_0_is_the_prompt_and_a_mix_is_a_direct_call_with_lerped_embeddings(sd, tiny_sd):
    import torch
    from diffusers import StableDiffusionPipeline

    fox = images(sd, 5)[0]
    assert np.array_equal(images(sd, 5, prompt_to="a blue whale", prompt_mix=0.0)[0], fox)
    mixed = images(sd, 5, prompt_to="a blue whale", prompt_mix=0.4, negative_prompt="blurry")[0]
    assert not np.array_equal(mixed, fox) and not np.array_equal(mixed, images(sd, 5, prompt="a blue whale")[0])
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        start, negative = pipe.encode_prompt("a red fox", "cpu", 1, True, "blurry")
        end, _ = pipe.encode_prompt("a blue whale", "cpu", 1, True, "blurry")
    direct = pipe(prompt_embeds=torch.lerp(start, end, 0.4), negative_prompt_embeds=negative, num_inference_steps=3,
                  guidance_scale=7.0, width=64, height=64, generator=torch.Generator().manual_seed(5)).images[0]
    assert np.array_equal(mixed, np.asarray(direct).astype(np.int16))


def test_an_sdxl_prompt_mix_mixes_the_pooled_embeddings_too(tiny_sdxl):
    values = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False}
    xl = GEN.load(tiny_sdxl, "cpu", LoadOptions(values))
    plain = images(xl, 3, steps=2)[0]
    assert np.array_equal(images(xl, 3, steps=2, prompt_to="a whale", prompt_mix=0.0)[0], plain)
    assert not np.array_equal(images(xl, 3, steps=2, prompt_to="a whale", prompt_mix=0.5)[0], plain)


# -------------------------------------------------------------------------------------------- metadata


def encoded(params: ImageParams, output: dict) -> bytes:
    metadata = {"params": to_json(params), "seed": 42, "model": "demo", "output": output}
    return GEN.encode_output(ImageOutput(image=Image.new("RGB", (64, 64))), metadata).data


def test_variation_metadata_is_a1111s_and_reads_back_from_ours_and_from_a1111(tmp_path):
    params = ImageParams(prompt="a red fox", steps=3, width=64, height=64, variation_seed=7, variation_strength=0.3,
                         prompt_to="a blue whale", prompt_mix=0.25)
    data = encoded(params, {"seed": 43, "variation_seed": 8})  # image 1 of a batch: seed 42+1, variation 7+1
    text = Image.open(io.BytesIO(data)).text["parameters"]
    assert "Seed: 43, Size: 64x64, Model: demo, Variation seed: 8, Variation seed strength: 0.3" in text
    reuse = read_reuse(data)
    assert reuse.seed == 43 and reuse.params == ImageParams(**{**to_json(params), "variation_seed": 8})
    assert reuse.params.prompt_to == "a blue whale" and reuse.params.prompt_mix == 0.25
    a1111 = ("a red fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd15, "
             "Variation seed: 555, Variation seed strength: 0.45")
    png = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", a1111)
    Image.new("RGB", (8, 8)).save(png, "PNG", pnginfo=info)
    from_a1111 = read_reuse(png.getvalue())
    assert (from_a1111.params.variation_seed, from_a1111.params.variation_strength) == (555, 0.45)
    assert from_a1111.seed == 1234


def test_no_variation_no_variation_text():
    text = Image.open(io.BytesIO(encoded(ImageParams(prompt="x", variation_seed=7), {"seed": 1}))).text["parameters"]
    assert "Variation" not in text  # a variation seed at strength 0 is no variation


# ------------------------------------------------------------------------------------- vary actions


def test_vary_params_sets_a_fresh_seed_and_the_strength():
    varied = [vary_params(ImageParams(prompt="x"), VARY_SUBTLE) for _ in range(4)]
    assert {v.variation_strength for v in varied} == {0.15} and len({v.variation_seed for v in varied}) > 1
    assert vary_params(ImageParams(), VARY_STRONG, 9).variation_seed == 9 and VARY_STRONG == 0.5


@pytest.fixture
def panel(qtbot, tmp_path):
    from desktop.testing.panel_host import RecordingPanelHost
    from plugins.image.panel import ImagePanel

    host = RecordingPanelHost(tmp_path, generator_id="image.diffusers")
    calls = []
    submit = host.submit
    host.submit = lambda params, *, model=None, seed=None: (calls.append((model, seed)), submit(params))[1]
    host.calls = calls
    widget = ImagePanel(host)
    qtbot.addWidget(widget)
    return widget


def test_vary_in_the_panel_submits_the_results_params_and_own_seed_with_a_variation(panel, qtbot):
    from plugins.image.result_info import JobRecord

    made = ImageParams(prompt="a red fox", steps=4, width=64, height=64, batch_size=2)
    output = ImageOutput(image=Image.new("RGB", (64, 64)), metadata={"seed": 31, "batch_index": 1})
    assert not panel.vary_actions["vary_subtle"].isEnabled()
    panel.viewer.select(panel.viewer.add_result(output, JobRecord(to_json(made), "my-model")))
    assert panel.vary_actions["vary_subtle"].isEnabled()
    panel.vary_actions["vary_subtle"].trigger()
    varied = panel.host.submitted[-1]
    assert (varied.variation_strength, varied.batch_size, varied.prompt, varied.steps) == (VARY_SUBTLE, 1,
                                                                                           "a red fox", 4)
    assert varied.variation_seed is not None and panel.host.calls[-1] == ("my-model", 31)
    menu = panel.strip.context_menu(0)
    strong = next(a for a in menu.actions() if a.objectName() == "vary_strong")
    strong.trigger()
    again = panel.host.submitted[-1]
    assert again.variation_strength == VARY_STRONG and again.variation_seed is not None
    assert "Varying result 1" in panel.status.text()


def test_the_panel_keeps_a_variation_it_is_given_to_reuse(panel):
    params = ImageParams(prompt="p", variation_seed=12, variation_strength=0.35, prompt_to="q", prompt_mix=0.5)
    panel.apply_params(params)
    assert panel.variation.is_expanded()
    assert panel.generate() is not None
    submitted = panel.host.submitted[-1]
    assert (submitted.variation_seed, submitted.variation_strength, submitted.prompt_to, submitted.prompt_mix) == (
        12, 0.35, "q", 0.5)


def test_vary_in_the_gallery_asks_for_the_items_recipe_with_its_own_seed(qtbot, tmp_path):
    from desktop.library import Gallery, Library, NewItem
    from desktop.ui.gallery import GalleryView

    path = tmp_path / "p.png"
    Image.new("RGB", (16, 16)).save(path)
    with Library(tmp_path / "library.db") as library:
        item_id = library.add(NewItem(generator_id="image.diffusers", kind="image", path=path, prompt="fox",
                                      model="demo", metadata={"params": {"prompt": "fox", "batch_size": 2},
                                                              "seed": 40, "model": "demo",
                                                              "output": {"seed": 41}})).result()
        view = GalleryView(Gallery(library))
        qtbot.addWidget(view)
        view.can_vary = lambda generator_id: generator_id == "image.diffusers"
        qtbot.waitUntil(lambda: view.model.total() == 1 and view.loader.pending() == 0)
        view.select_rows([0])
        assert view.actions_by_name["vary_subtle"].isEnabled() and view.actions_by_name["vary_strong"].isVisible()
        with qtbot.waitSignal(view.vary_requested, timeout=WAIT) as signal:
            view.actions_by_name["vary_strong"].trigger()
        generator_id, recipe, strength = signal.args
        assert (generator_id, recipe.params["prompt"], recipe.seed, recipe.model, strength) == (
            "image.diffusers", "fox", 41, "demo", VARY_STRONG)
        view.can_vary = lambda generator_id: False
        view.select_rows([0])
        assert not view.actions_by_name["vary_subtle"].isVisible()
        view.shutdown()
        assert item_id


def test_vary_from_the_window_submits_one_variation_through_the_engine(qtbot, tiny_sd, studiolo_home):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.library import Recipe
    from desktop.plugins import PluginManager
    from desktop.ui.main_window import MainWindow

    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache(), in_process=True))  # no worker process to start
    qtbot.addWidget(window)
    recipe = Recipe("image.diffusers", {**BASE, "steps": 2, "batch_size": 2}, seed=41, model=str(tiny_sd))
    assert window._can_vary("image.diffusers") and not window._can_vary("text.markov")
    with qtbot.waitSignal(window.engine.job_finished, timeout=120_000) as finished:
        job_id = window.vary("image.diffusers", recipe, VARY_SUBTLE)
    assert finished.args[0] == job_id
    job = window.engine.job(job_id)
    assert job.seed == 41 and job.params.batch_size == 1 and job.params.variation_strength == VARY_SUBTLE
    assert job.params.variation_seed is not None and len(finished.args[1]) == 1
    assert finished.args[1][0].metadata["variation_seed"] == job.params.variation_seed
    window.close()
