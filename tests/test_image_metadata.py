"""The image generator's PNG metadata: the A1111 ``parameters`` and ``studiolo`` chunks it writes, and reading
parameters back from Studiolo, AUTOMATIC1111, ComfyUI and InvokeAI PNGs — without ever raising."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from desktop.api import EncodedOutput, ImageOutput, to_json, validate
from plugins.image import metadata as meta
from plugins.image.metadata import Reuse, a1111_parameters, encode_png, read_params, read_reuse
from plugins.image.params import ImageParams

SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------- helpers


def host_metadata(params: ImageParams, *, seed: int | None = 42, output: dict[str, Any] | None = None,
                  model: str = "/models/dreamshaper_8.safetensors") -> dict[str, Any]:
    """What the engine passes to ``encode_output`` (see ``Worker.metadata``)."""
    return {
        "studiolo_version": "0.1.0",
        "generator": "image",
        "generator_version": "0.1.0",
        "kind": "image",
        "model": model,
        "params": to_json(params),
        "prompt": params.prompt,
        "seed": seed,
        "device": "cuda:0",
        "job_id": "job-1",
        "created": "2024-05-01T12:00:00+0000",
        "timings": {"load": 1.5, "generate": 3.25},
        "partial": False,
        "output": {"seed": 43, "batch_index": 1, "mode": params.mode} if output is None else output,
    }


def image(colour: tuple[int, int, int] = (200, 30, 90)) -> Image.Image:
    return Image.new("RGB", (16, 16), colour)


def studiolo_png(params: ImageParams, **kwargs: Any) -> bytes:
    return encode_png(ImageOutput(image=image()), host_metadata(params, **kwargs)).data


def png_with_text(*items: tuple[str, str], itxt: bool = False, zip: bool = False) -> bytes:
    """A small PNG carrying text chunks, written by Pillow as other tools write them."""
    info = PngImagePlugin.PngInfo()
    for key, value in items:
        if itxt:
            info.add_itxt(key, value, zip=zip)
        else:
            info.add_text(key, value)
    buffer = io.BytesIO()
    image((10, 120, 10)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a well-formed PNG."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def assemble(parts: list[tuple[bytes, bytes]]) -> bytes:
    return SIGNATURE + b"".join(chunk(kind, data) for kind, data in parts)


def with_chunks(png: bytes, *extra: bytes, drop: tuple[bytes, ...] = ()) -> bytes:
    """``png`` with raw chunks inserted after IHDR and text chunks whose keyword is in ``drop`` removed."""
    parts = [(k, d) for k, d in chunks(png) if not (k in (b"tEXt", b"iTXt", b"zTXt") and d.split(b"\0")[0] in drop)]
    body = b"".join(chunk(k, d) for k, d in parts[1:])
    return SIGNATURE + chunk(*parts[0]) + b"".join(extra) + body


def text_chunk(key: str, value: bytes) -> bytes:
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + value)


def itxt_chunk(key: str, value: bytes, *, compressed: bool = False) -> bytes:
    body = zlib.compress(value) if compressed else value
    return chunk(b"iTXt", key.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + body)


def reuse_bytes(data: bytes, tmp_path: Path) -> Reuse | None:
    """Read from the bytes and from a file; both must agree."""
    path = tmp_path / "x.png"
    path.write_bytes(data)
    from_file = read_reuse(path)
    assert read_reuse(data) == from_file
    return from_file


FULL = ImageParams(
    prompt="a lighthouse on a cliff\nat dusk, oil painting",
    negative_prompt="blurry, lowres",
    mode="img2img",
    width=768,
    height=1024,
    steps=33,
    guidance_scale=6.5,
    scheduler="dpmpp_2m",
    batch_size=3,
    batch_count=2,
    strength=0.55,
    init_image=Path("/pictures/start.png"),
    mask_image=Path("/pictures/mask.png"),
    loras=["/loras/detail.safetensors:0.8", "/loras/style.safetensors"],
    preview_every=5,
    dtype="bfloat16",
    attention_slicing=True,
    vae_tiling=True,
    cpu_offload=True,
)


# ---------------------------------------------------------------------------------------------- writing


def test_encode_png_writes_a1111_parameters_in_the_exact_layout() -> None:
    params = ImageParams(prompt="a cat\nin a hat", negative_prompt="blurry", width=768, height=512, steps=30,
                         guidance_scale=7.5, scheduler="euler_a")
    encoded = encode_png(ImageOutput(image=image()), host_metadata(params))
    assert isinstance(encoded, EncodedOutput)
    assert encoded.suffix == ".png" and encoded.embeds_metadata is True
    with Image.open(io.BytesIO(encoded.data)) as im:
        im.load()
        assert im.getpixel((3, 3)) == (200, 30, 90)
        text = im.text
    assert text["parameters"] == (
        "a cat\nin a hat\n"
        "Negative prompt: blurry\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 43, Size: 768x512, Model: dreamshaper_8"
    )
    assert text["Software"] == "Studiolo"
    assert text["Description"] == "a cat\nin a hat"


def test_encode_png_writes_the_full_metadata_as_studiolo_itxt() -> None:
    metadata = host_metadata(FULL)
    data = encode_png(ImageOutput(image=image()), metadata).data
    with Image.open(io.BytesIO(data)) as im:
        raw = im.text["studiolo"]
    assert isinstance(raw, PngImagePlugin.iTXt)
    assert json.loads(raw) == json.loads(json.dumps(metadata))
    assert json.loads(raw)["params"]["init_image"] == "/pictures/start.png"


def test_settings_line_without_negative_prompt_and_plain_model_name() -> None:
    params = ImageParams(prompt="x", steps=4, guidance_scale=0.0)
    text = a1111_parameters(host_metadata(params, model="stabilityai/sd-turbo"))
    assert text == "x\nSteps: 4, Sampler: Default, CFG scale: 0, Seed: 43, Size: 512x512, Model: stabilityai/sd-turbo"


@pytest.mark.parametrize("scheduler, sampler", [("default", "Default"), ("euler", "Euler"), ("euler_a", "Euler a"),
                                                ("dpmpp_2m", "DPM++ 2M"), ("ddim", "DDIM"), ("unipc", "UniPC")])
def test_scheduler_names_map_to_a1111_samplers(scheduler: str, sampler: str) -> None:
    text = a1111_parameters(host_metadata(ImageParams(scheduler=scheduler)))
    assert f"Sampler: {sampler}, " in text


def test_non_latin1_prompt_survives(tmp_path: Path) -> None:
    prompt = "猫が帽子をかぶっている — café, Ωmega 🐱"
    params = ImageParams(prompt=prompt, negative_prompt="ぼやけた")
    data = studiolo_png(params)
    with Image.open(io.BytesIO(data)) as im:
        assert im.text["parameters"].startswith(prompt + "\nNegative prompt: ぼやけた\nSteps: ")
        assert isinstance(im.text["parameters"], PngImagePlugin.iTXt)
    assert reuse_bytes(data, tmp_path).params.prompt == prompt  # type: ignore[union-attr]
    a1111 = reuse_bytes(with_chunks(data, drop=(b"studiolo",)), tmp_path)
    assert a1111 is not None and a1111.source == "a1111"
    assert (a1111.params.prompt, a1111.params.negative_prompt) == (prompt, "ぼやけた")


def test_the_image_s_own_seed_is_used() -> None:
    params = ImageParams(prompt="p")
    assert "Seed: 1001," in a1111_parameters(host_metadata(params, seed=1000, output={"seed": 1001, "batch_index": 1}))
    assert "Seed: 1000," in a1111_parameters(host_metadata(params, seed=1000, output={"batch_index": 0}))
    assert "Seed:" not in a1111_parameters(host_metadata(params, seed=None, output={}))


@pytest.mark.parametrize("mode, expected", [("txt2img", False), ("img2img", True), ("inpaint", True)])
def test_denoising_strength_only_for_img2img_and_inpaint(mode: str, expected: bool) -> None:
    text = a1111_parameters(host_metadata(ImageParams(mode=mode, strength=0.35)))
    assert text.endswith(", Denoising strength: 0.35") is expected
    assert ("Denoising strength" in text) is expected


def test_loras_are_listed_with_their_weights_and_hashes() -> None:
    params = ImageParams(loras=["/loras/detail.safetensors:0.8", "C:\\loras\\style.safetensors"])
    text = a1111_parameters(host_metadata(params, output={"seed": 1, "lora_hashes": {"detail": "7c6ab1e4b1f8"}}))
    assert text.endswith(', Lora hashes: "detail: 7c6ab1e4b1f8", Loras: "detail: 0.8, style: 1"')


def test_modes_png_cannot_hold_are_converted() -> None:
    for mode in ("CMYK", "RGBa", "F"):
        data = encode_png(ImageOutput(image=Image.new(mode, (8, 8))), host_metadata(ImageParams())).data
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode in ("RGB", "RGBA")


# ------------------------------------------------------------------------------------------- round trip


def test_round_trip_gives_back_every_field_the_seed_and_the_model(tmp_path: Path) -> None:
    data = studiolo_png(FULL)
    assert reuse_bytes(data, tmp_path) == Reuse(FULL, 43, "/models/dreamshaper_8.safetensors", "studiolo")
    assert read_params(tmp_path / "x.png") == FULL
    assert read_params(str(tmp_path / "x.png")) == FULL


def test_round_trip_falls_back_to_the_job_seed(tmp_path: Path) -> None:
    data = studiolo_png(ImageParams(prompt="p"), seed=7, output={"batch_index": 0})
    assert reuse_bytes(data, tmp_path).seed == 7  # type: ignore[union-attr]


def test_our_a1111_chunk_reads_back_without_the_studiolo_chunk(tmp_path: Path) -> None:
    data = with_chunks(studiolo_png(FULL), drop=(b"studiolo",))
    reuse = reuse_bytes(data, tmp_path)
    assert reuse == Reuse(ImageParams(prompt=FULL.prompt, negative_prompt=FULL.negative_prompt, width=768,
                                      height=1024, steps=33, guidance_scale=6.5, scheduler="dpmpp_2m",
                                      strength=0.55), 43, "dreamshaper_8", "a1111")


def test_a_broken_studiolo_chunk_falls_back_to_the_next_source(tmp_path: Path) -> None:
    data = with_chunks(studiolo_png(FULL), itxt_chunk("studiolo", b'{"params": '), drop=(b"studiolo",))
    assert reuse_bytes(data, tmp_path).source == "a1111"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ foreign files

A1111_TEXT = (
    "masterpiece, a lighthouse on a cliff,\n"
    "dramatic sky, <lora:detail:0.6>\n"
    "Negative prompt: lowres, bad anatomy,\n"
    "watermark\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 3141592653, Size: 832x1216, "
    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Denoising strength: 0.35, Hires upscale: 1.5, "
    'Lora hashes: "detail: 7c6ab1e4b1f8", Version: v1.7.0'
)


def test_a1111_png(tmp_path: Path) -> None:
    reuse = reuse_bytes(png_with_text(("parameters", A1111_TEXT)), tmp_path)
    assert reuse == Reuse(
        ImageParams(prompt="masterpiece, a lighthouse on a cliff,\ndramatic sky, <lora:detail:0.6>",
                    negative_prompt="lowres, bad anatomy,\nwatermark", width=832, height=1216, steps=28,
                    guidance_scale=6.5, scheduler="dpmpp_2m", hires_scale=1.5, hires_denoise=0.35),
        3141592653, "sd_xl_base_1.0", "a1111")


def test_a1111_newer_layout_and_values_that_do_not_fit(tmp_path: Path) -> None:
    text = ("portrait\nSteps: 500, Sampler: LMS, Schedule type: Karras, CFG scale: abc, Seed: 99999999999999999999999, "
            "Size: 775x3000, Model: \"my, model\", Version: f2.0.1")
    reuse = reuse_bytes(png_with_text(("parameters", text)), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="portrait", width=768, height=2048, steps=150), None, "my, model",
                          "a1111")
    euler = reuse_bytes(png_with_text(("parameters", "Steps: 8, Sampler: Euler a, Seed: 5")), tmp_path)
    assert euler == Reuse(ImageParams(steps=8, scheduler="euler_a"), 5, None, "a1111")


def test_a1111_text_without_a_settings_line_is_not_parameters(tmp_path: Path) -> None:
    assert reuse_bytes(png_with_text(("parameters", "just a caption, nothing else")), tmp_path) is None


COMFY_PROMPT = {
    "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler_ancestral",
                     "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
                     "negative": ["7", 0], "latent_image": ["5", 0]},
          "class_type": "KSampler", "_meta": {"title": "KSampler"}},
    "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple",
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"inputs": {"width": 512, "height": 768, "batch_size": 2}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, purple galaxy bottle",
                     "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"},
}
COMFY_EXPECTED = Reuse(
    ImageParams(prompt="beautiful scenery nature glass bottle landscape, purple galaxy bottle",
                negative_prompt="text, watermark", width=512, height=768, steps=20, guidance_scale=8.0,
                scheduler="euler_a", batch_size=2),
    156680208700286, "v1-5-pruned-emaonly.safetensors", "comfyui")


def test_comfyui_png(tmp_path: Path) -> None:
    data = png_with_text(("prompt", json.dumps(COMFY_PROMPT)), ("workflow", json.dumps({"nodes": [], "links": []})))
    assert reuse_bytes(data, tmp_path) == COMFY_EXPECTED


def test_comfyui_values_through_links_loras_and_a_hires_pass(tmp_path: Path) -> None:
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "enable", "noise_seed": ["12", 0], "steps": 25, "cfg": 5.5, "sampler_name": "dpmpp_2m",
        "scheduler": "karras", "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable",
        "model": ["11", 0], "positive": ["14", 0], "negative": ["7", 0], "latent_image": ["5", 0]}}
    graph["6"]["inputs"]["text"] = ["10", 0]
    graph["10"] = {"class_type": "String Literal", "inputs": {"string": "a red fox in the snow"}}
    graph["11"] = {"class_type": "LoraLoader", "inputs": {"lora_name": "fox.safetensors", "strength_model": 1,
                                                          "strength_clip": 1, "model": ["4", 0], "clip": ["4", 1]}}
    graph["12"] = {"class_type": "Seed (rgthree)", "inputs": {"seed": 987654321}}
    graph["14"] = {"class_type": "ControlNetApply", "inputs": {"conditioning": ["6", 0], "control_net": ["15", 0],
                                                               "strength": 0.8}}
    # a hires-fix second pass, listed first: its latent is an upscale, not an empty latent
    graph["1"] = {"class_type": "KSampler", "inputs": {
        "seed": 1, "steps": 9, "cfg": 3, "sampler_name": "ddim", "scheduler": "normal", "denoise": 0.5,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["13", 0]}}
    graph["13"] = {"class_type": "LatentUpscale", "inputs": {"samples": ["3", 0], "upscale_method": "nearest-exact",
                                                             "width": 1024, "height": 1536, "crop": "disabled"}}
    reuse = reuse_bytes(png_with_text(("prompt", json.dumps(graph))), tmp_path)
    assert reuse == Reuse(replace(COMFY_EXPECTED.params, prompt="a red fox in the snow", steps=25,
                                  guidance_scale=5.5, scheduler="dpmpp_2m"),
                          987654321, "v1-5-pruned-emaonly.safetensors", "comfyui")


def test_comfyui_img2img_denoise_is_the_strength(tmp_path: Path) -> None:
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["3"]["inputs"].update(denoise=0.6, sampler_name="uni_pc", latent_image=["20", 0])
    graph["20"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["21", 0], "vae": ["4", 2]}}
    graph["21"] = {"class_type": "LoadImage", "inputs": {"image": "photo.png", "upload": "image"}}
    reuse = reuse_bytes(png_with_text(("prompt", json.dumps(graph))), tmp_path)
    assert reuse == Reuse(replace(COMFY_EXPECTED.params, width=512, height=512, batch_size=1, strength=0.6,
                                  scheduler="unipc"), COMFY_EXPECTED.seed, COMFY_EXPECTED.model, "comfyui")


def test_comfyui_workflow_chunk_alone(tmp_path: Path) -> None:
    workflow = {
        "last_node_id": 10, "last_link_id": 10,
        "nodes": [
            {"id": 3, "type": "KSampler", "inputs": [
                {"name": "model", "type": "MODEL", "link": 1}, {"name": "positive", "type": "CONDITIONING", "link": 4},
                {"name": "negative", "type": "CONDITIONING", "link": 6},
                {"name": "latent_image", "type": "LATENT", "link": 2}],
             "widgets_values": [42, "fixed", 12, 4.5, "ddim", "normal", 1]},
            {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["dreamshaper_8.safetensors"]},
            {"id": 5, "type": "EmptyLatentImage", "widgets_values": [640, 448, 1]},
            {"id": 6, "type": "CLIPTextEncode", "inputs": [
                {"name": "clip", "type": "CLIP", "link": 3},
                {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 9}],
             "widgets_values": ["stale text"]},
            {"id": 7, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "type": "CLIP", "link": 5}],
             "widgets_values": ["ugly"]},
            {"id": 10, "type": "PrimitiveNode", "widgets_values": ["a castle in the clouds"]},
        ],
        "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"],
                  [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"],
                  {"id": 9, "origin_id": 10, "origin_slot": 0, "target_id": 6, "target_slot": 1, "type": "STRING"}],
    }
    reuse = reuse_bytes(png_with_text(("workflow", json.dumps(workflow))), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="a castle in the clouds", negative_prompt="ugly", width=640, height=448,
                                      steps=12, guidance_scale=4.5, scheduler="ddim"),
                          42, "dreamshaper_8.safetensors", "comfyui")


def test_invokeai_png(tmp_path: Path) -> None:
    metadata = {
        "generation_mode": "txt2img", "positive_prompt": "a cozy cabin, snow", "negative_prompt": "people",
        "width": 1024, "height": 1024, "seed": 2349876, "rand_device": "cpu", "cfg_scale": 7.5,
        "cfg_rescale_multiplier": 0, "steps": 30, "scheduler": "dpmpp_2m_k",
        "model": {"key": "0b1c", "hash": "blake3:abc", "name": "Juggernaut XL v9", "base": "sdxl", "type": "main"},
        "app_version": "4.2.4",
    }
    reuse = reuse_bytes(png_with_text(("invokeai_metadata", json.dumps(metadata))), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="a cozy cabin, snow", negative_prompt="people", width=1024,
                                      height=1024, steps=30, guidance_scale=7.5, scheduler="dpmpp_2m"),
                          2349876, "Juggernaut XL v9", "invokeai")
    older = {"positive_prompt": "x", "scheduler": "k_lms", "model": {"model_name": "sd-1.5", "base_model": "sd-1"}}
    reuse = reuse_bytes(png_with_text(("invokeai_metadata", json.dumps(older))), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="x"), None, "sd-1.5", "invokeai")


# ------------------------------------------------------------------------------------------ hostile input


def test_truncation_at_every_offset(tmp_path: Path) -> None:
    data = studiolo_png(FULL)
    full = read_reuse(data)
    a1111 = read_reuse(with_chunks(data, drop=(b"studiolo",)))
    seen = set()
    for end in range(len(data) + 1):
        result = read_reuse(data[:end])
        assert result in (None, a1111, full), end
        seen.add(None if result is None else result.source)
    assert seen == {None, "a1111", "studiolo"}
    assert full is not None and full.source == "studiolo"


def test_text_chunks_beyond_pillow_s_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = ImageParams(prompt="word " * 300_000)  # 1.5 MB: Pillow refuses it compressed
    metadata = json.dumps(host_metadata(big)).encode()
    base = with_chunks(studiolo_png(ImageParams(prompt="small")), drop=(b"studiolo",))
    for compressed in (True, False):
        data = with_chunks(base, itxt_chunk("studiolo", metadata, compressed=compressed))
        if compressed:
            with pytest.raises(ValueError):
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
        assert reuse_bytes(data, tmp_path).params.prompt == big.prompt  # type: ignore[union-attr]
    # over the limit: ignored, the next source is used
    monkeypatch.setattr("desktop.api.png.MAX_TEXT_CHUNK", 1024 * 1024)
    for compressed in (True, False):
        data = with_chunks(base, itxt_chunk("studiolo", metadata, compressed=compressed))
        assert reuse_bytes(data, tmp_path).params.prompt == "small"  # type: ignore[union-attr]


def test_nan_and_infinity_are_dropped_field_by_field(tmp_path: Path) -> None:
    studiolo = b'{"params": {"prompt": "p", "steps": NaN, "guidance_scale": Infinity, "width": -Infinity, ' \
               b'"strength": 0.5}, "seed": NaN, "output": {"seed": Infinity}}'
    reuse = reuse_bytes(with_chunks(png_with_text(), itxt_chunk("studiolo", studiolo)), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="p", strength=0.5), None, None, "studiolo")
    invoke = b'{"positive_prompt": "q", "cfg_scale": NaN, "seed": -Infinity, "width": Infinity}'
    reuse = reuse_bytes(with_chunks(png_with_text(), text_chunk("invokeai_metadata", invoke)), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="q"), None, None, "invokeai")


def test_deep_nesting(tmp_path: Path) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    nested = b'{"params": {"prompt": ' + deep + b'}}'
    for key in ("studiolo", "prompt", "workflow", "invokeai_metadata"):
        for value in (deep, nested):
            assert reuse_bytes(with_chunks(png_with_text(), itxt_chunk(key, value)), tmp_path) is None
    fallback = with_chunks(png_with_text(("parameters", A1111_TEXT)), itxt_chunk("studiolo", nested))
    assert reuse_bytes(fallback, tmp_path).source == "a1111"  # type: ignore[union-attr]
    # a long but parseable chain of links ends without recursion or hanging
    graph = {str(i): {"class_type": "Reroute", "inputs": {"x": [str(i + 1), 0]}} for i in range(10, 5000)}
    graph["3"] = {"class_type": "KSampler", "inputs": {"seed": 1, "positive": ["10", 0], "latent_image": ["10", 0],
                                                       "model": ["10", 0], "steps": ["10", 0]}}
    graph["5000"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "end", "x": ["10", 0]}}
    assert reuse_bytes(png_with_text(("prompt", json.dumps(graph))), tmp_path) == Reuse(
        ImageParams(), 1, None, "comfyui")


def test_wrong_types_everywhere(tmp_path: Path) -> None:
    params = {"prompt": ["a"], "negative_prompt": "n\x00o", "steps": "30", "width": -512, "height": 10**30,
              "guidance_scale": True, "scheduler": 5, "loras": "x.safetensors", "init_image": 3, "mask_image": "",
              "batch_size": 1.5, "batch_count": "lots", "mode": "nope", "strength": "0.25", "preview_every": [1],
              "dtype": None, "vae_tiling": "yes", "unknown": {"a": 1}}
    studiolo = {"params": params, "seed": "abc", "output": {"seed": -5}, "model": ["m"]}
    reuse = reuse_bytes(with_chunks(png_with_text(), itxt_chunk("studiolo", json.dumps(studiolo).encode())), tmp_path)
    assert reuse == Reuse(ImageParams(negative_prompt="no", steps=30, width=64, height=2048, batch_size=1,
                                      strength=0.25), None, None, "studiolo")
    loras = {"params": {"loras": ["a.safetensors", 3, None, ""] + [f"l{i}" for i in range(20)]}}
    reuse = read_reuse(with_chunks(png_with_text(), itxt_chunk("studiolo", json.dumps(loras).encode())))
    assert reuse is not None and reuse.params.loras == ["a.safetensors"] + [f"l{i}" for i in range(7)]
    for studiolo_value in ([1, 2], "text", 5, {"params": [1]}, {"params": None}, None):
        blob = json.dumps(studiolo_value).encode()
        assert read_reuse(with_chunks(png_with_text(), itxt_chunk("studiolo", blob))) is None
    comfy = {"1": {"class_type": "KSampler", "inputs": {"seed": [1, 2, 3], "steps": {"x": 1}, "cfg": "high",
                                                        "sampler_name": ["9", 0], "positive": ["1", 0],
                                                        "negative": ["missing", 0], "latent_image": [None, None],
                                                        "model": "4"}},
             "2": {"class_type": 7, "inputs": []}, "9": {"class_type": "X", "inputs": {"value": ["9", 0]}},
             "bad": [1, 2], "4": "node"}
    reuse = read_reuse(png_with_text(("prompt", json.dumps(comfy))))
    assert reuse == Reuse(ImageParams(), None, None, "comfyui")
    workflow = {"nodes": [None, {"type": "KSampler", "widgets_values": "x", "inputs": [{"name": "m", "link": [1]}]},
                          {"id": [], "type": 3}], "links": [None, [True, 1, 0], {"id": "x"}, [1]]}
    assert read_reuse(png_with_text(("workflow", json.dumps(workflow)))) == Reuse(ImageParams(), None, None, "comfyui")
    invoke = {"positive_prompt": 3, "width": "wide", "height": [512], "steps": -4, "seed": 2**70, "model": {"name": 1}}
    reuse = read_reuse(png_with_text(("invokeai_metadata", json.dumps(invoke))))
    assert reuse == Reuse(ImageParams(steps=1), None, None, "invokeai")


def test_non_utf8_text(tmp_path: Path) -> None:
    bad = b"\xff\xfe\xc3(" * 10
    assert reuse_bytes(with_chunks(png_with_text(), itxt_chunk("studiolo", bad)), tmp_path) is None
    bad_settings = bad + b"\nSteps: 1, Seed: 2, Size: 64x64"
    assert reuse_bytes(with_chunks(png_with_text(), itxt_chunk("parameters", bad_settings)), tmp_path) is None
    latin = "caf\xe9 \xff\nSteps: 3, Seed: 2, Size: 64x64".encode("latin-1")  # tEXt is Latin-1 by the standard
    reuse = reuse_bytes(with_chunks(png_with_text(), text_chunk("parameters", latin)), tmp_path)
    assert reuse == Reuse(ImageParams(prompt="caf\xe9 \xff", steps=3, width=64, height=64), 2, None, "a1111")
    utf8 = "café\nSteps: 3, Seed: 2, Size: 64x64".encode()  # but some tools write UTF-8 there
    reuse = read_reuse(with_chunks(png_with_text(), text_chunk("parameters", utf8)))
    assert reuse is not None and reuse.params.prompt == "café"


def test_files_that_are_not_pngs(tmp_path: Path) -> None:
    jpeg = io.BytesIO()
    image().save(jpeg, format="JPEG")
    (tmp_path / "a.jpg").write_bytes(jpeg.getvalue())
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "sig.png").write_bytes(SIGNATURE)
    (tmp_path / "dir.png").mkdir()
    for path in ("a.jpg", "empty.png", "sig.png", "dir.png", "missing.png"):
        assert read_reuse(tmp_path / path) is None
        assert read_params(tmp_path / path) is None
    assert read_reuse(tmp_path) is None
    assert read_reuse(b"") is None
    assert read_reuse(jpeg.getvalue()) is None
    assert read_reuse(random.Random(1).randbytes(5000)) is None
    assert read_reuse(png_with_text()) is None  # a PNG without parameters
    assert read_reuse(SIGNATURE + struct.pack(">I4s", 0xFFFFFFF0, b"tEXt") + b"parameters\0") is None


def test_a_chunk_with_a_bad_crc_is_ignored(tmp_path: Path) -> None:
    good = text_chunk("parameters", b"Steps: 3, Seed: 2, Size: 64x64")
    bad = good[:-1] + bytes([good[-1] ^ 1])
    assert read_reuse(with_chunks(png_with_text(), bad)) is None
    assert read_reuse(with_chunks(png_with_text(), bad, good)) is not None


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random mutations: bit flips, byte inserts or deletes, a duplicated chunk, or a text chunk's
    content mutated with its CRC fixed (so that the parsers, not the CRC check, meet the damage)."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0 and buffer:
            i = rng.randrange(len(buffer))
            buffer[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            i = rng.randrange(len(buffer) + 1)
            buffer[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and buffer:
            i = rng.randrange(len(buffer))
            del buffer[i:i + rng.randint(1, 8)]
        else:
            try:
                parts = chunks(bytes(buffer))
            except struct.error:
                continue
            if not parts:
                continue
            i = rng.randrange(len(parts))
            if op == 3:
                parts.insert(i, parts[i])
            else:
                kind, body = parts[i]
                body = bytearray(body)
                for _ in range(rng.randint(1, 4)):
                    if body:
                        j = rng.randrange(len(body))
                        body[j] = rng.choice(b'{}[]",:0123456789 \n\x00\xffNaN-e.') if rng.random() < 0.7 \
                            else rng.randrange(256)
                parts[i] = (kind, bytes(body))
            buffer = bytearray(assemble(parts))
    return bytes(buffer)


def test_ten_thousand_seeded_mutations_never_raise() -> None:
    graph_workflow = {"nodes": [{"id": 1, "type": "KSampler", "widgets_values": [5, "fixed", 9, 3, "euler", "x", 1]}],
                      "links": []}
    bases = [
        studiolo_png(FULL),
        png_with_text(("parameters", A1111_TEXT)),
        png_with_text(("prompt", json.dumps(COMFY_PROMPT)), ("workflow", json.dumps(graph_workflow))),
        png_with_text(("invokeai_metadata", json.dumps({"positive_prompt": "p", "seed": 3, "width": 640})),
                      itxt=True, zip=True),
    ]
    rng = random.Random(20240501)
    outcomes = {"None": 0, "studiolo": 0, "a1111": 0, "comfyui": 0, "invokeai": 0}
    for n in range(10_000):
        data = mutate(bases[n % len(bases)], rng)
        result = read_reuse(data)
        if result is None:
            outcomes["None"] += 1
            continue
        outcomes[result.source] += 1
        assert validate(result.params) == result.params
        assert result.seed is None or 0 <= result.seed <= meta.MAX_SEED
        assert result.model is None or isinstance(result.model, str)
    assert all(outcomes.values()), outcomes  # every path was exercised
