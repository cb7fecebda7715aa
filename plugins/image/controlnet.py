"""ControlNet units: parsing ``ImageParams.controlnets``, loading the models, building the pipeline for a job.

A unit is one text (so the CLI's ``--param`` and the panel's list carry it as they carry LoRAs)::

    MODEL|IMAGE[|WEIGHT[|START[|END]]][|preprocess=canny|depth][|low=100][|high=200][|annotator=REF]

``MODEL`` is a local diffusers ControlNet folder (``config.json`` and ``diffusion_pytorch_model.safetensors``, as
``save_pretrained`` writes it), ``IMAGE`` the control image (a map, or a photo with ``preprocess=canny`` to use
its edges), ``WEIGHT`` the conditioning scale (0–2, 1 by default), ``START``/``END`` the fraction of the steps
the unit acts over (0 and 1 by default). The numbers may also be written ``weight=``, ``start=``, ``end=``.
``preprocess=depth`` makes a depth map of the photo with a transformers depth model; ``annotator=`` names it (a
local folder, ``demo``, or a downloaded hub id; Depth Anything V2 Small by default: :mod:`plugins.image.control_map`).
At most three units; a unit of weight 0 is skipped (the job is the one without it, pixel for pixel).

The ControlNet pipeline of the job's mode (txt2img, img2img, inpaint; SD 1.x/2.x or SDXL, as the base is) is built
from the loaded base with ``from_pipe`` (the same weights, no copy), with a ``MultiControlNetModel`` for several
units; ControlNet models and the pipelines are kept on the model handle, keyed by their files. A ControlNet made
for another model family is refused before it is loaded (its ``config.json`` against the base UNet's).

torch and diffusers are imported only inside the functions the worker calls.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from desktop.api import ModelFormatError, ModelNotFoundError, ParamError
from plugins.image.preprocess import PREPROCESSORS

__all__ = ["ControlUnit", "ControlJob", "parse_unit", "format_unit", "prepare_control", "a1111_fields",
           "units_from_a1111"]

FIELD = "controlnets"
MAX_UNITS = 3
_FORMAT = "MODEL|IMAGE[|WEIGHT[|START[|END]]][|preprocess=canny|depth][|low=N][|high=N][|annotator=REF]"
_A1111_MODULES = {"depth": "depth_anything_v2"}  # sd-webui-controlnet's module names where they differ from ours
_A1111_UNIT_KEY = re.compile(r"ControlNet (\d+)$")
_A1111_HASH = re.compile(r"\s*\[[0-9a-fA-F]{6,}\]$")


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet of a job. ``image`` is None when only the settings are known (read from an A1111 file)."""

    model: str
    image: Path | None
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    preprocess: str = "none"
    low: int = 100
    high: int = 200
    annotator: str = ""  # the depth model of preprocess=depth; empty: the recommended one

    @property
    def model_name(self) -> str:
        """The model as A1111 shows it: a folder's or file's name without its extension."""
        return PureWindowsPath(self.model).stem or self.model


def parse_unit(text: str, number: int = 1) -> ControlUnit:
    """Parse one unit's text (see the module docstring); :class:`ParamError` naming unit ``number`` if wrong."""
    parts = [part.strip() for part in str(text).split("|")]
    if len(parts) < 2 or not parts[0]:
        raise _error(number, text, f"write it as {_FORMAT}")
    values: dict[str, Any] = {}
    positional = ("weight", "start", "end")
    for index, part in enumerate(parts[2:]):
        key, sep, value = part.partition("=")
        if not sep:
            if index >= len(positional):
                raise _error(number, text, f"too many fields: write it as {_FORMAT}")
            key, value = positional[index], part
        key = key.strip().lower()
        if key not in (*positional, "preprocess", "low", "high", "annotator"):
            raise _error(number, text, f"unknown field {key!r}: write it as {_FORMAT}")
        values[key] = value.strip()
    unit = ControlUnit(model=parts[0], image=Path(parts[1]).expanduser() if parts[1] else None,
                       weight=_number(values, "weight", 1.0, number, text),
                       start=_number(values, "start", 0.0, number, text),
                       end=_number(values, "end", 1.0, number, text),
                       preprocess=values.get("preprocess", "none").lower() or "none",
                       low=int(_number(values, "low", 100, number, text)),
                       high=int(_number(values, "high", 200, number, text)),
                       annotator=values.get("annotator", ""))
    _check(unit, number, text)
    return unit


def format_unit(unit: ControlUnit) -> str:
    """The text :func:`parse_unit` reads back as ``unit``."""
    fields = [unit.model, "" if unit.image is None else str(unit.image), _num(unit.weight), _num(unit.start),
              _num(unit.end)]
    if unit.preprocess != "none":
        fields += [f"preprocess={unit.preprocess}", f"low={unit.low}", f"high={unit.high}"]
    if unit.annotator:
        fields.append(f"annotator={unit.annotator}")
    return "|".join(fields)


def _number(values: Mapping[str, str], key: str, default: float, number: int, text: str) -> float:
    if key not in values:
        return default
    try:
        value = float(values[key])
    except ValueError:
        raise _error(number, text, f"{key} must be a number, not {values[key]!r}") from None
    if not math.isfinite(value):
        raise _error(number, text, f"{key} must be a finite number")
    return value


def _check(unit: ControlUnit, number: int, text: str) -> None:
    if not 0.0 <= unit.weight <= 2.0:
        raise _error(number, text, "the weight must be between 0 and 2")
    if not (0.0 <= unit.start < unit.end <= 1.0):
        raise _error(number, text, "start and end are fractions of the steps with 0 <= start < end <= 1")
    if unit.preprocess not in PREPROCESSORS:
        raise _error(number, text, f"preprocess must be one of {', '.join(PREPROCESSORS)}")
    if not (0 <= unit.low <= unit.high <= 255):
        raise _error(number, text, "canny thresholds need 0 <= low <= high <= 255")


def _error(number: int, text: str, allowed: str) -> ParamError:
    return ParamError(FIELD, text, f"ControlNet unit {number}: {allowed}",
                      hint="Example: /models/control-canny|/pictures/edges.png|1|0|1")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ------------------------------------------------------------------------------------------------- a job


@dataclass
class ControlJob:
    """What a job with ControlNets runs: the pipeline, and the arguments to add to its call."""

    pipe: Any
    kwargs: dict[str, Any]


def prepare_control(handle: Any, params: Any, mode: str, ctx: Any) -> ControlJob | None:
    """The ControlNet pipeline of ``mode`` (txt2img, img2img, inpaint) and the call arguments for ``params`` on
    the loaded model ``handle``; None when no
    unit is active (none listed, or all of weight 0). Control images are opened, brought to the job's size (with
    a note through ``ctx.warn``) and preprocessed here."""
    texts = list(params.controlnets)
    if len(texts) > MAX_UNITS:
        raise ParamError(FIELD, texts, f"at most {MAX_UNITS} ControlNet units")
    units = [(number, parse_unit(text, number)) for number, text in enumerate(texts, start=1)]
    active = [(number, unit) for number, unit in units if unit.weight > 0]
    if not active:
        return None
    size = (params.width, params.height)
    images = [_control_image(unit, number, size, ctx) for number, unit in active]
    models = [load_controlnet(handle, unit, number, ctx) for number, unit in active]
    pipe = _pipeline(handle, mode, models)
    several = len(active) > 1
    kwargs: dict[str, Any] = {
        "image" if mode == "txt2img" else "control_image": images if several else images[0],
        "controlnet_conditioning_scale": [u.weight for _, u in active] if several else active[0][1].weight,
        "control_guidance_start": [u.start for _, u in active] if several else active[0][1].start,
        "control_guidance_end": [u.end for _, u in active] if several else active[0][1].end,
    }
    return ControlJob(pipe, kwargs)


def _control_image(unit: ControlUnit, number: int, size: tuple[int, int], ctx: Any) -> Any:
    from PIL import Image

    text = format_unit(unit)
    if unit.image is None:
        raise _error(number, text, "no control image: add its path after the model")
    if not unit.image.is_file():
        raise _error(number, text, f"no such image file: {unit.image}")
    try:
        with Image.open(unit.image) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise _error(number, text, f"{unit.image.name} is not an image that can be read (PNG, JPEG, WebP…): "
                                   f"{exc}") from None
    if image.size != size:
        ctx.warn(f"ControlNet unit {number}: the control image {unit.image.name} is {image.size[0]}×"
                 f"{image.size[1]}; it was resized to the picture's {size[0]}×{size[1]}.")
        image = image.resize(size, Image.Resampling.LANCZOS)
    from plugins.image.preprocess import preprocess

    annotator = unit.annotator
    if unit.preprocess == "depth":  # the depth model's files, through the model store (plugins/image/addons.py)
        from plugins.image.addons import DEPTH, local_ref
        from plugins.image.control_map import DEFAULT_ANNOTATOR

        try:
            annotator = local_ref(ctx, DEPTH, unit.annotator or DEFAULT_ANNOTATOR)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"ControlNet unit {number}: {exc.message}", hint=exc.hint) from None
    return preprocess(unit.preprocess, image, low=unit.low, high=unit.high, annotator=annotator)


# ------------------------------------------------------------------------------------------------- models


def controlnet_path(unit: ControlUnit, number: int, ctx: Any, allow_pickle: bool) -> Path:
    """The local files of ``unit``'s model: through ``ctx.addon_model`` (a path, an imported name, a downloaded hub
    id, ``demo``: see plugins/image/addons.py), else (no job context) the path as written."""
    from plugins.image.addons import CONTROLNET, local_ref

    try:
        return Path(local_ref(ctx, CONTROLNET, unit.model, allow_pickle=allow_pickle)).expanduser()
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"ControlNet unit {number}: {exc.message}", hint=exc.hint) from None


def load_controlnet(handle: Any, unit: ControlUnit, number: int = 1, ctx: Any = None) -> Any:
    """The ControlNetModel of ``unit`` for the loaded base ``handle`` (cached on the handle by folder)."""
    from desktop.api import check_model_files

    path = controlnet_path(unit, number, ctx, handle.allow_pickle)
    key = ("model", str(path.resolve()))
    cache = handle.controlnets
    if key in cache:
        return cache[key]
    if not path.exists():
        raise ModelNotFoundError(f"ControlNet unit {number}: no ControlNet model at {path}.",
                                 hint="Give the folder of a diffusers ControlNet (config.json and "
                                      "diffusion_pytorch_model.safetensors), a downloaded hub id, or 'demo'.")
    check_model_files(path, allow_pickle=handle.allow_pickle)
    if path.is_file():  # one .safetensors file (plugins/image/controlnet_file.py)
        from plugins.image.controlnet_file import load_single_file

        model = load_single_file(path, handle, number)
    else:
        model = _load_folder(path, handle, number)
    if not handle.cpu_offload:
        model.to(handle.device)
    model.eval()
    cache[key] = model
    return model


def _load_folder(path: Path, handle: Any, number: int) -> Any:
    """The ControlNetModel in the diffusers folder ``path`` (``save_pretrained``'s layout)."""
    if not (path / "config.json").is_file():
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} is not a diffusers ControlNet folder "
                               "(it has no config.json).",
                               hint="Use a ControlNet in diffusers format (a folder with config.json and "
                                    "diffusion_pytorch_model.safetensors), or a single .safetensors file.")
    _check_family(path, _read_config(path, number), handle.pipe.unet.config, number)
    from diffusers import ControlNetModel

    from plugins.image.pipelines import _dtype_kwarg

    try:
        return ControlNetModel.from_pretrained(str(path), local_files_only=True,
                                               use_safetensors=None if handle.allow_pickle else True,
                                               **_dtype_kwarg(handle.pipe.unet.dtype))
    except Exception as exc:  # diffusers raises OSError, ValueError, RuntimeError… for broken folders
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} could not be loaded: {_first_line(exc)}",
                               hint="Download or export the ControlNet again.") from exc


def _read_config(path: Path, number: int) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"ControlNet unit {number}: the config.json of {path.name} cannot be read: {exc}",
                               hint="Download or export the ControlNet again.") from exc
    if not isinstance(config, dict) or config.get("_class_name") not in (None, "ControlNetModel"):
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} is not a ControlNet "
                               f"({config.get('_class_name') if isinstance(config, dict) else 'no class'}).",
                               hint="Choose a ControlNetModel folder.")
    return config


def _check_family(path: Path, config: Mapping[str, Any], unet: Any, number: int) -> None:
    """Refuse a ControlNet whose shape does not fit the base UNet (another model family: SDXL on SD 1.5…)."""
    base_sdxl = getattr(unet, "addition_embed_type", None) == "text_time"
    mine_sdxl = config.get("addition_embed_type") == "text_time"
    checks = (("cross_attention_dim", config.get("cross_attention_dim", 1280), unet.cross_attention_dim),
              ("block_out_channels", list(config.get("block_out_channels", (320, 640, 1280, 1280))),
               list(unet.block_out_channels)))
    wrong = [name for name, mine, base in checks if mine != base]
    if mine_sdxl != base_sdxl or wrong:
        made = "SDXL" if mine_sdxl else "Stable Diffusion 1.x/2.x"
        base = "SDXL" if base_sdxl else "Stable Diffusion 1.x/2.x"
        detail = f" ({', '.join(wrong)} differ)" if wrong else ""
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} is made for another model family "
                               f"({made}-shaped) than the loaded {base} model{detail}.",
                               hint="Choose a ControlNet made for this base model's family.")


def _pipeline(handle: Any, mode: str, models: list[Any]) -> Any:
    """The ControlNet pipeline for ``mode`` sharing the base's weights (cached on the handle by models)."""
    key = ("pipe", mode, tuple(id(model) for model in models))
    cache = handle.controlnets
    if key in cache:
        return cache[key]
    import diffusers

    names = {"txt2img": "ControlNetPipeline", "img2img": "ControlNetImg2ImgPipeline",
             "inpaint": "ControlNetInpaintPipeline"}
    cls = getattr(diffusers, ("StableDiffusionXL" if handle.is_sdxl else "StableDiffusion") + names[mode])
    if len(models) == 1:
        controlnet = models[0]
    else:
        from diffusers import MultiControlNetModel

        controlnet = MultiControlNetModel(models)
    try:
        pipe = cls.from_pipe(handle.pipe, controlnet=controlnet)
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{handle.source.name} cannot be used with ControlNet in {mode}: "
                               f"{_first_line(exc)}", hint="Use this model without ControlNet.") from exc
    if handle.cpu_offload:
        pipe.enable_model_cpu_offload(device=handle.device)
    pipe.set_progress_bar_config(disable=True)
    cache[key] = pipe
    return pipe


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ------------------------------------------------------------------------------------------------- metadata


def a1111_fields(texts: Iterable[str]) -> list[tuple[str, str]]:
    """``("ControlNet 0", "Module: canny, Model: name, Weight: 1, …")`` pairs as sd-webui-controlnet writes them
    in A1111's ``parameters``. Units that do not parse are left out (metadata never raises)."""
    fields: list[tuple[str, str]] = []
    for text in texts:
        try:
            unit = parse_unit(text)
        except ParamError:
            continue
        values = [("Module", _A1111_MODULES.get(unit.preprocess, unit.preprocess)), ("Model", unit.model_name),
                  ("Weight", _num(unit.weight)),
                  ("Resize Mode", "Just Resize")]
        if unit.preprocess == "canny":
            values += [("Threshold A", str(unit.low)), ("Threshold B", str(unit.high))]
        values += [("Guidance Start", _num(unit.start)), ("Guidance End", _num(unit.end)),
                   ("Pixel Perfect", "False"), ("Control Mode", "Balanced")]
        fields.append((f"ControlNet {len(fields)}", ", ".join(f"{key}: {value}" for key, value in values)))
    return fields


def units_from_a1111(settings: Mapping[str, str]) -> list[str]:
    """Unit texts from A1111's ``ControlNet N`` settings (in N order). A1111 stores no control image: the units
    come back without one (a job asks for it), the model as its name (the hash A1111 adds is dropped)."""
    found: list[tuple[int, str]] = []
    for key, value in settings.items():
        match = _A1111_UNIT_KEY.match(key.strip())
        if not match:
            continue
        pairs = dict(part.split(":", 1) for part in value.split(",") if ":" in part)
        pairs = {k.strip(): v.strip() for k, v in pairs.items()}
        model = _A1111_HASH.sub("", pairs.get("Model", "")).strip()
        if not model or model.lower() == "none":
            continue
        module = pairs.get("Module", "none").lower()
        if module.startswith("ip-adapter"):  # an IP-Adapter unit: plugins.image.ip_adapter reads it
            continue
        module = "depth" if module.startswith("depth") else module  # depth_anything_v2, depth_midas, depth_zoe…
        try:
            unit = ControlUnit(model=model, image=None, weight=float(pairs.get("Weight", 1)),
                               start=float(pairs.get("Guidance Start", 0)), end=float(pairs.get("Guidance End", 1)),
                               preprocess=module if module in PREPROCESSORS else "none",
                               low=int(float(pairs.get("Threshold A", 100))) if module == "canny" else 100,
                               high=int(float(pairs.get("Threshold B", 200))) if module == "canny" else 200)
            _check(unit, int(match.group(1)) + 1, value)
        except (ValueError, ParamError):
            continue
        found.append((int(match.group(1)), format_unit(unit)))
    return [text for _, text in sorted(found)][:MAX_UNITS]
