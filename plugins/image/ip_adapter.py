"""IP-Adapter (an image prompt): parsing ``ImageParams.ip_adapter``, loading the adapter, using it in a job.

The field is one text, ``MODEL|IMAGE``: ``MODEL`` a local IP-Adapter laid out like h94/IP-Adapter — a folder
with ``models/ip-adapter_sd15.safetensors`` (SDXL bases: ``sdxl_models/ip-adapter_sdxl.safetensors``) and the
CLIP image encoder (``CLIPVisionModelWithProjection``) in ``image_encoder/`` beside the weights — or one such
``.safetensors`` file, or ``demo`` (a tiny random one, :func:`adapter_path`); ``IMAGE`` the reference picture.
Empty: off. ``ip_adapter_scale`` (0–2) is how strongly the picture follows the reference; at 0 the adapter is
skipped (never loaded), so the job is the one without it, pixel for pixel.

Loading goes through diffusers' ``load_ip_adapter`` on the base pipeline (safetensors only unless the host allows
pickle weights). The adapter's attention processors, image projection and encoder are then kept on the model
handle and taken off the shared UNet again: each job with an adapter puts them on (:func:`use_ip_adapter`, the
same objects, nothing reloaded), each job without one — and the end of every job — takes them off
(:func:`remove_ip_adapter`), restoring the UNet's own processors, so a later job without an adapter is exactly
the base model's. The txt2img, img2img and inpaint pipelines, and ControlNet's, all share that UNet; each gets
the image encoder for the job. An adapter made for another model family (SDXL's on SD 1.5…) is refused from its
safetensors header, before anything is loaded.

torch and diffusers are imported only inside the functions the worker calls.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from desktop.api import ModelFormatError, ModelNotFoundError, ParamError

__all__ = ["IPAdapterRef", "parse_ip_adapter", "adapter_path", "use_ip_adapter", "remove_ip_adapter",
           "a1111_fields", "values_from_a1111"]

FIELD = "ip_adapter"
_HINT = "Write it as MODEL|IMAGE: an IP-Adapter folder (or 'demo') and the reference picture."
_WEIGHTS = {False: ("models/ip-adapter_sd15.safetensors", "models/ip-adapter_sd15.bin"),
            True: ("sdxl_models/ip-adapter_sdxl.safetensors", "sdxl_models/ip-adapter_sdxl_vit-h.safetensors",
                   "sdxl_models/ip-adapter_sdxl.bin")}
_A1111_UNIT_KEY = re.compile(r"ControlNet (\d+)$")
_A1111_HASH = re.compile(r"\s*\[[0-9a-fA-F]{6,}\]$")
_DEMO: dict[str, Path] = {}
_DEMO_DIR: list[tempfile.TemporaryDirectory[str]] = []


@dataclass(frozen=True)
class IPAdapterRef:
    """The parsed field: the model as written, and the reference image (None when only the model is known)."""

    model: str
    image: Path | None

    @property
    def model_name(self) -> str:
        """The model as A1111 shows it: a folder's or file's name without its extension."""
        return PureWindowsPath(self.model).stem or self.model


def parse_ip_adapter(text: str) -> IPAdapterRef | None:
    """``MODEL|IMAGE`` → :class:`IPAdapterRef`; None for an empty text (off); :class:`ParamError` if malformed."""
    text = str(text or "").strip()
    if not text:
        return None
    model, sep, image = (part.strip() for part in text.partition("|"))
    if not model or "|" in image:
        raise ParamError(FIELD, text, "write it as MODEL|IMAGE", hint=_HINT)
    return IPAdapterRef(model, Path(image).expanduser() if image else None)


def format_ip_adapter(ref: IPAdapterRef) -> str:
    """The text :func:`parse_ip_adapter` reads back as ``ref``."""
    return f"{ref.model}|{'' if ref.image is None else ref.image}"


def adapter_path(ref: str) -> Path:
    """Where the IP-Adapter ``ref`` (the MODEL part) is: ``demo`` is a tiny random one built once per process
    into a temporary folder; anything else is a local path."""
    if ref.strip().lower() == "demo":
        if "path" not in _DEMO:
            from plugins.image.demo import build_tiny_ip_adapter

            _DEMO_DIR.append(tempfile.TemporaryDirectory(prefix="studiolo-ip-adapter-"))
            _DEMO["path"] = build_tiny_ip_adapter(Path(_DEMO_DIR[0].name) / "demo-ip-adapter")
        return _DEMO["path"]
    return Path(ref).expanduser()


# ------------------------------------------------------------------------------------------------- a job


@dataclass
class _Loaded:
    """An adapter loaded once and kept on the handle (``handle.ip_adapter``), off the UNet between jobs."""

    key: tuple[str, int, int]
    processors: dict[str, Any]  # the IP-Adapter attention processors, by the UNet's processor names
    projection: Any  # the UNet's encoder_hid_proj while the adapter is on
    encoder: Any
    feature_extractor: Any
    attached: list[tuple[Any, Any, Any]] | None = None  # (pipe, its encoder, its feature extractor) while on
    unet_processors: dict[str, Any] | None = None  # the UNet's own, while the adapter is on


def use_ip_adapter(handle: Any, params: Any, pipe: Any, ctx: Any = None) -> dict[str, Any]:
    """Put the job's IP-Adapter on the shared UNet and ``pipe`` (loading it on first use) and return the call's
    extra arguments (``ip_adapter_image``); with no adapter, or scale 0, make sure none is on and return {}."""
    remove_ip_adapter(handle)
    ref = parse_ip_adapter(getattr(params, "ip_adapter", ""))
    scale = float(getattr(params, "ip_adapter_scale", 0.6))
    if ref is None or scale <= 0:
        return {}
    if not 0 <= scale <= 2:
        raise ParamError("ip_adapter_scale", scale, "must be between 0 and 2")
    image = _reference_image(ref)
    from plugins.image.addons import IP_ADAPTER, local_ref  # the model store's files for an imported/hub/demo ref

    ref = IPAdapterRef(local_ref(ctx, IP_ADAPTER, ref.model, allow_pickle=handle.allow_pickle), ref.image)
    loaded = _load(handle, ref)
    _attach(handle, loaded, pipe)
    handle.pipe.set_ip_adapter_scale(scale)  # on the shared UNet's IP-Adapter processors
    return {"ip_adapter_image": image}


def remove_ip_adapter(handle: Any) -> None:
    """Take the adapter off the UNet and the pipelines (their own processors and encoders back); a no-op when
    none is on. The loaded adapter stays cached on the handle for the next job that uses it."""
    loaded = getattr(handle, "ip_adapter", None)
    if loaded is None or loaded.attached is None:
        return
    unet = handle.pipe.unet
    unet.set_attn_processor(dict(loaded.unet_processors))
    unet.encoder_hid_proj = None
    unet.config.encoder_hid_dim_type = None
    for pipe, encoder, feature_extractor in loaded.attached:
        pipe.image_encoder = encoder
        pipe.feature_extractor = feature_extractor
    for pipe in _pipelines(handle):  # built during the job (hires fix's img2img): they copied the base's encoder
        if getattr(pipe, "image_encoder", None) is loaded.encoder:
            pipe.image_encoder = None
            pipe.feature_extractor = handle.pipe.feature_extractor
    loaded.attached = loaded.unet_processors = None


def _attach(handle: Any, loaded: _Loaded, pipe: Any) -> None:
    unet = handle.pipe.unet
    own = dict(unet.attn_processors)
    unet.set_attn_processor({name: loaded.processors.get(name, processor) for name, processor in own.items()})
    unet.encoder_hid_proj = loaded.projection
    unet.config.encoder_hid_dim_type = "ip_image_proj"
    loaded.unet_processors = own
    loaded.attached = []
    for each in {id(p): p for p in (handle.pipe, pipe, *_pipelines(handle))}.values():
        loaded.attached.append((each, getattr(each, "image_encoder", None), getattr(each, "feature_extractor", None)))
        each.image_encoder = loaded.encoder
        each.feature_extractor = loaded.feature_extractor or each.feature_extractor


def _pipelines(handle: Any) -> list[Any]:
    """The pipelines built from the base so far (img2img, inpaint, ControlNet's): they share its UNet. One built
    during the job (hires fix's img2img pass) copies the base's components, the image encoder with them."""
    derived = list(getattr(handle, "_derived", {}).values())
    return derived + [value for value in getattr(handle, "controlnets", {}).values() if hasattr(value, "unet")]


def _reference_image(ref: IPAdapterRef) -> Any:
    from PIL import Image

    if ref.image is None:
        raise ParamError(FIELD, format_ip_adapter(ref), "no reference image: add its path after the model",
                         hint=_HINT)
    if not ref.image.is_file():
        raise ParamError(FIELD, format_ip_adapter(ref), f"no such image file: {ref.image}", hint=_HINT)
    try:
        with Image.open(ref.image) as opened:
            return opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ParamError(FIELD, format_ip_adapter(ref), f"{ref.image.name} is not an image that can be read "
                                                        f"(PNG, JPEG, WebP…): {exc}", hint=_HINT) from None


# ------------------------------------------------------------------------------------------------- loading


def _load(handle: Any, ref: IPAdapterRef) -> _Loaded:
    """The adapter ``ref`` for ``handle`` (cached on the handle: the last one loaded, by its weights file)."""
    from desktop.api import check_model_files

    root = adapter_path(ref.model)
    weights, encoder_folder = _files(root, handle.is_sdxl)
    stat = weights.stat()
    key = (str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    cached = getattr(handle, "ip_adapter", None)
    if cached is not None and cached.key == key:
        return cached
    check_model_files(weights, allow_pickle=handle.allow_pickle)
    check_model_files(encoder_folder, allow_pickle=handle.allow_pickle)
    _check_family(weights, handle.pipe.unet)
    _check_encoder(encoder_folder)
    if handle.pipe.unet.encoder_hid_proj is not None:
        raise ModelFormatError(f"{handle.source.name} already feeds its UNet an extra projection (like Kolors): "
                               "an IP-Adapter cannot be added to it.", hint="Use this model without an IP-Adapter.")
    handle.ip_adapter = None  # another adapter is dropped before this one is loaded
    loaded = _load_into(handle, weights, encoder_folder, key)
    handle.ip_adapter = loaded
    return loaded


def _files(root: Path, sdxl: bool) -> tuple[Path, Path]:
    """The weights file and image-encoder folder of the adapter at ``root`` (a folder or a weights file)."""
    if not root.exists():
        raise ModelNotFoundError(f"No IP-Adapter at {root}.",
                                 hint="Give the folder of an IP-Adapter laid out like h94/IP-Adapter (models/"
                                      "ip-adapter_sd15.safetensors and models/image_encoder/), or 'demo'.")
    if root.is_file():
        weights = root
    else:
        found = [root / name for name in _WEIGHTS[sdxl] if (root / name).is_file()]
        if not found:  # the other family's file only: use it, and let the family check say what is wrong
            found = [root / name for name in _WEIGHTS[not sdxl] if (root / name).is_file()]
        if not found:
            wanted = " or ".join(_WEIGHTS[sdxl][:2])
            raise ModelFormatError(f"{root.name} holds no IP-Adapter weights ({wanted}).",
                                   hint="Choose a folder laid out like h94/IP-Adapter, or the weights file "
                                        "itself (with image_encoder/ beside it).")
        weights = found[0]
    encoder = weights.parent / "image_encoder"
    if not (encoder / "config.json").is_file():
        raise ModelFormatError(f"The IP-Adapter {weights.name} has no image encoder beside it ({encoder}).",
                               hint="Put the CLIP image encoder (config.json and model.safetensors) in a folder "
                                    "named image_encoder next to the weights, as h94/IP-Adapter has it.")
    return weights, encoder


def _check_family(weights: Path, unet: Any) -> None:
    """Refuse an adapter whose cross-attention width does not fit the base UNet's (another model family)."""
    if weights.suffix.lower() != ".safetensors":
        return  # a pickle file (allowed by the host) has no header to read before loading it
    from desktop.api import safetensors_header

    header = safetensors_header(weights)
    shapes = {name: info.get("shape") for name, info in header.items() if isinstance(info, Mapping)}
    keys = [name for name in shapes if name.startswith("ip_adapter.") and name.endswith(".to_k_ip.weight")]
    if not keys or not any(name.startswith("image_proj.") for name in shapes):
        raise ModelFormatError(f"{weights.name} is not an IP-Adapter (it has no image_proj/ip_adapter weights).",
                               hint="Choose an IP-Adapter .safetensors file such as ip-adapter_sd15.safetensors.")
    widths = {int(shapes[name][1]) for name in keys if isinstance(shapes[name], list) and len(shapes[name]) == 2}
    base = int(unet.config.cross_attention_dim)
    layers = sum(1 for name in unet.attn_processors if not name.endswith("attn1.processor"))
    if widths != {base} or len(keys) != layers:
        made = ", ".join(str(w) for w in sorted(widths)) or "?"
        family = {768: " (Stable Diffusion 1.x)", 1024: " (Stable Diffusion 2.x)", 2048: " (SDXL)"}
        raise ModelFormatError(
            f"The IP-Adapter {weights.name} is made for another model family: its cross-attention width is "
            f"{made}{family.get(min(widths or {0}), '')} and it has {len(keys)} layers, the loaded model's is "
            f"{base}{family.get(base, '')} with {layers}.",
            hint="Choose an IP-Adapter made for this base model's family (ip-adapter_sd15 for SD 1.5, "
                 "ip-adapter_sdxl for SDXL).")


def _check_encoder(encoder: Path) -> None:
    try:
        config = json.loads((encoder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"The image encoder's config.json in {encoder} cannot be read: {exc}",
                               hint="Download the image encoder again.") from exc
    if not isinstance(config, dict) or "CLIPVisionModelWithProjection" not in config.get("architectures", [""]):
        raise ModelFormatError(f"{encoder} is not a CLIP image encoder (CLIPVisionModelWithProjection).",
                               hint="Use the image_encoder folder that comes with the IP-Adapter.")


def _load_into(handle: Any, weights: Path, encoder_folder: Path, key: tuple[str, int, int]) -> _Loaded:
    """diffusers' ``load_ip_adapter`` on the base pipeline; then the adapter's parts are kept and taken off."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    pipe = handle.pipe
    unet = pipe.unet
    own = dict(unet.attn_processors)
    before = (pipe.image_encoder, pipe.feature_extractor)
    # plain processors while loading (diffusers rebuilds the self-attention ones with no arguments, which
    # attention slicing's cannot take); the UNet's own come back below
    unet.set_attn_processor(AttnProcessor2_0())
    try:
        pipe.load_ip_adapter(str(weights.parent.parent), subfolder=weights.parent.name, weight_name=weights.name,
                             image_encoder_folder=encoder_folder.name, local_files_only=True)
        processors = {name: processor for name, processor in unet.attn_processors.items()
                      if type(processor).__name__.startswith("IPAdapter")}
        projection, encoder, feature_extractor = unet.encoder_hid_proj, pipe.image_encoder, pipe.feature_extractor
    except (ModelFormatError, ModelNotFoundError):
        raise
    except Exception as exc:  # diffusers/transformers raise OSError, ValueError, KeyError, RuntimeError…
        raise ModelFormatError(f"The IP-Adapter {weights.name} could not be loaded: {_first_line(exc)}",
                               hint="Download the IP-Adapter and its image encoder again.") from exc
    finally:
        unet.set_attn_processor(own)
        unet.encoder_hid_proj = None
        unet.config.encoder_hid_dim_type = None
        pipe.image_encoder, pipe.feature_extractor = before
    if (encoder_folder / "preprocessor_config.json").is_file():
        feature_extractor = _processor(encoder_folder) or feature_extractor
    elif before[1] is not None:
        feature_extractor = None  # the pipeline's own (SD 1.5's CLIP 224 processor) is used as is
    encoder.eval()
    return _Loaded(key, processors, projection, encoder, feature_extractor)


def _processor(folder: Path) -> Any:
    from transformers import CLIPImageProcessor

    try:
        return CLIPImageProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError):
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ------------------------------------------------------------------------------------------------- metadata


def a1111_fields(params: Any, number: int) -> list[tuple[str, str]]:
    """``("ControlNet N", "Module: ip-adapter_clip_sd15, Model: name, Weight: 0.6, …")`` as sd-webui-controlnet
    writes an IP-Adapter unit (``number``: after the ControlNet units); [] when off. Never raises."""
    try:
        ref = parse_ip_adapter(getattr(params, "ip_adapter", ""))
    except ParamError:
        return []
    scale = float(getattr(params, "ip_adapter_scale", 0.6))
    if ref is None or scale <= 0:
        return []
    module = "ip-adapter_clip_sdxl" if "sdxl" in ref.model_name.lower() else "ip-adapter_clip_sd15"
    values = [("Module", module), ("Model", ref.model_name), ("Weight", _num(scale)),
              ("Resize Mode", "Crop and Resize"), ("Guidance Start", "0"), ("Guidance End", "1"),
              ("Pixel Perfect", "False"), ("Control Mode", "Balanced")]
    return [(f"ControlNet {number}", ", ".join(f"{key}: {value}" for key, value in values))]


def values_from_a1111(settings: Mapping[str, str]) -> dict[str, Any]:
    """``ip_adapter`` (the model's name, no image: A1111 stores none) and ``ip_adapter_scale`` from the first
    ``ControlNet N`` setting whose module is an IP-Adapter one; {} when there is none."""
    units = sorted((int(match.group(1)), value) for key, value in settings.items()
                   if (match := _A1111_UNIT_KEY.match(key.strip())))
    for _, value in units:
        pairs = {k.strip(): v.strip() for k, _, v in (part.partition(":") for part in value.split(",")) if _}
        if not pairs.get("Module", "").lower().startswith("ip-adapter"):
            continue
        model = _A1111_HASH.sub("", pairs.get("Model", "")).strip()
        if not model or model.lower() == "none":
            continue
        out: dict[str, Any] = {"ip_adapter": f"{model}|"}
        try:
            out["ip_adapter_scale"] = float(pairs.get("Weight", 0.6))
        except ValueError:
            pass
        return out
    return {}


def is_ip_adapter_unit(value: str) -> bool:
    """Whether an A1111 ``ControlNet N`` value is an IP-Adapter unit (ControlNet's reader leaves those out)."""
    return bool(re.search(r"(^|,)\s*Module:\s*ip-adapter", value, re.IGNORECASE))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
