"""The built-in image generator (``image.diffusers``) on tiny random-weight Stable Diffusion models, built once
per session: modes, seeds, batches, schedulers, LoRAs, single files, previews, cancel, errors, and the way in
through the entry point, the engine and the command line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import run_cli, run_python
from image_models import make_lora, write_single_file
from PIL import Image

from desktop.api import ImageOutput, LoadOptions, ModelFormatError, ParamError, to_json, validate
from desktop.testing import run_generator
from plugins.image.generator import SCHEDULERS, DiffusersImageGenerator
from plugins.image.loras import parse_lora
from plugins.image.params import ImageParams
from plugins.image.pipelines import config_folder_for

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "steps": 3, "width": 64, "height": 64}
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


def load(path, allow_pickle=False, **options):
    values = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False, **options}
    return GEN.load(path, "cpu", LoadOptions(values, allow_pickle=allow_pickle))


@pytest.fixture(scope="module")
def sd(tiny_sd):
    """The tiny SD model, loaded once for the module (each job sets its own scheduler and LoRAs)."""
    return load(tiny_sd)


def run(handle, seed=1, **params):
    return run_generator(GEN, {**BASE, **params}, handle=handle, seed=seed)


def pixels(output) -> np.ndarray:
    return np.asarray(output.image).astype(np.int16)


def image_of(handle, seed=1, **params) -> np.ndarray:
    (output,) = run(handle, seed, **params).outputs
    return pixels(output)


@pytest.fixture
def images(tmp_path):
    """An 80×80 gradient init image (not the output size, so it gets resized), a half mask, a black mask, and a
    text file posing as an image."""
    yy, xx = np.mgrid[0:80, 0:80]
    Image.fromarray(np.stack([xx * 3, yy * 3, (xx + yy) * 1.5], -1).clip(0, 255).astype(np.uint8)).save(
        tmp_path / "init.png")
    half = np.zeros((64, 64), np.uint8)
    half[:, :32] = 255
    Image.fromarray(half).save(tmp_path / "half.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "black.png")
    (tmp_path / "notes.png").write_text("not a picture")
    return tmp_path


@pytest.fixture
def decode_calls(sd, monkeypatch):
    """Counts VAE decodes (the expensive step previews and cancels must avoid)."""
    calls = []
    vae = sd.pipe.vae
    original = vae.decode

    def counting(latents, *args, **kwargs):
        calls.append(latents.shape[0])
        return original(latents, *args, **kwargs)

    monkeypatch.setattr(vae, "decode", counting)
    return calls


# ---------------------------------------------------------------------------------------------- txt2img


def test_txt2img_makes_an_image_of_the_size_asked_reporting_each_step(sd):
    result = run(sd, seed=9, width=64, height=96)
    (output,) = result.outputs
    assert isinstance(output, ImageOutput) and output.image.size == (64, 96) and output.image.mode == "RGB"
    assert output.metadata.items() >= {"seed": 9, "batch_index": 0, "mode": "txt2img", "dtype": "float32"}.items()
    assert output.metadata["scheduler"].endswith("Scheduler") and "num_train_timesteps" in output.metadata[
        "scheduler_config"]  # recorded for "reproduce exactly"
    assert [p[:2] for p in result.progress] == [(1, 3), (2, 3), (3, 3)]
    assert pixels(output).std() > 1  # a picture, not a flat colour
    assert result.warnings == []


def test_a_prompt_longer_than_the_model_reads_is_a_warning(sd):
    result = run(sd, prompt="a fox " * 30)  # the tiny tokenizer reads letters: 120 tokens > 77
    assert result.warnings == ["The prompt is longer than this model reads (75 tokens): the end is ignored."]
    assert len(result.outputs) == 1


def test_the_same_seed_gives_the_same_pixels_as_calling_diffusers_directly(sd, tiny_sd):
    import torch
    from diffusers import StableDiffusionPipeline

    ours = image_of(sd, seed=1234, negative_prompt="blurry", guidance_scale=5.0)
    direct_pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd), local_files_only=True)
    direct_pipe.set_progress_bar_config(disable=True)
    direct = direct_pipe("a red fox", negative_prompt="blurry", num_inference_steps=3, guidance_scale=5.0,
                         width=64, height=64, generator=torch.Generator().manual_seed(1234)).images[0]
    assert np.array_equal(ours, np.asarray(direct).astype(np.int16))  # bit-identical
    assert np.array_equal(ours, image_of(sd, seed=1234, negative_prompt="blurry", guidance_scale=5.0))
    assert not np.array_equal(ours, image_of(sd, seed=1235, negative_prompt="blurry", guidance_scale=5.0))
    assert not np.array_equal(ours, image_of(sd, seed=1234, prompt="a blue whale", negative_prompt="blurry",
                                             guidance_scale=5.0))


# Single run vs the same seed inside a batch: the same picture, but not always the same bits. A batch runs the
# UNet and text encoder on a tensor of another shape, and the CPU's matrix products then add in another order (as
# do other thread counts): a few values round to the neighbouring 8-bit level. Worst measured (tiny SD, 64x64,
# 3 steps; 8 runs from seeds 1, 7, 9, 40, 100, 555, 2024, 31337 with batch size 1-4, and 2 runs of 1 and of 2;
# 1, 2 and 4 torch threads, each in its own process; AMD EPYC, AVX2, torch 2.13 CPU): 1 level, 2 of 12,288 values
# for single vs batched at one thread count, 6 of 12,288 across thread counts; the machine: 1 level,
# 4 values. The bound below leaves room for other CPUs and still fails on another seed's picture, where 99% of
# the values differ, by up to 230 levels.
BATCH_MAX_LEVELS = 2  # no value further than this from the single run's
BATCH_MAX_DIFFERING = 0.01  # fraction of values that may differ at all (measured at most 0.05%)


def assert_same_picture(batched: np.ndarray, single: np.ndarray, what: str) -> None:
    """``batched`` is ``single`` up to the rounding a different batch shape or thread count gives (see above)."""
    assert batched.shape == single.shape, what
    diff = np.abs(batched - single)
    assert diff.max() <= BATCH_MAX_LEVELS, f"{what}: a value differs by {diff.max()} levels"
    assert (diff > 0).mean() <= BATCH_MAX_DIFFERING, f"{what}: {(diff > 0).sum()} of {diff.size} values differ"


def test_a_batch_gives_each_image_its_own_seed_and_the_picture_of_a_single_run(sd):
    """Image k of a batch is the single run with seed 40 + k: no value more than 2 levels off, at most 1% of values
    off at all (measured worst: 1 level, 6 of 12,288 values; see the note above)."""
    result = run(sd, seed=40, batch_size=2, batch_count=2)
    assert len(result.outputs) == 4
    assert [o.metadata["seed"] for o in result.outputs] == [40, 41, 42, 43]
    assert [o.metadata["batch_index"] for o in result.outputs] == [0, 1, 2, 3]
    assert [p[:2] for p in result.progress] == [(i, 6) for i in range(1, 7)]  # counted across the whole batch
    for k, output in enumerate(result.outputs):
        assert_same_picture(pixels(output), image_of(sd, seed=40 + k), f"image {k} of the batch")
    assert not np.array_equal(pixels(result.outputs[0]), pixels(result.outputs[1]))


def test_the_same_batch_or_single_run_twice_gives_identical_pixels(sd):
    """Same model, parameters, seed *and* batch shape (and thread count): bit-identical, every time."""
    first = [pixels(o) for o in run(sd, seed=40, batch_size=2, batch_count=2).outputs]
    again = [pixels(o) for o in run(sd, seed=40, batch_size=2, batch_count=2).outputs]
    assert len(first) == len(again) == 4
    for k, (a, b) in enumerate(zip(first, again, strict=True)):
        assert np.array_equal(a, b), f"image {k} of the batch"
    assert np.array_equal(image_of(sd, seed=42), image_of(sd, seed=42))


# --------------------------------------------------------------------------------------- img2img, inpaint


def test_img2img_starts_from_the_init_image_resized_and_runs_strength_times_steps(sd, images):
    init = images / "init.png"
    result = run(sd, seed=3, mode="img2img", init_image=str(init), strength=0.5, steps=4)
    (output,) = result.outputs
    assert output.image.size == (64, 64) and output.metadata["mode"] == "img2img"
    assert [p[:2] for p in result.progress] == [(1, 2), (2, 2)]  # 4 steps × strength 0.5
    from_init = pixels(output)
    assert not np.array_equal(from_init, image_of(sd, seed=3, steps=4))  # not the txt2img picture
    flipped = images / "flipped.png"
    Image.open(init).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)
    assert not np.array_equal(from_init, image_of(sd, seed=3, mode="img2img", init_image=str(flipped),
                                                  strength=0.5, steps=4))  # the init image matters
    assert not np.array_equal(from_init, image_of(sd, seed=3, mode="img2img", init_image=str(init),
                                                  strength=1.0, steps=4))  # so does the strength
    assert np.array_equal(from_init, image_of(sd, seed=3, mode="img2img", init_image=str(init), strength=0.5,
                                              steps=4))  # and it is reproducible
    img2img = sd.pipeline("img2img")
    assert img2img is sd.pipeline("img2img") and img2img.unet is sd.pipe.unet  # built once, sharing the weights


def test_inpaint_repaints_only_under_the_mask(sd, images):
    def inpaint(mask, prompt):
        return image_of(sd, seed=5, mode="inpaint", init_image=str(images / "init.png"),
                        mask_image=str(images / mask), strength=1.0, prompt=prompt, steps=3)

    # A black mask keeps everything: the prompt then changes nothing at all.
    assert np.array_equal(inpaint("black.png", "a red fox"), inpaint("black.png", "a blue whale"))
    # A mask over the left half: the prompt changes the left half much more than the kept right half.
    change = np.abs(inpaint("half.png", "a red fox") - inpaint("half.png", "a blue whale"))
    assert change[:, :32].mean() > 2 * change[:, 32:].mean() and change[:, :32].mean() > 1
    assert sd.pipeline("inpaint").vae is sd.pipe.vae


# -------------------------------------------------------------------------------------------- schedulers


def test_every_scheduler_runs_they_differ_and_default_restores_the_models_own(sd):
    default = image_of(sd, seed=8)
    made = {name: image_of(sd, seed=8, scheduler=name) for name in SCHEDULERS}
    assert type(sd.pipe.scheduler).__name__ == "UniPCMultistepScheduler"  # the last one is in place
    assert np.array_equal(made["euler"], default)  # the tiny model's own scheduler is Euler, same config
    for name in ("euler_a", "dpmpp_2m", "ddim", "unipc"):
        assert not np.array_equal(made[name], default), name
    assert not np.array_equal(made["euler_a"], made["dpmpp_2m"])
    assert np.array_equal(image_of(sd, seed=8, scheduler="default"), default)
    assert sd.pipe.scheduler is sd.original_scheduler
    assert np.array_equal(image_of(sd, seed=8, scheduler="euler_a"), made["euler_a"])  # ancestral: seeded too


# ------------------------------------------------------------------------------------------------ LoRAs


def test_loras_apply_reweight_and_remove_in_place_restoring_the_exact_base_pixels(sd, tiny_sd, tmp_path):
    lora = make_lora(tiny_sd, tmp_path / "style.safetensors")
    other = make_lora(tiny_sd, tmp_path / "other.safetensors", seed=2)
    pipe, unet, loads = sd.pipe, sd.pipe.unet, sd.loras.loads
    base = image_of(sd, seed=2)
    with_lora = image_of(sd, seed=2, loras=[str(lora)])
    assert np.abs(with_lora - base).mean() > 1
    half = image_of(sd, seed=2, loras=[f"{lora}:0.5"])
    assert not np.array_equal(half, with_lora) and not np.array_equal(half, base)
    both = image_of(sd, seed=2, loras=[f"{lora}:0.5", str(other)])
    assert not np.array_equal(both, half)
    assert np.array_equal(image_of(sd, seed=2, loras=[f"{lora}:0.5"]), half)  # `other` removed alone
    assert sd.loras.loads == loads + 2  # each file loaded once; weights changed in place
    assert np.array_equal(image_of(sd, seed=2), base)  # all removed: exactly the base model again
    assert sd.pipe is pipe and sd.pipe.unet is unet  # never reloaded
    assert not any(sd.pipe.get_list_adapters().values())


def test_a_lora_for_another_base_model_is_refused_naming_it_and_the_model_is_unharmed(sd, tiny_sdxl, tmp_path):
    base = image_of(sd, seed=4)
    xl_lora = make_lora(tiny_sdxl, tmp_path / "for-sdxl.safetensors")
    with pytest.raises(ModelFormatError, match="for-sdxl.safetensors is a LoRA for another base model"):
        run(sd, seed=4, loras=[str(xl_lora)])
    assert np.array_equal(image_of(sd, seed=4), base)


@pytest.mark.parametrize("text, path, weight", [
    ("/loras/a.safetensors", "/loras/a.safetensors", 1.0),
    ("/loras/a.safetensors:0.6", "/loras/a.safetensors", 0.6),
    ("/loras/a.safetensors:-1", "/loras/a.safetensors", -1.0),
    ("C:\\loras\\a.safetensors", "C:\\loras\\a.safetensors", 1.0),
    ("C:\\loras\\a.safetensors:0.25", "C:\\loras\\a.safetensors", 0.25),
    ("/loras/v2:beta.safetensors", "/loras/v2:beta.safetensors", 1.0),
])
def test_lora_entries_are_path_or_path_colon_weight_windows_drives_included(text, path, weight):
    spec = parse_lora(text)
    assert str(spec.path) == str(type(spec.path)(path)) and spec.weight == weight


def test_lora_mistakes_are_clear(sd, tmp_path):
    with pytest.raises(ParamError, match="'loras'.*no LoRA file at"):
        run(sd, loras=[str(tmp_path / "missing.safetensors")])
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x02 pickle")
    with pytest.raises(ModelFormatError, match="old.ckpt is a pickle-format weights file"):
        run(sd, loras=[str(ckpt)])
    with pytest.raises(ParamError, match="finite number"):
        parse_lora("/loras/a.safetensors:nan")


# ------------------------------------------------------------------------------------------ single file


def test_a_single_file_checkpoint_loads_offline_with_its_config_beside_it(sd, tiny_sd, tmp_path):
    checkpoint = write_single_file(tiny_sd, tmp_path / "tiny.safetensors")
    assert config_folder_for(checkpoint) == tmp_path / "tiny.config"
    single = load(checkpoint)
    assert np.array_equal(image_of(single, seed=6), image_of(sd, seed=6))  # the same weights, converted


def test_a_single_file_without_a_config_fails_at_once_saying_what_to_do(tiny_sd, tmp_path):
    checkpoint = write_single_file(tiny_sd, tmp_path / "lonely.safetensors", config_folder=False)
    with pytest.raises(ModelFormatError) as info:
        load(checkpoint)
    error = info.value
    assert "lonely.safetensors is a single-file checkpoint (it looks like Stable Diffusion 1.x)" in error.message
    assert "lonely.config" in error.hint and "model_index.json" in error.hint
    shutil.copytree(tiny_sd, tmp_path / "lonely", ignore=shutil.ignore_patterns("*.safetensors"))
    assert config_folder_for(checkpoint) == tmp_path / "lonely"  # the NAME/ form is found too


# ------------------------------------------------------------------------------------ previews, cancel


def test_previews_come_every_n_steps_without_decoding(sd, decode_calls):
    result = run(sd, steps=4, preview_every=2)
    assert len(result.previews) == 2 and decode_calls == [1]  # the one decode is the final image's
    assert all(isinstance(p, Image.Image) and p.size == (64, 64) for p in result.previews)
    assert not np.array_equal(np.asarray(result.previews[0]), np.asarray(result.previews[1]))
    batch = run(sd, steps=2, preview_every=1, batch_size=2)
    assert len(batch.previews) == 2 and batch.previews[0].size == (128, 64)  # the batch side by side
    assert run(sd, steps=2, preview_every=0).previews == []


def test_cancel_lands_within_a_step_keeps_finished_images_and_never_decodes_the_unfinished(sd, decode_calls):
    unet_calls = []
    hook = sd.pipe.unet.register_forward_hook(lambda *args: unet_calls.append(1))
    try:
        result = run_generator(GEN, {**BASE, "steps": 4, "batch_count": 3}, handle=sd, seed=11, cancel_after=6)
    finally:
        hook.remove()
    assert result.cancelled and result.progress_after_cancel == 0
    assert len(result.progress) == 6 and len(unet_calls) == 6  # no denoising step ran after the cancel
    (finished,) = result.outputs  # the first run's image, delivered as partial
    assert finished.partial and finished.metadata["seed"] == 11
    assert decode_calls == [1]  # only the finished image was decoded
    early = run_generator(GEN, {**BASE, "steps": 4}, handle=sd, seed=11, cancel_after=1)
    assert early.cancelled and early.outputs == [] and decode_calls == [1]


# ------------------------------------------------------------------------------------------------- SDXL


def test_a_tiny_sdxl_model_does_txt2img_and_img2img_with_previews(tiny_sdxl, images):
    xl = load(tiny_sdxl)
    assert xl.is_sdxl and type(xl.pipe).__name__ == "StableDiffusionXLPipeline"
    result = run(xl, seed=2, preview_every=1)
    (output,) = result.outputs
    assert output.image.size == (64, 64) and len(result.previews) == 3
    assert not np.array_equal(pixels(output), image_of(xl, seed=3))
    changed = run(xl, seed=2, mode="img2img", init_image=str(images / "init.png"), strength=0.7)
    assert changed.outputs[0].image.size == (64, 64)


# ----------------------------------------------------------------------------------- loading and options


def test_load_options_dtype_and_memory_savers(tiny_sd):
    import torch

    model = load(tiny_sd, attention_slicing=True, vae_tiling=True, cpu_offload=True)
    assert model.pipe.unet.dtype == torch.float32  # auto: float32 off CUDA
    result = run(model, seed=1)
    assert result.outputs[0].image.size == (64, 64)
    assert result.warnings == ["CPU offload only helps on a CUDA GPU; it is ignored on cpu."]
    weights = sum(p.stat().st_size for p in tiny_sd.rglob("*.safetensors"))
    assert 0.9 * weights < GEN.handle_size(model) < 1.1 * weights


@pytest.mark.parametrize("broken", ["single", "folder"])
def test_a_truncated_safetensors_file_is_refused_naming_it(tiny_sd, tmp_path, broken):
    if broken == "single":
        target = write_single_file(tiny_sd, tmp_path / "cut.safetensors")
        model = target
    else:
        model = tmp_path / "model"
        shutil.copytree(tiny_sd, model)
        target = model / "unet" / "diffusion_pytorch_model.safetensors"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=f"{target.name} is not a valid safetensors file: it is truncated"):
        load(model)


def test_pickle_checkpoints_need_permission_and_other_files_are_refused(tmp_path):
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x02 not really a model")
    with pytest.raises(ModelFormatError, match="old.ckpt is a pickle-format weights file") as info:
        load(ckpt)
    assert "allow pickle" in info.value.hint
    with pytest.raises(ModelFormatError, match="old.ckpt is a single-file checkpoint"):
        load(ckpt, allow_pickle=True)  # allowed: it gets as far as looking for its config
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="not a diffusers model folder"):
        load(tmp_path / "empty")
    with pytest.raises(ModelFormatError, match="notes.txt is not a model file"):
        (tmp_path / "notes.txt").write_text("hello")
        load(tmp_path / "notes.txt")


# ----------------------------------------------------------------------------------------- bad params


@pytest.mark.parametrize("values, field, allowed", [
    ({"steps": 0}, "steps", "must be between 1 and 150"),
    ({"width": 100}, "width", "must be a multiple of 8"),
    ({"scheduler": "k_lms"}, "scheduler", "must be one of default, euler"),
])
def test_the_schema_refuses_bad_values(values, field, allowed):
    with pytest.raises(ParamError, match=allowed) as info:
        validate(ImageParams(**{**BASE, **values}))
    assert info.value.field == field


def test_bad_images_and_strength_are_clear_errors(sd, images):
    with pytest.raises(ParamError, match="'init_image': None — img2img needs an init image"):
        run(sd, mode="img2img")
    with pytest.raises(ParamError, match="'mask_image': None — inpaint needs a mask image"):
        run(sd, mode="inpaint", init_image=str(images / "init.png"))
    with pytest.raises(ParamError, match=r"'init_image': '.*notes\.png' — not an image file"):
        run(sd, mode="img2img", init_image=str(images / "notes.png"))
    with pytest.raises(ParamError, match=r"'init_image': '.*nowhere\.png' — no such image file"):
        run(sd, mode="img2img", init_image=str(images / "nowhere.png"))
    with pytest.raises(ParamError, match="'strength': 0.2 — too low for 4 steps"):
        run(sd, mode="img2img", init_image=str(images / "init.png"), strength=0.2, steps=4)


def test_an_inpainting_model_asks_for_inpaint_mode():
    import types

    inpainting_model = types.SimpleNamespace(inpainting_only=True, notes=[])  # refused before any pipeline work
    with pytest.raises(ParamError, match="'mode': 'txt2img' — this is an inpainting model: use inpaint"):
        run(inpainting_model)


# --------------------------------------------------------------------------------- the ways in: host


def test_importing_the_plugin_imports_no_torch():
    code = ("import sys\nimport plugins.image, plugins.image.generator\n"
            "print('TORCH' if {'torch', 'diffusers'} & set(sys.modules) else 'CLEAN')\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CLEAN"


def test_registered_by_entry_point():
    from desktop.plugins import PluginManager

    generator = PluginManager().load().generator("image.diffusers")
    assert isinstance(generator, DiffusersImageGenerator)
    assert generator.kind == "image" and generator.default_model == "demo" and generator.has_demo_model
    assert generator.recommended_models[0].ref == "stabilityai/sd-turbo"
    assert all(m.size_checked == "2026-11" for m in generator.recommended_models)


def test_outputs_carry_a1111_metadata_that_reads_back(tmp_path):
    params = ImageParams(prompt="a red fox", negative_prompt="blurry", steps=3, width=64, height=64)
    metadata = {"params": to_json(params), "seed": 42, "model": "demo", "output": {"seed": 43}}
    encoded = GEN.encode_output(ImageOutput(image=Image.new("RGB", (64, 64))), metadata)
    path = tmp_path / "out.png"
    path.write_bytes(encoded.data)
    text = Image.open(path).text["parameters"]
    assert text.startswith("a red fox\nNegative prompt: blurry\nSteps: 3,") and "Seed: 43" in text
    assert GEN.params_from_file(path) == params
    assert GEN.params_from_file(tmp_path / "missing.png") is None


def test_the_generator_provides_its_own_panel(qtbot, studiolo_home):
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.panel_host import GeneratorHost
    from plugins.image.panel import ImagePanel

    plugins = PluginManager(Settings()).load()
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None)
    host = GeneratorHost(engine, plugins.generator("image.diffusers"), model=lambda: "demo", seed=lambda: None,
                         message=lambda text, error: None)
    panel = GEN.create_panel(host)
    qtbot.addWidget(panel)
    assert isinstance(panel, ImagePanel)
    engine.shutdown()


def test_one_job_through_the_real_engine_after_bad_input_it_refused(tiny_sd, qtbot, tmp_path):
    """In the generator's worker process: a ControlNet of another family, a control image that is not an image and
    an add-on model that is not downloaded each fail their job with a clear message; the worker keeps serving."""
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from plugins.image.demo import build_tiny_controlnet

    xl = build_tiny_controlnet(tmp_path / "xl", sdxl=True)
    Image.new("RGB", (64, 64), "white").save(tmp_path / "map.png")
    (tmp_path / "notes.png").write_text("not a picture", encoding="utf-8")
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache())
    try:
        for unit, said in ((f"{xl}|{tmp_path / 'map.png'}", "made for another model family"),
                           (f"demo|{tmp_path / 'notes.png'}", "is not an image that can be read"),
                           (f"acme/absent-cn|{tmp_path / 'map.png'}", "Models page")):
            with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
                engine.submit("image.diffusers", {**BASE, "steps": 1, "controlnets": [unit]}, model=str(tiny_sd))
            assert said in str(failed.args[1]), failed.args[1]
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
            job = engine.submit("image.diffusers", {**BASE, "steps": 2, "batch_size": 2}, model=str(tiny_sd),
                                seed=21)
        job_id, outputs = finished.args
        assert job_id == job.id and [o.metadata["seed"] for o in outputs] == [21, 22]
        assert all(o.image.size == (64, 64) for o in outputs)
    finally:
        assert engine.shutdown(timeout=30)


def test_generate_from_the_command_line_with_the_demo_model(tmp_path):
    out = tmp_path / "fox.png"
    result = run_cli("generate", "image.diffusers", "--model", "demo", "--param", "prompt=a red fox",
                     "--param", "steps=2", "--param", "width=64", "--param", "height=64", "--seed", "7",
                     "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "2/2" in result.stderr and "seed 7" in result.stderr
    with Image.open(out) as image:
        assert image.size == (64, 64)


def test_the_image_page_in_the_window_fills_prompt_generates_and_shows_the_image(tiny_sd, qtbot, studiolo_home):
    import os

    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.ui.main_window import MainWindow

    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("image.diffusers")
    page.model_chooser.set_ref(str(tiny_sd))
    panel = page.custom_panel
    qtbot.keyClicks(panel.prompt, "a lighthouse at dusk")
    panel.width_spin.setValue(64)
    panel.height_spin.setValue(64)
    panel.steps.setValue(3)
    with qtbot.waitSignal(window.engine.job_finished, timeout=120_000) as finished:
        job_id = panel.generate()
    assert finished.args[0] == job_id
    job = window.engine.job(job_id)
    assert job.params.prompt == "a lighthouse at dusk" and job.params.steps == 3
    assert len(panel.results()) == 1 and not panel.viewer.view.image().isNull()
    assert job.saved[0].suffix == ".png" and "parameters" in Image.open(job.saved[0]).text
    if os.environ.get("STUDIOLO_SCREENSHOTS"):
        window.grab().save(os.path.join(os.environ["STUDIOLO_SCREENSHOTS"], "image-panel.png"))
    window.close()
