"""More of what other tools' PNGs say, for :mod:`plugins.image.metadata`: ControlNet units from ComfyUI and InvokeAI
files, and AUTOMATIC1111's Extras-tab upscale (written by Studiolo's ``upscale`` mode too).

* ComfyUI (the ``prompt`` chunk, an API graph): each ``ControlNetApply`` (``conditioning``, ``control_net``,
  ``image``, ``strength``) or ``ControlNetApplyAdvanced`` (``positive``, ``negative``, ``control_net``, ``image``,
  ``strength``, ``start_percent``, ``end_percent``; ComfyUI's ``nodes.py``) is a unit: the model is the
  ``control_net_name`` of the ``ControlNetLoader`` (or ``DiffControlNetLoader``) feeding it, the control image the
  ``LoadImage`` node's ``image`` when that is the path of an existing file (ComfyUI names a file in its own input
  folder, which Studiolo cannot know: else the unit comes without its image, as from A1111). A ``Canny`` node
  (thresholds 0–1) or controlnet_aux's ``CannyEdgePreprocessor`` (0–255) between them becomes ``preprocess=canny``.
* InvokeAI (``invokeai_metadata``): ``controlnets`` (3.x/4.x: ``control_model`` {``name``/``model_name``},
  ``control_weight``, ``begin_step_percent``, ``end_step_percent``, ``image`` {``image_name``}), 4.x's
  ``control_layers`` {``layers``: [{``controlAdapter``: {``type``, ``model``, ``weight``, ``beginEndStepPct``,
  ``processorConfig``}}]} and 5.x's ``canvas_v2_metadata`` {``controlLayers``: [...]} (the same
  ``controlAdapter``-like fields on the layer). InvokeAI's images are names in its own gallery, so units come
  without their image; a per-step weight list gives its first weight; T2I adapters are left out.
* A1111's Extras tab writes ``Postprocess upscale by: 2, Postprocess upscaler: R-ESRGAN 4x+`` (its
  ``scripts/postprocessing_upscale.py``) in the ``postprocessing`` and ``extras`` chunks of the upscaled PNG (and
  keeps the source's ``parameters``). Studiolo's ``upscale`` mode writes the same text as its ``parameters`` and
  in those two chunks; it reads back as mode ``upscale`` with that upscaler and factor (``upscale_by``).

Weights are clamped to Studiolo's 0–2; a unit whose values cannot be represented (start not before end, no model)
is dropped. Nothing here raises on odd input: each reader is called inside the metadata reader's guard, and
returns what it could read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from desktop.api import ParamError, loose_number

__all__ = ["comfy_conditioning", "comfy_units", "invokeai_units", "postprocess_text", "postprocess_values"]

_MAX_UNITS = 3
_COMFY_APPLY = ("ControlNetApply", "ControlNetApplyAdvanced")
_POSTPROCESS_PAIR = re.compile(r'\s*(Postprocess [\w \-]{1,40}):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


# --------------------------------------------------------------------------------------------- units


def _unit_text(model: Any, image: Path | None, weight: Any, start: Any, end: Any, *, preprocess: str = "none",
               low: Any = 100, high: Any = 200) -> str | None:
    """A unit's text when the values make one (checked by :func:`~plugins.image.controlnet.parse_unit`)."""
    from plugins.image.controlnet import ControlUnit, format_unit, parse_unit

    if not isinstance(model, str) or not model.strip() or "|" in model or "\0" in model:
        return None
    numbers = [loose_number(value) for value in (weight, start, end, low, high)]
    if any(number is None for number in numbers):
        return None
    weight_, start_, end_, low_, high_ = (float(n) for n in numbers if n is not None)
    try:
        text = format_unit(ControlUnit(model=model.strip(), image=image, weight=min(max(weight_, 0.0), 2.0),
                                       start=start_, end=end_, preprocess=preprocess,
                                       low=int(round(low_)), high=int(round(high_))))
        return format_unit(parse_unit(text))
    except (ParamError, ValueError, OverflowError):
        return None


def _existing_image(name: Any) -> Path | None:
    """``name`` as a control image when it is the absolute path of an existing file."""
    if not isinstance(name, str) or not name or "\0" in name or "|" in name:
        return None
    try:
        path = Path(name).expanduser()
        return path if path.is_absolute() and path.is_file() else None
    except (OSError, ValueError):
        return None


def comfy_units(nodes: Mapping[str, dict[str, Any]]) -> list[str]:
    """Unit texts for the ControlNet-apply nodes of a ComfyUI API graph, in node order (at most three)."""
    from plugins.image.metadata import _node_order, _resolve, _search

    units: list[str] = []
    for key in sorted(nodes, key=_node_order):
        node = nodes[key]
        if node["class_type"] not in _COMFY_APPLY or len(units) >= _MAX_UNITS:
            continue
        inputs = node["inputs"]
        model = _search(nodes, inputs.get("control_net"),
                        lambda i: i["control_net_name"] if isinstance(i.get("control_net_name"), str) else None)
        canny = _search(nodes, inputs.get("image"), _canny_thresholds)
        image = _search(nodes, inputs.get("image"),
                        lambda i: i["image"] if "upload" in i and isinstance(i.get("image"), str) else None)
        weight = _resolve(nodes, inputs.get("strength", 1.0), ("strength", "value"))
        start = _resolve(nodes, inputs.get("start_percent", 0.0), ("start_percent", "value"))
        end = _resolve(nodes, inputs.get("end_percent", 1.0), ("end_percent", "value"))
        low, high = canny if canny is not None else (100, 200)
        text = _unit_text(model, _existing_image(image), weight, start, end,
                          preprocess="canny" if canny is not None else "none", low=low, high=high)
        if text is not None:
            units.append(text)
    return units


def comfy_conditioning(nodes: Mapping[str, dict[str, Any]], link: Any, which: str) -> Any:
    """The link to follow for the ``which`` ("positive" or "negative") prompt: through nodes that pass both
    conditionings on (``ControlNetApplyAdvanced`` and the like), their own ``which`` input, not the other's."""
    from plugins.image.metadata import _MAX_GRAPH_VISITS, _linked

    for _ in range(_MAX_GRAPH_VISITS):
        key = _linked(nodes, link)
        inputs = nodes[key]["inputs"] if key is not None else {}
        if not (_linked(nodes, inputs.get("positive")) and _linked(nodes, inputs.get("negative"))):
            return link
        link = inputs[which]
    return link


def _canny_thresholds(inputs: dict[str, Any]) -> tuple[float, float] | None:
    """(low, high) on 0–255 from a ComfyUI ``Canny`` node (0–1) or controlnet_aux's ``CannyEdgePreprocessor``."""
    low, high = loose_number(inputs.get("low_threshold")), loose_number(inputs.get("high_threshold"))
    if low is None or high is None:
        return None
    if max(low, high) <= 1:  # ComfyUI's own Canny node
        return low * 255, high * 255
    return low, high


def invokeai_units(data: Mapping[str, Any]) -> list[str]:
    """Unit texts from InvokeAI's metadata (``controlnets``, ``control_layers`` or ``canvas_v2_metadata``)."""
    units: list[str] = []
    controlnets = data.get("controlnets")
    for entry in controlnets if isinstance(controlnets, list) else []:
        if not isinstance(entry, dict):
            continue
        weight = entry.get("control_weight", 1)
        if isinstance(weight, list):
            weight = weight[0] if weight else 1
        units.append(_unit_text(_model_name(entry.get("control_model")), None, weight,
                                entry.get("begin_step_percent", 0), entry.get("end_step_percent", 1)) or "")
    layers: list[Any] = []
    control_layers = data.get("control_layers")
    if isinstance(control_layers, dict) and isinstance(control_layers.get("layers"), list):
        layers += control_layers["layers"]
    canvas = data.get("canvas_v2_metadata")
    if isinstance(canvas, dict) and isinstance(canvas.get("controlLayers"), list):
        layers += canvas["controlLayers"]
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("isEnabled") is False:
            continue
        adapter = layer.get("controlAdapter")
        if not isinstance(adapter, dict) or adapter.get("type") != "controlnet":
            continue
        span = adapter.get("beginEndStepPct")
        start, end = (span[0], span[1]) if isinstance(span, list) and len(span) == 2 else (0, 1)
        processor = adapter.get("processorConfig")
        canny = isinstance(processor, dict) and processor.get("type") in ("canny_image_processor",
                                                                          "canny_edge_detection")
        units.append(_unit_text(_model_name(adapter.get("model")), None, adapter.get("weight", 1), start, end,
                                preprocess="canny" if canny else "none",
                                low=processor.get("low_threshold", 100) if canny else 100,
                                high=processor.get("high_threshold", 200) if canny else 200) or "")
    return [unit for unit in units if unit][:_MAX_UNITS]


def _model_name(model: Any) -> str | None:
    if isinstance(model, dict):
        model = next((model[k] for k in ("name", "model_name") if isinstance(model.get(k), str)), None)
    return model if isinstance(model, str) and model else None


# --------------------------------------------------------------------------------------------- upscale


def postprocess_text(params: Any, output: Any) -> str:
    """A1111's Extras text for an ``upscale`` job: ``Postprocess upscale by: 4, Postprocess upscaler: name`` (the
    factor: ``upscale_by``, or the model's own scale; the upscaler as A1111 names one: without folder or suffix)."""
    from plugins.image.metadata import _number, _quote

    output = output if isinstance(output, Mapping) else {}
    factor = float(getattr(params, "upscale_by", 0) or 0)
    if factor <= 0:
        scale = loose_number(output.get("upscale_scale"))
        factor = float(scale) if scale is not None and scale > 0 else 0
    source = output.get("upscaler")
    name = source if isinstance(source, str) and source else str(getattr(params, "upscaler", "")).strip()
    name = name if name == "demo" else PurePath(name.replace("\\", "/")).stem or name
    pairs = [("Postprocess upscale by", _number(factor) if factor > 0 else None), ("Postprocess upscaler", name)]
    return ", ".join(f"{key}: {_quote(value)}" for key, value in pairs if value)


def postprocess_values(text: str) -> dict[str, Any] | None:
    """Params values (mode ``upscale``, ``upscaler``, ``upscale_by``) from an Extras text holding
    ``Postprocess upscaler``, or None. ``Postprocess upscale to: WxH`` (a fixed size) gives no factor."""
    from plugins.image.metadata import _unquote

    if len(text) > 64 * 1024:
        return None
    settings = {key.strip(): _unquote(value.strip()) for key, value in _POSTPROCESS_PAIR.findall(text)}
    upscaler = settings.get("Postprocess upscaler", "").strip()
    if not upscaler or upscaler.lower() == "none":
        return None
    values: dict[str, Any] = {"mode": "upscale", "upscaler": upscaler}
    if "Postprocess upscale by" in settings:
        values["upscale_by"] = settings["Postprocess upscale by"]
    return values
