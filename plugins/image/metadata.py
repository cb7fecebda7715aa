"""PNG metadata for the image generator: write A1111-compatible PNGs, read parameters back from anyone's PNGs.

Writing (:func:`encode_png`): the PNG carries

* ``parameters`` — AUTOMATIC1111's text layout, which most tools read (A1111, Forge, Civitai, image browsers)::

      a prompt, possibly on several lines
      Negative prompt: what to keep out
      Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd-turbo

  with ``Variation seed: N, Variation seed strength: 0.3`` after them when the image is a variation (the batch
  image's own variation seed, as its seed is its own), and an ``Outpaint: "left=0, right=64, …"`` setting of
  Studiolo's own in outpaint mode (read back by Studiolo; :mod:`plugins.image.outpaint`), and ControlNet units
  as sd-webui-controlnet writes them (``ControlNet 0: "Module: canny, Model: name, Weight: 1, …"``; read back
  without their control image, which A1111 does not store; :mod:`plugins.image.controlnet`), and hires fix as
  A1111 writes it (``Denoising strength: 0.5, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent``; read
  back with that denoising strength as the hires pass's; :mod:`plugins.image.hires`);

* ``studiolo`` — the full metadata as JSON (iTXt, UTF-8), what Studiolo itself reads back;
* ``Software`` (``Studiolo``) and ``Description`` (the prompt), as the host's own writer does.

Reading (:func:`read_reuse`, :func:`read_params`): parameters from a PNG made by Studiolo, AUTOMATIC1111,
ComfyUI or InvokeAI, fitted to :class:`ImageParams` field by field (out of range: clamped; not fitting at all:
the default). The PNG's chunks are walked here, not by Pillow: no image decoding, no decompression-bomb or
text-size errors, and nothing raised whatever the file holds. A text chunk is used when its CRC is right, even
if the file is cut short after it.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePath, PureWindowsPath
from typing import Any

from desktop.api import EncodedOutput, ImageOutput, fit_params, loose_number, png_text_chunks
from plugins.image.controlnet import a1111_fields as a1111_controlnet_fields
from plugins.image.controlnet import units_from_a1111 as controlnet_units_from_a1111
from plugins.image.hires import a1111_hires, hires_values
from plugins.image.ip_adapter import a1111_fields as a1111_ip_adapter_fields
from plugins.image.ip_adapter import values_from_a1111 as ip_adapter_values
from plugins.image.metadata_extra import (
    comfy_conditioning,
    comfy_units,
    invokeai_units,
    postprocess_text,
    postprocess_values,
)
from plugins.image.outpaint import a1111_outpaint, outpaint_values
from plugins.image.params import ImageParams

__all__ = ["Reuse", "a1111_parameters", "encode_png", "read_params", "read_reuse"]

MAX_SEED = 2**63 - 1
SOURCES = ("studiolo", "a1111", "comfyui", "invokeai")

_PNG_MODES = {"1", "L", "LA", "I;16", "I;16B", "P", "RGB", "RGBA"}
_KEYWORDS = ("studiolo", "parameters", "prompt", "workflow", "invokeai_metadata", "postprocessing")
_SAMPLER_NAMES = {"default": "Default", "euler": "Euler", "euler_a": "Euler a", "dpmpp_2m": "DPM++ 2M",
                  "ddim": "DDIM", "unipc": "UniPC"}
_A1111_SAMPLERS = {name.lower(): scheduler for scheduler, name in _SAMPLER_NAMES.items()} | {
    "dpm++ 2m karras": "dpmpp_2m", "unipc karras": "unipc"}
_COMFY_SAMPLERS = {"euler": "euler", "euler_ancestral": "euler_a", "dpmpp_2m": "dpmpp_2m", "ddim": "ddim",
                   "uni_pc": "unipc", "uni_pc_bh2": "unipc"}
# A1111's "key: value" pairs; keys are bounded so a hostile line cannot make the match quadratic.
_A1111_PAIR = re.compile(r'\s*(\w[\w \-/]{0,63}):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_MAX_SETTINGS_LINE = 64 * 1024
_MAX_GRAPH_VISITS = 256


@dataclass(frozen=True)
class Reuse:
    """What a PNG says about how it was made: the params to run again, the seed that made *this* image (a batch
    image's own seed), the model as the source tool named it, and which tool wrote it (one of :data:`SOURCES`)."""

    params: ImageParams
    seed: int | None
    model: str | None
    source: str


# --------------------------------------------------------------------------------------------- writing


def encode_png(output: ImageOutput, metadata: dict[str, Any]) -> EncodedOutput:
    """PNG bytes of ``output.image`` with ``parameters`` (A1111 layout), ``studiolo`` (the full ``metadata`` as
    JSON), ``Software`` and ``Description`` text chunks. Text that Latin-1 cannot hold goes in iTXt (UTF-8)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "Studiolo")
    _add_text(info, "parameters", a1111_parameters(metadata))
    if _mode(metadata) == "upscale":  # A1111's Extras tab writes its text in these two (metadata_extra.py)
        _add_text(info, "postprocessing", a1111_parameters(metadata))
        _add_text(info, "extras", a1111_parameters(metadata))
    prompt = metadata.get("prompt")
    if isinstance(prompt, str) and prompt:
        info.add_itxt("Description", prompt)
    info.add_itxt("studiolo", json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), default=_json_default))
    buffer = io.BytesIO()
    _png_ready(output.image).save(buffer, format="PNG", pnginfo=info)
    return EncodedOutput(buffer.getvalue(), ".png", embeds_metadata=True)


def a1111_parameters(metadata: Mapping[str, Any]) -> str:
    """The A1111 ``parameters`` text for Studiolo's ``metadata``: the prompt, ``Negative prompt: …`` when there
    is one, then the settings line. The seed is the image's own (``metadata["output"]["seed"]``) when known."""
    raw = metadata.get("params")
    params = fit_params(ImageParams, raw if isinstance(raw, Mapping) else {})
    output = metadata.get("output")
    if params.mode == "upscale":  # no generation: A1111's Extras text, "Postprocess upscale by: 4, …"
        return postprocess_text(params, output)
    seed = _seed(output.get("seed")) if isinstance(output, Mapping) else None
    if seed is None:
        seed = _seed(metadata.get("seed"))
    settings: list[tuple[str, str | None]] = [
        ("Steps", str(params.steps)),
        ("Sampler", _SAMPLER_NAMES.get(params.scheduler, "Default")),
        ("CFG scale", _number(params.guidance_scale)),
        ("Seed", None if seed is None else str(seed)),
        ("Size", f"{params.width}x{params.height}"),
        ("Model", _model_name(metadata.get("model"))),
    ]
    variation_seed = _seed(output.get("variation_seed")) if isinstance(output, Mapping) else None
    if params.variation_seed is not None and params.variation_strength > 0:
        settings.append(("Variation seed", str(params.variation_seed if variation_seed is None else variation_seed)))
        settings.append(("Variation seed strength", _number(params.variation_strength)))
    if params.mode in ("img2img", "inpaint", "outpaint"):
        settings.append(("Denoising strength", _number(params.strength)))
    settings.append(("Outpaint", a1111_outpaint(params)))  # None (left out) unless mode is outpaint
    settings.extend(a1111_hires(params))  # "Denoising strength", "Hires upscale"… in a hires-fix txt2img
    if params.loras:
        hashes = output.get("lora_hashes") if isinstance(output, Mapping) else None
        if isinstance(hashes, Mapping) and hashes:
            settings.append(("Lora hashes", ", ".join(f"{k}: {v}" for k, v in hashes.items())))
        settings.append(("Loras", ", ".join(_lora_label(spec) for spec in params.loras)))
    settings.extend(a1111_controlnet_fields(params.controlnets))  # "ControlNet 0": "Module: canny, Model: …"
    # the IP-Adapter as sd-webui-controlnet writes it: one more "ControlNet N" unit, after the ControlNets
    settings.extend(a1111_ip_adapter_fields(params, sum(key.startswith("ControlNet ") for key, _ in settings)))
    line = ", ".join(f"{key}: {_quote(value)}" for key, value in settings if value)
    negative = f"\nNegative prompt: {params.negative_prompt.strip()}" if params.negative_prompt.strip() else ""
    return f"{params.prompt.strip()}{negative}\n{line}".strip()


def _mode(metadata: Mapping[str, Any]) -> Any:
    raw = metadata.get("params")
    return raw.get("mode") if isinstance(raw, Mapping) else None


def _add_text(info: Any, key: str, text: str) -> None:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        info.add_itxt(key, text)
    else:
        info.add_text(key, text)


def _png_ready(image: Any) -> Any:
    if image.mode in _PNG_MODES:
        return image
    return image.convert("RGBA" if image.mode.endswith(("A", "a")) else "RGB")


def _json_default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _quote(text: str) -> str:
    """A1111's quoting: values holding a comma, colon or newline are written as JSON strings."""
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n\"") else text


def _model_name(model: Any) -> str | None:
    """A checkpoint file's stem (as A1111 shows it); a hub id or other name as it is."""
    if not isinstance(model, str) or not model:
        return None
    path = PureWindowsPath(model)  # splits on "/" and "\\" alike
    if path.suffix.lower() in (".safetensors", ".ckpt", ".pt", ".bin") or os.path.isabs(model):
        return path.stem or model
    return model


def _lora_label(spec: str) -> str:
    """``"/loras/detail.safetensors:0.8"`` → ``"detail: 0.8"`` (the weight is 1 when none is given)."""
    path, weight = spec, "1"
    head, sep, tail = spec.rpartition(":")
    if sep and head:
        try:
            weight, path = _number(float(tail)), head
        except ValueError:
            pass
    return f"{PureWindowsPath(path).stem or path}: {weight}"


# --------------------------------------------------------------------------------------------- reading


def read_params(source: str | os.PathLike[str] | bytes) -> ImageParams | None:
    """The params stored in a PNG (a path, or the file's bytes), or None. Never raises."""
    reuse = read_reuse(source)
    return reuse.params if reuse is not None else None


def read_reuse(source: str | os.PathLike[str] | bytes) -> Reuse | None:
    """Parameters, seed and model from a PNG made by Studiolo, A1111, ComfyUI or InvokeAI, or None when the file
    holds none (or is missing, unreadable, not a PNG). ``source`` is a path or the file's bytes. Never raises.

    Sources are tried in that order; one whose chunk is malformed is skipped for the next.
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            texts = png_text_chunks(io.BytesIO(bytes(source)), _KEYWORDS)
        else:
            with open(source, "rb") as f:
                texts = png_text_chunks(f, _KEYWORDS)
    except Exception:  # missing, a directory, unreadable: no parameters
        return None
    readers: list[tuple[str, Callable[[str], Reuse | None]]] = [
        ("studiolo", _from_studiolo), ("invokeai_metadata", _from_invokeai),
        ("prompt", _from_comfy_prompt), ("workflow", _from_comfy_workflow), ("parameters", _from_a1111),
        ("postprocessing", _from_a1111)]  # A1111's Extras text alone (a picture made without parameters)
    for keyword, reader in readers:
        text = texts.get(keyword)
        if text is None:
            continue
        try:
            reuse = reader(text)
        except Exception:  # deep nesting, absurd values, anything: this source has nothing usable
            continue
        if reuse is not None:
            return reuse
    return None


def _json(text: str) -> Any:
    return json.loads(text)  # NaN/Infinity load as floats and are dropped field by field; deep nesting raises


# -- Studiolo


def _from_studiolo(text: str) -> Reuse | None:
    metadata = _json(text)
    if not isinstance(metadata, dict) or not isinstance(metadata.get("params"), dict):
        return None
    output = metadata.get("output")
    seed = _seed(output.get("seed")) if isinstance(output, dict) else None
    if seed is None:
        seed = _seed(metadata.get("seed"))
    params = fit_params(ImageParams, metadata["params"])
    variation_seed = _seed(output.get("variation_seed")) if isinstance(output, dict) else None
    if variation_seed is not None and params.variation_seed is not None:  # a batch image's own, as its seed is
        params = replace(params, variation_seed=variation_seed)
    return Reuse(params, seed, _text(metadata.get("model")), "studiolo")


# -- AUTOMATIC1111


def _from_a1111(text: str) -> Reuse | None:
    """Parse A1111's layout the way A1111 does: the last line holds the settings when it has three or more
    ``key: value`` pairs; the lines before are the prompt, then from ``Negative prompt:`` on the negative."""
    *lines, last = text.strip().split("\n")
    pairs = _A1111_PAIR.findall(last) if len(last) <= _MAX_SETTINGS_LINE else []
    if len(pairs) < 3:  # A1111's Extras text has two: "Postprocess upscale by: 2, Postprocess upscaler: …"
        upscale = postprocess_values(text.strip()) if not lines else None
        return Reuse(fit_params(ImageParams, upscale), None, None, "a1111") if upscale else None
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if not negative and line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:"):].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    settings = {key.strip(): _unquote(value.strip()) for key, value in pairs}
    values: dict[str, Any] = {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}
    for key, name in (("Steps", "steps"), ("CFG scale", "guidance_scale"), ("Denoising strength", "strength"),
                      ("Variation seed", "variation_seed"), ("Variation seed strength", "variation_strength")):
        if key in settings:
            values[name] = settings[key]
    if "Sampler" in settings:
        values["scheduler"] = _A1111_SAMPLERS.get(settings["Sampler"].strip().lower(), "default")
    width, sep, height = settings.get("Size", "").partition("x")
    if sep:
        values["width"], values["height"] = width, height
    controlnets = controlnet_units_from_a1111(settings)  # sd-webui-controlnet's "ControlNet N" settings
    if controlnets:
        values["controlnets"] = controlnets
    values.update(ip_adapter_values(settings))  # an IP-Adapter "ControlNet N" unit: the model, no image
    if "Outpaint" in settings:  # Studiolo's own setting (A1111 has none for outpainting)
        values.update(outpaint_values(settings["Outpaint"]))
    hires = hires_values(settings)  # with "Hires upscale", "Denoising strength" is the hires pass's
    if hires:
        values.pop("strength", None)
        values.update(hires)
    return Reuse(fit_params(ImageParams, values), _seed(settings.get("Seed")), _text(settings.get("Model")), "a1111")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            unquoted = json.loads(value)
        except ValueError:
            return value
        return unquoted if isinstance(unquoted, str) else value
    return value


# -- InvokeAI


def _from_invokeai(text: str) -> Reuse | None:
    data = _json(text)
    if not isinstance(data, dict):
        return None
    values = {name: data[key] for key, name in (
        ("positive_prompt", "prompt"), ("negative_prompt", "negative_prompt"), ("width", "width"),
        ("height", "height"), ("steps", "steps"), ("cfg_scale", "guidance_scale"), ("strength", "strength"))
        if key in data}
    scheduler = data.get("scheduler")
    if isinstance(scheduler, str):
        name = scheduler.removesuffix("_k")
        values["scheduler"] = name if name in _SAMPLER_NAMES else "default"
    if not values and "seed" not in data:
        return None
    controlnets = invokeai_units(data)  # "controlnets", "control_layers", "canvas_v2_metadata"
    if controlnets:
        values["controlnets"] = controlnets
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("name", model.get("model_name"))
    return Reuse(fit_params(ImageParams, values), _seed(data.get("seed")), _text(model), "invokeai")


# -- ComfyUI


def _from_comfy_prompt(text: str) -> Reuse | None:
    graph = _json(text)
    if not isinstance(graph, dict):
        return None
    nodes = {str(k): v for k, v in graph.items()
             if isinstance(v, dict) and isinstance(v.get("class_type"), str) and isinstance(v.get("inputs"), dict)}
    return _from_comfy_nodes(nodes)


_WIDGETS = {  # the widget inputs of the nodes read here, in the order a UI workflow stores their values
    "KSampler": ("seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", "control_after_generate", "steps", "cfg", "sampler_name",
                         "scheduler", "start_at_step", "end_at_step", "return_with_leftover_noise"),
    "CLIPTextEncode": ("text",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
}


def _from_comfy_workflow(text: str) -> Reuse | None:
    """A UI workflow (nodes with ``widgets_values``, ``links``) turned into the API graph the ``prompt`` chunk
    holds. Nodes of other types keep their first widget value as ``value`` (primitive and text nodes)."""
    workflow = _json(text)
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return None
    sources: dict[Any, list[Any]] = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):  # the newer frontend's form
            link = [link.get("id"), link.get("origin_id"), link.get("origin_slot")]
        if isinstance(link, list) and len(link) >= 3 and isinstance(link[0], int):
            sources[link[0]] = [str(link[1]), link[2]]
    nodes: dict[str, dict[str, Any]] = {}
    for node in workflow["nodes"]:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        widgets = node.get("widgets_values")
        widgets = widgets if isinstance(widgets, list) else []
        names = _WIDGETS.get(node["type"], ("value",))
        inputs: dict[str, Any] = dict(zip(names, widgets, strict=False))  # as many as both have
        for slot in node.get("inputs") or []:
            if isinstance(slot, dict) and isinstance(slot.get("name"), str) and isinstance(slot.get("link"), int) \
                    and slot["link"] in sources:
                widget = slot.get("widget")
                name = widget.get("name") if isinstance(widget, dict) else None
                inputs[name if isinstance(name, str) else slot["name"]] = sources[slot["link"]]
        nodes[str(node.get("id"))] = {"class_type": node["type"], "inputs": inputs}
    return _from_comfy_nodes(nodes)


def _from_comfy_nodes(nodes: dict[str, dict[str, Any]]) -> Reuse | None:
    """Read the sampler that starts from an empty latent (the first pass, in a hires-fix graph) or else the
    first sampler: its settings, its prompts, the latent's size and the checkpoint feeding its model."""
    samplers = [k for k in sorted(nodes, key=_node_order) if nodes[k]["class_type"] in ("KSampler",
                                                                                         "KSamplerAdvanced")]
    if not samplers:
        return None

    def starts_empty(key: str) -> bool:
        source = _linked(nodes, nodes[key]["inputs"].get("latent_image"))
        inputs = nodes[source]["inputs"] if source is not None else {}
        return "width" in inputs and "samples" not in inputs  # not an upscale of another latent

    inputs = nodes[next((k for k in samplers if starts_empty(k)), samplers[0])]["inputs"]
    values: dict[str, Any] = {}
    for key, name in (("steps", "steps"), ("cfg", "guidance_scale")):
        if key in inputs:
            values[name] = _resolve(nodes, inputs[key], (key, "value"))
    denoise = loose_number(_resolve(nodes, inputs.get("denoise"), ("denoise", "value")))
    if denoise is not None and denoise < 1:  # 1 is txt2img's; a lower one is the img2img strength
        values["strength"] = denoise
    sampler = _resolve(nodes, inputs.get("sampler_name"), ("sampler_name", "value"))
    if sampler is not None:
        values["scheduler"] = _COMFY_SAMPLERS.get(sampler, "default") if isinstance(sampler, str) else "default"
    for key, name in (("positive", "prompt"), ("negative", "negative_prompt")):
        found = _search(nodes, comfy_conditioning(nodes, inputs.get(key), key), lambda i: next(
            (i[k] for k in ("text", "text_g", "string", "value", "prompt") if isinstance(i.get(k), str)), None))
        if found is not None:
            values[name] = found
    latent = _search(nodes, inputs.get("latent_image"), lambda i: i if "width" in i and "height" in i else None)
    if latent is not None:
        for key in ("width", "height", "batch_size"):
            values[key] = _resolve(nodes, latent.get(key), (key, "value"))
    model = _search(nodes, inputs.get("model"), lambda i: next(
        (i[k] for k in ("ckpt_name", "unet_name", "model_name") if isinstance(i.get(k), str)), None))
    seed = _resolve(nodes, inputs.get("seed", inputs.get("noise_seed")), ("seed", "noise_seed", "value"))
    controlnets = comfy_units(nodes)  # ControlNetLoader → ControlNetApply(Advanced) ← LoadImage
    if controlnets:
        values["controlnets"] = controlnets
    return Reuse(fit_params(ImageParams, values), _seed(seed), _text(model), "comfyui")


def _node_order(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdecimal() and len(key) < 20 else (1 << 64, key)


def _linked(nodes: Mapping[str, Any], value: Any) -> str | None:
    """The node a ``[node_id, slot]`` link points at, if it is one."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
        key = str(value[0])
        return key if key in nodes else None
    return None


def _resolve(nodes: Mapping[str, Any], value: Any, keys: Iterable[str]) -> Any:
    """A widget value, following links to the node that provides it (a primitive, a seed node…)."""
    keys = tuple(keys)
    for _ in range(_MAX_GRAPH_VISITS):
        key = _linked(nodes, value)
        if key is None:
            return None if isinstance(value, list) else value
        inputs = nodes[key]["inputs"]
        value = next((inputs[k] for k in keys if k in inputs), None)
    return None


def _search(nodes: Mapping[str, Any], start: Any, found: Callable[[dict[str, Any]], Any]) -> Any:
    """Breadth-first upstream from the node ``start`` links to: the first non-None ``found(inputs)``."""
    first = _linked(nodes, start)
    queue, seen = [first] if first else [], {first}
    while queue and len(seen) <= _MAX_GRAPH_VISITS:
        inputs = nodes[queue.pop(0)]["inputs"]
        result = found(inputs)
        if result is not None:
            return result
        for value in inputs.values():
            key = _linked(nodes, value)
            if key is not None and key not in seen:
                seen.add(key)
                queue.append(key)
    return None


# --------------------------------------------------------------------------------------------- fitting


def _seed(value: Any) -> int | None:
    number = loose_number(value)
    if number is None or number != int(number):
        return None
    return int(number) if 0 <= number <= MAX_SEED else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value and "\0" not in value else None
