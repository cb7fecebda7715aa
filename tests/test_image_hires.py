"""Hires fix (``plugins/image/hires.py``) on the tiny SD model, 64×64 → 128×128: the size, the same pixels as the
chain of direct diffusers calls (latent and model upscaler), one progress bar over both passes, previews in both,
cancel within a step of either pass without decoding, refusals named before any step, the A1111 fields written
and read back, and the command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import run_cli
from PIL import Image

from desktop.api import ImageOutput, ParamError, to_json
from desktop.testing import run_generator
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import a1111_parameters, encode_png, read_reuse
from plugins.image.params import ImageParams
from plugins.image.upscale import load_upscaler
from plugins.image.upscale_mode import tile_overlap

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "negative_prompt": "blurry", "steps": 2, "width": 64, "height": 64,
        "guidance_scale": 5.0, "hires_scale": 2.0, "hires_steps": 2, "hires_denoise": 0.5}
# per run: 2 txt2img steps + int(2 × 0.5) = 1 img2img step



@pytest.fixture(scope="module")
def direct(tiny_sd):
    """The same model loaded by diffusers itself: its txt2img pipeline and the img2img one made from it."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    txt2img = StableDiffusionPipeline.from_pretrained(str(tiny_sd), local_files_only=True)
    txt2img.set_progress_bar_config(disable=True)
    img2img = StableDiffusionImg2ImgPipeline.from_pipe(txt2img)
    img2img.set_progress_bar_config(disable=True)
    return txt2img, img2img


@pytest.fixture
def counts(sd, monkeypatch):
    """UNet forward calls and VAE decodes of the loaded model."""
    calls = {"unet": 0, "decode": 0}
    original = sd.pipe.vae.decode

    def decode(*args, **kwargs):
        calls["decode"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(sd.pipe.vae, "decode", decode)
    hook = sd.pipe.unet.register_forward_hook(lambda *args: calls.__setitem__("unet", calls["unet"] + 1))
    yield calls
    hook.remove()


def run(handle, seed=1, **params):
    return run_generator(GEN, {**BASE, **params}, handle=handle, seed=seed)


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def direct_chain(direct, seed, upscale):
    """The documented chain: txt2img with a generator seeded with ``seed``, ``upscale``, then img2img with a
    fresh generator seeded with ``seed``."""
    txt2img, img2img = direct
    args = {"prompt": "a red fox", "negative_prompt": "blurry", "guidance_scale": 5.0}
    first = txt2img(**args, num_inference_steps=2, width=64, height=64,
                    generator=torch.Generator().manual_seed(seed), **upscale["first"]).images
    return img2img(**args, image=upscale["larger"](first), strength=0.5, num_inference_steps=2,
                   generator=torch.Generator().manual_seed(seed)).images[0]


def test_latent_hires_fix_is_the_direct_chain_of_diffusers_calls_at_twice_the_size(sd, direct):
    (output,) = run(sd, seed=77).outputs
    assert output.image.size == (128, 128)
    assert output.metadata.items() >= {"seed": 77, "batch_index": 0, "mode": "txt2img"}.items()
    latent = {"first": {"output_type": "latent"},
              "larger": lambda latents: torch.nn.functional.interpolate(latents, size=(16, 16), mode="bilinear")}
    expected = direct_chain(direct, 77, latent)
    assert np.array_equal(pixels(output.image), pixels(expected))  # bit-identical
    (plain,) = run(sd, seed=77, hires_scale=1.0).outputs  # off: the 64×64 txt2img picture
    assert plain.image.size == (64, 64)
    (other,) = run(sd, seed=78).outputs
    assert not np.array_equal(pixels(output.image), pixels(other.image))


def test_model_upscaler_hires_fix_is_the_direct_chain_with_the_upscaler_between(sd, direct):
    (output,) = run(sd, seed=5, hires_upscaler="demo", upscale_tile=32).outputs
    assert output.image.size == (128, 128)
    upscaler = load_upscaler("demo")  # ×4: 64 → 256, brought down to 128

    def larger(images):
        return [upscaler.upscale(image, tile=32, overlap=tile_overlap(32)).resize((128, 128), Image.Resampling.LANCZOS)
                for image in images]

    expected = direct_chain(direct, 5, {"first": {}, "larger": larger})
    assert np.array_equal(pixels(output.image), pixels(expected))
    (latent,) = run(sd, seed=5).outputs
    assert not np.array_equal(pixels(output.image), pixels(latent.image))


def test_with_a_controlnet_both_passes_are_guided_as_the_direct_chain_of_controlnet_calls(sd, direct, tmp_path):
    """sd-webui-controlnet's hires pass: the control image brought to the final size guides the img2img pass too."""
    from diffusers import ControlNetModel, StableDiffusionControlNetImg2ImgPipeline, StableDiffusionControlNetPipeline

    from plugins.image.demo import build_tiny_controlnet

    folder = build_tiny_controlnet(tmp_path / "cn", seed=2)
    yy, xx = np.mgrid[0:64, 0:64]
    board = Image.fromarray(((xx // 8 + yy // 8) % 2 * 255).astype(np.uint8)).convert("RGB")
    board.save(tmp_path / "board.png")
    (output,) = run(sd, seed=9, controlnets=[f"{folder}|{tmp_path / 'board.png'}|0.8"]).outputs
    assert output.image.size == (128, 128)
    controlnet = ControlNetModel.from_pretrained(str(folder), local_files_only=True)
    first = StableDiffusionControlNetPipeline.from_pipe(direct[0], controlnet=controlnet)
    second = StableDiffusionControlNetImg2ImgPipeline.from_pipe(direct[0], controlnet=controlnet)
    for pipe in (first, second):
        pipe.set_progress_bar_config(disable=True)
    args = {"prompt": "a red fox", "negative_prompt": "blurry", "guidance_scale": 5.0,
            "controlnet_conditioning_scale": 0.8}
    latents = first(**args, image=board, num_inference_steps=2, width=64, height=64, output_type="latent",
                    generator=torch.Generator().manual_seed(9)).images
    larger = torch.nn.functional.interpolate(latents, size=(16, 16), mode="bilinear")
    expected = second(**args, image=larger, control_image=board.resize((128, 128), Image.Resampling.LANCZOS),
                      strength=0.5, num_inference_steps=2, generator=torch.Generator().manual_seed(9)).images[0]
    assert np.array_equal(pixels(output.image), pixels(expected))
    (unguided,) = run(sd, seed=9).outputs
    assert not np.array_equal(pixels(output.image), pixels(unguided.image))


def test_one_progress_bar_over_both_passes_and_previews_in_both(sd, counts):
    result = run(sd, batch_count=2, preview_every=1)
    assert [p[:2] for p in result.progress] == [(k, 6) for k in range(1, 7)]  # 2 runs × (2 + 1 steps)
    assert [p.size for p in result.previews] == [(64, 64), (64, 64), (128, 128)] * 2
    assert counts == {"unet": 6, "decode": 2}  # one UNet call a step (guidance batched); one decode a run


@pytest.mark.parametrize("upscaler", ["latent", "demo"])
def test_cancel_within_a_step_of_the_first_pass_never_decodes(sd, counts, upscaler):
    result = run_generator(GEN, {**BASE, "hires_upscaler": upscaler}, handle=sd, seed=3, cancel_after=1)
    assert result.cancelled and result.outputs == [] and result.progress_after_cancel == 0
    assert counts == {"unet": 1, "decode": 0}  # one step ran; nothing was decoded


@pytest.mark.parametrize("upscaler, decodes", [("latent", 0), ("demo", 1)])
def test_cancel_within_a_step_of_the_second_pass_never_decodes_it(sd, counts, upscaler, decodes):
    params = {**BASE, "hires_upscaler": upscaler, "hires_denoise": 1.0}  # 2 + 2 steps
    result = run_generator(GEN, params, handle=sd, seed=3, cancel_after=3)  # the second pass's first step
    assert result.cancelled and result.outputs == [] and result.progress_after_cancel == 0
    assert [p[:2] for p in result.progress] == [(1, 4), (2, 4), (3, 4)]
    assert counts == {"unet": 3, "decode": decodes}  # the model upscaler needs the first pass's picture only


@pytest.mark.parametrize("params, field", [
    ({"mode": "img2img"}, "hires_scale"),
    ({"hires_scale": 1.3}, "hires_scale"),  # 83×83: not a multiple of 8
    ({"width": 1024, "height": 1024, "hires_scale": 2.5}, "hires_scale"),  # 2560 > 2048
    ({"hires_denoise": 0.2}, "hires_denoise"),  # int(2 × 0.2) = 0 steps
    ({"hires_upscaler": " "}, "hires_upscaler"),
    ({"hires_upscaler": "/no/such/upscaler.safetensors"}, "hires_upscaler"),
])
def test_refusals_name_the_field_before_any_step(sd, counts, params, field):
    with pytest.raises(ParamError) as caught:
        run(sd, **params)
    assert caught.value.field == field
    assert counts == {"unet": 0, "decode": 0}


def test_a1111_fields_are_written_as_a1111_writes_them_and_read_back(tmp_path):
    params = ImageParams(prompt="a red fox", steps=3, width=64, height=64, hires_scale=2.0, hires_steps=10,
                         hires_denoise=0.45)
    metadata = {"params": to_json(params), "seed": 42, "model": "demo"}
    text = a1111_parameters(metadata)
    assert "Denoising strength: 0.45, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent" in text
    path = tmp_path / "hires.png"
    path.write_bytes(encode_png(ImageOutput(image=Image.new("RGB", (128, 128))), metadata).data)
    assert read_reuse(path).params == params  # Studiolo's JSON
    from plugins.image.metadata import _from_a1111

    a1111 = _from_a1111(text)
    assert a1111.params == params and a1111.source == "a1111"
    demo = _from_a1111(a1111_parameters({"params": to_json(ImageParams(hires_scale=1.5, hires_upscaler="demo"))}))
    assert demo.params.hires_upscaler == "demo" and demo.params.hires_scale == 1.5 and demo.params.hires_steps == 0
    assert "Hires" not in a1111_parameters({"params": to_json(ImageParams())})  # off: nothing written
    img2img = _from_a1111("a fox\nSteps: 20, Sampler: Euler, Seed: 1, Denoising strength: 0.3")
    assert img2img.params.strength == 0.3 and img2img.params.hires_scale == 1  # without hires: img2img's strength
    nearest = _from_a1111("a fox\nSteps: 20, Seed: 1, Hires upscale: 2, Hires upscaler: Latent (nearest-exact)")
    assert nearest.params.hires_upscaler == "latent" and nearest.params.hires_denoise == 0.5


def test_hires_fix_from_the_command_line(tmp_path):
    out = tmp_path / "fox.png"
    result = run_cli("generate", "image.diffusers", "--model", "demo", "--param", "prompt=a red fox",
                     "--param", "steps=2", "--param", "width=64", "--param", "height=64",
                     "--param", "hires_scale=2", "--seed", "7", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "3/3" in result.stderr  # one bar: 2 + int(2 × 0.5)
    with Image.open(out) as image:
        assert image.size == (128, 128) and "Hires upscale: 2" in image.text["parameters"]
    bad = run_cli("generate", "image.diffusers", "--model", "demo", "--param", "hires_scale=2",
                  "--param", "mode=img2img", "--output", str(tmp_path / "bad.png"))
    assert bad.returncode != 0 and "hires_scale" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.png").exists()
