"""ControlNet units through the real diffusers pipelines with tiny random models, the canny preprocessor, and
ControlNet units in the PNG metadata (A1111's ``ControlNet N`` settings and Studiolo's JSON)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from desktop.api import ImageOutput, LoadOptions, ModelFormatError, ParamError
from desktop.api.params import parse_assignments
from desktop.testing import run_generator
from plugins.image.controlnet import a1111_fields, parse_unit, units_from_a1111
from plugins.image.demo import build_tiny_controlnet
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import a1111_parameters, encode_png, read_params, read_reuse
from plugins.image.params import ImageParams
from plugins.image.preprocess import canny

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "steps": 3, "width": 64, "height": 64}



@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """Two tiny SD 1.x ControlNets (different weights), an SDXL-shaped one, an 80×80 checkerboard control image
    (not the output size: it gets resized), a 64×64 gradient with a bright square (a "photo") and a text file
    posing as an image."""
    root = tmp_path_factory.mktemp("controlnets")
    yy, xx = np.mgrid[0:80, 0:80]
    Image.fromarray(((xx // 10 + yy // 10) % 2 * 255).astype(np.uint8)).convert("RGB").save(root / "board.png")
    yy, xx = np.mgrid[0:64, 0:64]
    photo = np.stack([xx * 2, yy * 2, xx + yy], -1).astype(np.uint8)
    photo[16:48, 16:48] = 255  # a bright square: edges for canny
    Image.fromarray(photo).save(root / "photo.png")
    (root / "notes.png").write_text("not a picture")
    return {"a": build_tiny_controlnet(root / "cn-a", seed=1), "b": build_tiny_controlnet(root / "cn-b", seed=2),
            "xl": build_tiny_controlnet(root / "cn-xl", sdxl=True), "root": root}


def run(handle, **params):
    return run_generator(GEN, {**BASE, **params}, handle=handle, seed=3)


def image_of(handle, **params) -> np.ndarray:
    (output,) = run(handle, **params).outputs
    return np.asarray(output.image).astype(np.int16)


def unit(nets, name="a", image="board.png", rest=""):
    return f"{nets[name]}|{nets['root'] / image}{rest}"


# ------------------------------------------------------------------------------------------------ generation


def test_a_controlnet_changes_the_picture_and_a_resized_control_image_is_noted(sd, nets):
    plain = image_of(sd)
    result = run(sd, controlnets=[unit(nets)])
    controlled = np.asarray(result.outputs[0].image).astype(np.int16)
    assert np.abs(controlled - plain).max() > 10
    assert any("ControlNet unit 1" in w and "80×80" in w and "64×64" in w for w in result.warnings)


def test_weight_0_is_the_picture_without_control_pixel_for_pixel(sd, nets, tmp_path):
    unused = build_tiny_controlnet(tmp_path / "cn-unused", seed=4)
    weight_0 = f"{unused}|{nets['root'] / 'board.png'}|0"
    assert np.array_equal(image_of(sd, controlnets=[weight_0]), image_of(sd))
    assert ("model", str(unused.resolve())) not in sd.controlnets  # a unit of weight 0 is skipped, never loaded


def test_an_sdxl_controlnet_works_on_an_sdxl_model(tiny_sdxl, nets):
    options = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False}
    sdxl = GEN.load(tiny_sdxl, "cpu", LoadOptions(options))
    plain = image_of(sdxl)
    assert np.abs(image_of(sdxl, controlnets=[unit(nets, "xl")]) - plain).max() > 10
    assert type(next(iter(p for k, p in sdxl.controlnets.items() if k[0] == "pipe"))).__name__ == \
        "StableDiffusionXLControlNetPipeline"
    with pytest.raises(ModelFormatError, match="made for another model family"):
        run(sdxl, controlnets=[unit(nets, "a")])


def test_two_units_at_once_use_a_multicontrolnet_and_both_count(sd, nets):
    from diffusers import MultiControlNetModel

    first = image_of(sd, controlnets=[unit(nets, "a")])
    second = image_of(sd, controlnets=[unit(nets, "b", rest="|0.8|0|0.6")])
    both = image_of(sd, controlnets=[unit(nets, "a"), unit(nets, "b", rest="|0.8|0|0.6")])
    assert np.abs(both - first).max() > 10 and np.abs(both - second).max() > 10
    assert any(isinstance(getattr(pipe, "controlnet", None), MultiControlNetModel)
               for pipe in sd.controlnets.values())


@pytest.mark.parametrize("mode", ["img2img", "inpaint"])
def test_img2img_and_inpaint_take_a_controlnet(sd, nets, mode):
    inputs = {"mode": mode, "init_image": str(nets["root"] / "photo.png"),
              "mask_image": str(nets["root"] / "board.png")}
    plain = image_of(sd, **inputs)
    assert np.abs(image_of(sd, controlnets=[unit(nets)], **inputs) - plain).max() > 10


def test_preprocess_canny_gives_the_pipeline_the_edges_of_the_photo(sd, nets):
    from desktop.api import validate
    from plugins.image.controlnet import prepare_control

    notes: list[str] = []
    params = validate(ImageParams(**{**BASE, "controlnets": [
        unit(nets, image="photo.png", rest="|preprocess=canny|low=50|high=150"), unit(nets, "b", image="photo.png")]}),
        ImageParams)
    job = prepare_control(sd, params, "txt2img", SimpleNamespace(warn=notes.append))
    edges, as_is = (np.asarray(image) for image in job.kwargs["image"])
    with Image.open(nets["root"] / "photo.png") as photo:
        assert np.array_equal(edges, np.asarray(canny(photo, 50, 150)))
        assert np.array_equal(as_is, np.asarray(photo.convert("RGB")))
    assert set(np.unique(edges)) == {0, 255} and notes == []  # already 64×64: no note


def test_a_controlnet_of_another_family_is_refused_and_the_model_keeps_serving(sd, nets):
    with pytest.raises(ModelFormatError, match="ControlNet unit 1: cn-xl is made for another model family") as info:
        run(sd, controlnets=[unit(nets, "xl")])
    assert info.value.hint and "family" in info.value.hint
    assert run(sd).outputs  # the same loaded model still makes pictures


def test_a_control_image_that_is_not_an_image_or_missing_is_refused(sd, nets):
    with pytest.raises(ParamError, match="ControlNet unit 2: notes.png is not an image"):
        run(sd, controlnets=[unit(nets), unit(nets, "b", image="notes.png")])
    with pytest.raises(ParamError, match="ControlNet unit 1: no such image file"):
        run(sd, controlnets=[unit(nets, image="missing.png")])
    with pytest.raises(ParamError, match="ControlNet unit 1: no control image"):
        run(sd, controlnets=[f"{nets['a']}|"])


def test_a_pickled_controlnet_is_refused_unless_pickles_are_allowed(sd, nets, tmp_path):
    import shutil

    import torch

    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(nets["a"] / "config.json", folder / "config.json")
    torch.save({"w": torch.zeros(1)}, folder / "diffusion_pytorch_model.bin")
    with pytest.raises(ModelFormatError, match="(?i)pickle"):
        run(sd, controlnets=[f"{folder}|{nets['root'] / 'board.png'}"])


@pytest.mark.parametrize(("text", "message"), [
    ("only-a-model", "write it as MODEL|IMAGE"),
    ("m|i.png|heavy", "weight must be a number"),
    ("m|i.png|3", "weight must be between 0 and 2"),
    ("m|i.png|1|0.7|0.2", "0 <= start < end <= 1"),
    ("m|i.png|1|0|1|2", "too many fields"),
    ("m|i.png|preprocess=lineart", "preprocess must be one of none, canny, depth"),
    ("m|i.png|colour=red", "unknown field 'colour'"),
])
def test_a_badly_written_unit_is_refused_naming_the_unit(text, message):
    with pytest.raises(ParamError, match=f"ControlNet unit 2: .*{message.replace('|', '.')}") as info:
        parse_unit(text, 2)
    assert info.value.field == "controlnets"


def test_at_most_three_units():
    with pytest.raises(ParamError, match="at most 3"):
        parse_assignments(ImageParams, [f"controlnets=m{k}|i.png" for k in range(4)])


def test_the_cli_runs_a_controlnet_with_canny_from_a_photo(nets, tmp_path):
    out = tmp_path / "fox.png"
    result = run_cli("generate", "image.diffusers", "--model", "demo", "--param", "prompt=a red fox",
                     "--param", "steps=2", "--param", "width=64", "--param", "height=64", "--seed", "7",
                     "--param", f"controlnets={unit(nets, image='photo.png', rest='|0.9|0|1|preprocess=canny')}",
                     "--output", str(out))
    assert result.returncode == 0, result.stderr
    params = read_params(out)
    assert params is not None and params.controlnets == [unit(nets, image='photo.png',
                                                              rest='|0.9|0|1|preprocess=canny')]


# ------------------------------------------------------------------------------------------------ canny


def test_canny_draws_the_edges_of_a_square_white_on_black():
    import cv2

    picture = np.zeros((48, 48, 3), np.uint8)
    picture[12:36, 12:36] = 255
    edges = np.asarray(canny(Image.fromarray(picture), 100, 200))
    assert edges.shape == (48, 48, 3) and set(np.unique(edges)) == {0, 255}
    assert np.array_equal(edges[..., 0], cv2.Canny(picture[..., 0], 100, 200))
    assert edges[24, 11:13].max() == 255 and edges[24, 35:37].max() == 255  # the left and right sides
    assert edges[24, 20:28].max() == 0 and edges[2:6, 2:6].max() == 0  # nothing inside or outside


# ------------------------------------------------------------------------------------------------ metadata


def _metadata(params: ImageParams) -> dict:
    from desktop.api import to_json

    return {"model": "/models/dreamshaper_8.safetensors", "params": to_json(params), "prompt": params.prompt,
            "seed": 5, "output": {"seed": 5, "batch_index": 0, "mode": params.mode}}


def test_units_are_written_as_a1111_writes_them_and_read_back():
    params = ImageParams(prompt="a fox", controlnets=["/cn/control_canny|/in/photo.png|0.8|0.1|0.9|preprocess=canny",
                                                      "/cn/depth-model|/in/depth.png"])
    text = a1111_parameters(_metadata(params))
    assert ('ControlNet 0: "Module: canny, Model: control_canny, Weight: 0.8, Resize Mode: Just Resize, '
            'Threshold A: 100, Threshold B: 200, Guidance Start: 0.1, Guidance End: 0.9, Pixel Perfect: False, '
            'Control Mode: Balanced"') in text
    assert 'ControlNet 1: "Module: none, Model: depth-model, Weight: 1, ' in text
    reuse = read_reuse(png_with_parameters(text))
    assert reuse is not None and reuse.source == "a1111"
    assert reuse.params.controlnets == ["control_canny||0.8|0.1|0.9|preprocess=canny|low=100|high=200",
                                        "depth-model||1|0|1"]


def test_units_from_an_a1111_file_keep_weights_and_steps_and_drop_the_model_hash():
    text = ("a house\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
            'ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.65, '
            "Resize Mode: Crop and Resize, Low Vram: False, Processor Res: 512, Threshold A: 64, Threshold B: 128, "
            'Guidance Start: 0.05, Guidance End: 0.8, Pixel Perfect: True, Control Mode: Balanced", '
            'ControlNet 1: "Module: none, Model: None, Weight: 1, Guidance Start: 0, Guidance End: 1"')
    params = read_params(png_with_parameters(text))
    assert params is not None
    assert params.controlnets == ["control_v11p_sd15_canny||0.65|0.05|0.8|preprocess=canny|low=64|high=128"]
    assert units_from_a1111({"ControlNet 0": "Module: none, Model: x, Weight: 9"}) == []  # out of range: dropped


def test_units_round_trip_through_studiolos_json():
    params = ImageParams(prompt="a fox", controlnets=["/cn/a|/in/a.png|0.5|0|0.7", "/cn/b|/in/b.png"])
    data = encode_png(ImageOutput(image=Image.new("RGB", (8, 8))), _metadata(params)).data
    assert read_params(data).controlnets == params.controlnets
    assert a1111_fields(["not a unit"]) == []  # metadata never raises on a unit it cannot read


def png_with_parameters(text: str) -> bytes:
    import io

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
