"""ControlNet units read from ComfyUI and InvokeAI PNGs, A1111's Extras-tab upscale text written by the ``upscale``
mode and read back (``plugins/image/metadata_extra.py``), and an upscale that does not fit memory refused before
it starts, with its estimate (``plugins/image/upscale_memory.py``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from desktop.api import ImageOutput, InsufficientMemoryError, to_json
from desktop.testing import run_generator
from plugins.image import upscale_memory
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import encode_png, read_reuse
from plugins.image.params import ImageParams
from plugins.image.upscale import load_upscaler
from plugins.image.upscale_memory import estimate_upscale_bytes
from plugins.image.upscale_mode import tile_overlap

GEN = DiffusersImageGenerator()
MB = 1024 * 1024


def png(*chunks: tuple[str, str]) -> bytes:
    """A small PNG with tEXt chunks, as A1111 (``PngInfo.add_text`` per item), ComfyUI and InvokeAI write them."""
    info = PngImagePlugin.PngInfo()
    for key, value in chunks:
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 90, 200)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


# -------------------------------------------------------------------------------------------- ComfyUI

# The graph of ComfyUI's ControlNet example (comfyanonymous.github.io/ComfyUI_examples/controlnet: a checkpoint,
# a ControlNetLoader, a LoadImage and a ControlNetApply into the KSampler's positive), with a second unit through
# ControlNetApplyAdvanced after a Canny node; input names as in ComfyUI's nodes.py (ControlNetLoader:
# control_net_name; ControlNetApply: conditioning, control_net, image, strength; ControlNetApplyAdvanced:
# positive, negative, control_net, image, strength, start_percent, end_percent; LoadImage: image, upload) and
# comfy_extras/nodes_canny.py (Canny: image, low_threshold, high_threshold on 0–1).
def comfy_graph(edges: Path) -> dict:
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 8566257, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
            "model": ["4", 0], "positive": ["12", 0], "negative": ["12", 1], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a house by a lake", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "10": {"class_type": "ControlNetApply", "inputs": {
            "conditioning": ["6", 0], "control_net": ["11", 0], "image": ["13", 0], "strength": 0.9}},
        "11": {"class_type": "ControlNetLoader",
               "inputs": {"control_net_name": "control_v11p_sd15_scribble_fp16.safetensors"}},
        "12": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["10", 0], "negative": ["7", 0], "control_net": ["14", 0], "image": ["15", 0],
            "strength": 0.6, "start_percent": 0.1, "end_percent": 0.75}},
        "13": {"class_type": "LoadImage", "inputs": {"image": "input_scribble_example.png", "upload": "image"}},
        "14": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control_v11p_sd15_canny.pth"}},
        "15": {"class_type": "Canny", "inputs": {"image": ["16", 0], "low_threshold": 0.4, "high_threshold": 0.8}},
        "16": {"class_type": "LoadImage", "inputs": {"image": str(edges), "upload": "image"}},
    }


def test_comfyui_controlnet_nodes_become_units_with_the_image_when_it_is_a_file(tmp_path):
    edges = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(edges)
    reuse = read_reuse(png(("prompt", json.dumps(comfy_graph(edges)))))
    assert reuse is not None and reuse.source == "comfyui" and reuse.params.prompt == "a house by a lake"
    assert reuse.params.controlnets == [
        "control_v11p_sd15_scribble_fp16.safetensors||0.9|0|1",  # "input_scribble_example.png": ComfyUI's folder
        f"control_v11p_sd15_canny.pth|{edges}|0.6|0.1|0.75|preprocess=canny|low=102|high=204",
    ]


def test_comfyui_unit_values_studiolo_cannot_hold_are_clamped_or_dropped(tmp_path):
    graph = comfy_graph(tmp_path / "gone.png")
    graph["10"]["inputs"]["strength"] = 7.5  # ComfyUI allows up to 10: Studiolo's most is 2
    graph["12"]["inputs"].update(start_percent=0.8, end_percent=0.2)  # not a span: the unit is dropped
    reuse = read_reuse(png(("prompt", json.dumps(graph))))
    assert reuse is not None
    assert reuse.params.controlnets == ["control_v11p_sd15_scribble_fp16.safetensors||2|0|1"]


# -------------------------------------------------------------------------------------------- InvokeAI

# invokeai_metadata as InvokeAI 4.x writes it: ``controlnets`` holds ControlNetMetadataField items
# (invokeai/app/invocations/metadata.py: image, processed_image, control_model, control_weight,
# begin_step_percent, end_step_percent, control_mode, resize_mode); 3.x named the model {model_name, base_model}.
INVOKE = {
    "generation_mode": "txt2img", "positive_prompt": "a lighthouse", "negative_prompt": "", "width": 768,
    "height": 512, "seed": 123, "cfg_scale": 7, "steps": 25, "scheduler": "euler",
    "model": {"key": "6f1c", "hash": "blake3:aa", "name": "Deliberate v2", "base": "sd-1", "type": "main"},
    "controlnets": [
        {"image": {"image_name": "0f5e0f10-d3a9.png"}, "processed_image": {"image_name": "91c2e2a4-0b3f.png"},
         "control_model": {"key": "a2f0", "hash": "blake3:bb", "name": "sd-controlnet-canny", "base": "sd-1",
                           "type": "controlnet"},
         "control_weight": 0.75, "begin_step_percent": 0, "end_step_percent": 0.8, "control_mode": "balanced",
         "resize_mode": "just_resize"},
        {"image": {"image_name": "x.png"}, "control_model": {"model_name": "depth", "base_model": "sd-1"},
         "control_weight": [0.5, 0.6], "begin_step_percent": 0.2, "end_step_percent": 1},
    ],
    "app_version": "4.2.0",
}


def test_invokeai_controlnets_become_units_without_their_gallery_images():
    reuse = read_reuse(png(("invokeai_metadata", json.dumps(INVOKE))))
    assert reuse is not None and reuse.source == "invokeai" and reuse.model == "Deliberate v2"
    assert reuse.params.controlnets == ["sd-controlnet-canny||0.75|0|0.8", "depth||0.5|0.2|1"]


def test_invokeai_control_layers_become_units():
    # InvokeAI 4.x's control layers (its frontend's MetadataUtil.add(g, {control_layers: {layers, version}})):
    layers = {"layers": [
        {"id": "control_adapter_layer_1", "type": "control_adapter_layer", "isEnabled": True, "controlAdapter": {
            "id": "ca1", "type": "controlnet", "model": {"key": "a2f0", "name": "sd-controlnet-canny"},
            "weight": 1.2, "beginEndStepPct": [0, 0.6], "controlMode": "balanced",
            "image": {"name": "0f5e.png", "width": 512, "height": 512},
            "processorConfig": {"id": "canny_image_processor", "type": "canny_image_processor",
                                "low_threshold": 50, "high_threshold": 150}}},
        {"id": "ip_layer", "type": "ip_adapter_layer", "isEnabled": True,
         "ipAdapter": {"model": {"name": "ip_adapter_sd15"}, "weight": 1}},
        {"id": "control_adapter_layer_2", "type": "control_adapter_layer", "isEnabled": False,
         "controlAdapter": {"type": "controlnet", "model": {"name": "off"}, "weight": 1}},
    ], "version": 2}
    data = {key: value for key, value in INVOKE.items() if key != "controlnets"} | {"control_layers": layers}
    reuse = read_reuse(png(("invokeai_metadata", json.dumps(data))))
    assert reuse is not None
    assert reuse.params.controlnets == ["sd-controlnet-canny||1.2|0|0.6|preprocess=canny|low=50|high=150"]


# ------------------------------------------------------------------------------------ A1111 Extras upscale

# What A1111's Extras tab saves (modules/postprocessing.py → images.save_image(..., pnginfo_section_name="extras",
# existing_info=...): the source's text chunks, "postprocessing" with the infotext, and "extras" with the same;
# the infotext from scripts/postprocessing_upscale.py: info["Postprocess upscale by"], then
# info["Postprocess upscaler"]).
EXTRAS = "Postprocess upscale by: 2, Postprocess upscaler: R-ESRGAN 4x+"
SOURCE = ("a castle on a hill\nNegative prompt: fog\nSteps: 24, Sampler: Euler a, CFG scale: 6, Seed: 99, "
          "Size: 512x768, Model: dreamshaper_8")


def test_an_a1111_extras_upscale_reads_back_as_an_upscale_job():
    reuse = read_reuse(png(("postprocessing", EXTRAS), ("extras", EXTRAS)))
    assert reuse is not None and reuse.source == "a1111"
    assert (reuse.params.mode, reuse.params.upscaler, reuse.params.upscale_by) == ("upscale", "R-ESRGAN 4x+", 2.0)
    # an upscaled A1111 picture keeps its generation's parameters: those are what "reuse" gives
    reuse = read_reuse(png(("parameters", SOURCE), ("postprocessing", EXTRAS), ("extras", EXTRAS)))
    assert reuse is not None and (reuse.params.mode, reuse.params.prompt, reuse.seed) == ("txt2img",
                                                                                           "a castle on a hill", 99)


def test_the_upscale_mode_writes_a1111_s_extras_text_and_reads_it_back():
    params = ImageParams(mode="upscale", init_image=Path("/pictures/in.png"), upscaler="/models/4x-UltraSharp.pth",
                         upscale_by=2.5)
    metadata = {"model": "demo", "params": to_json(params),
                "output": {"seed": 1, "batch_index": 0, "mode": "upscale", "upscaler": "4x-UltraSharp.pth",
                           "upscale_scale": 4}}
    data = encode_png(ImageOutput(image=Image.new("RGB", (8, 8))), metadata).data
    texts = Image.open(io.BytesIO(data)).text
    expected = "Postprocess upscale by: 2.5, Postprocess upscaler: 4x-UltraSharp"
    assert (texts["parameters"], texts["postprocessing"], texts["extras"]) == (expected, expected, expected)
    del metadata["params"]["upscale_by"]  # the model's own scale
    data = encode_png(ImageOutput(image=Image.new("RGB", (8, 8))), metadata).data
    assert Image.open(io.BytesIO(data)).text["parameters"] == "Postprocess upscale by: 4, Postprocess upscaler: " \
                                                              "4x-UltraSharp"
    reuse = read_reuse(png(("parameters", expected)))  # the text alone, as another tool would keep it
    assert reuse is not None
    assert (reuse.params.mode, reuse.params.upscaler, reuse.params.upscale_by) == ("upscale", "4x-UltraSharp", 2.5)


# ------------------------------------------------------------------------------------------- memory




@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "picture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_tiles_lower_the_estimate_and_it_is_above_the_network_s_own_feature_maps():
    shape = load_upscaler("demo").net.shape  # 8 features, ×4
    untiled = estimate_upscale_bytes(shape, 1024, 1024, tile=0, overlap=0, scale=4).total
    tiled = estimate_upscale_bytes(shape, 1024, 1024, tile=256, overlap=tile_overlap(256), scale=4).total
    assert tiled < untiled / 2
    # at least the last ×2 step's three 8-channel float32 maps at 4096² plus the 4096² output and its weights
    assert untiled > (3 * 8 * 4 + 16) * 4096 * 4096


def test_an_upscale_that_does_not_fit_is_refused_before_any_tile_naming_the_estimate_and_a_tile(
        sd, picture, monkeypatch):
    upscaler = load_upscaler("demo")
    asked = estimate_upscale_bytes(upscaler.net.shape, 64, 48, tile=0, overlap=0, scale=4).host
    fitting = estimate_upscale_bytes(upscaler.net.shape, 64, 48, tile=32, overlap=tile_overlap(32), scale=4).host
    assert fitting < asked
    free = int((fitting + asked) / 2 / 0.9)  # what the check allows of it: 90 %
    monkeypatch.setattr(upscale_memory, "available_ram", lambda: free)
    values = {"mode": "upscale", "init_image": str(picture), "upscaler": "demo", "upscale_tile": 0}
    with pytest.raises(InsufficientMemoryError) as refused:
        run_generator(GEN, values, handle=sd, seed=1)
    message = str(refused.value)
    assert f"64×48 picture ×4 untiled needs about {round(asked / MB)} MB of RAM" in message
    assert f"only {round(free / MB)} MB of RAM is free" in message
    assert "Set upscale_tile to 32" in message
    result = run_generator(GEN, {**values, "upscale_tile": 32}, handle=sd, seed=1)  # the suggested tile runs
    assert result.outputs[0].image.size == (256, 192)
    monkeypatch.setattr(upscale_memory, "available_ram", lambda: 1 * MB)  # nothing fits: say so
    with pytest.raises(InsufficientMemoryError, match="Even small tiles do not fit"):
        run_generator(GEN, {**values, "upscale_tile": 32}, handle=sd, seed=1)


def test_upscale_by_resizes_to_its_factor(sd, picture):
    result = run_generator(GEN, {"mode": "upscale", "init_image": str(picture), "upscaler": "demo",
                                 "upscale_tile": 32, "upscale_by": 1.5}, handle=sd, seed=1)
    assert result.outputs[0].image.size == (96, 72)


def test_a_hires_fix_whose_upscale_does_not_fit_is_refused_before_the_first_pass(sd, monkeypatch):
    monkeypatch.setattr(upscale_memory, "available_ram", lambda: 1 * MB)
    values = {"prompt": "a fox", "steps": 2, "width": 64, "height": 64, "hires_scale": 2.0, "hires_steps": 2,
              "hires_upscaler": "demo", "upscale_tile": 64}
    steps = []
    monkeypatch.setattr(sd.pipe.unet, "forward", lambda *a, **k: steps.append(1))  # any step would show here
    with pytest.raises(InsufficientMemoryError, match="Upscaling this 64×64 picture ×4"):
        run_generator(GEN, values, handle=sd, seed=1)
    assert steps == []
