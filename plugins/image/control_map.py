"""The image generator's ``control_map`` mode: the map a ControlNet unit would read, made and delivered alone.

No diffusion runs and no ControlNet model is loaded: the first unit of ``params.controlnets`` is parsed, its
control image opened, brought to the job's ``width``×``height`` and run through its preprocessor by the very code
a ControlNet job uses (:func:`plugins.image.controlnet._control_image`), so the map shown (and edited) before a
job is the one the job would use. The unit's model is not read (any text will do). One output, whose metadata
says it is a control map (``mode: control_map`` and the preprocessor), so the gallery records it as one.

Depth preprocessing (``preprocess=depth``) runs a transformers depth-estimation model; :func:`annotator_path`
resolves which (``annotator=`` in the unit: a local folder, ``demo``, or a hub id already downloaded), and
:func:`estimate_depth` runs it (the loaded model kept per process, by folder). torch and transformers are imported
only inside the functions the worker calls.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from desktop.api import ImageOutput, ModelFormatError, ModelNotFoundError, ParamError

__all__ = ["DEFAULT_ANNOTATOR", "annotator_path", "estimate_depth", "run_control_map"]

DEFAULT_ANNOTATOR = "depth-anything/Depth-Anything-V2-Small-hf"
"""The depth model a unit with ``preprocess=depth`` and no ``annotator=`` uses (Depth Anything V2 Small)."""

_DEMO: dict[str, Path] = {}
_DEMO_DIR: list[tempfile.TemporaryDirectory[str]] = []
_LOADED: dict[str, tuple[Any, Any]] = {}


def run_control_map(params: Any, ctx: Any) -> list[ImageOutput]:
    """The preprocessed control image of the first ControlNet unit of ``params``, at ``width``×``height``."""
    from plugins.image.controlnet import FIELD, _control_image, parse_unit

    texts = list(params.controlnets)
    if not texts:
        raise ParamError(FIELD, texts, "control_map mode needs a ControlNet unit: its control image is preprocessed",
                         hint="Add a unit such as any|/pictures/photo.png|preprocess=canny (the model is not used).")
    unit = parse_unit(texts[0], 1)
    ctx.raise_if_cancelled()
    ctx.progress(0, 1, f"Control map: {unit.preprocess}")
    image = _control_image(unit, 1, (params.width, params.height), ctx)
    ctx.progress(1, 1, f"Control map: {unit.preprocess}")
    metadata = {"seed": ctx.seed, "batch_index": 0, "mode": "control_map", "control_map": unit.preprocess}
    return [ImageOutput(image=image, metadata=metadata)]


# ------------------------------------------------------------------------------------------------- depth


def annotator_path(ref: str) -> Path:
    """The folder of the depth model ``ref`` names: ``demo`` (a tiny random one, built once per process), a local
    folder, or a hub id already in the Hugging Face cache (:class:`ModelNotFoundError` if it is not there)."""
    ref = (ref or "").strip() or DEFAULT_ANNOTATOR
    if ref == "demo":
        if "path" not in _DEMO:
            from plugins.image.demo import build_tiny_depth

            _DEMO_DIR.append(tempfile.TemporaryDirectory(prefix="studiolo-depth-"))
            _DEMO["path"] = build_tiny_depth(Path(_DEMO_DIR[0].name) / "demo-depth")
        return _DEMO["path"]
    local = Path(ref).expanduser()
    if local.is_dir():
        return local
    if local.is_absolute() or ref.startswith((".", "~")) or ref.count("/") != 1:
        raise ModelNotFoundError(f"No depth model at {ref}.",
                                 hint="Give the folder of a transformers depth-estimation model (config.json, "
                                      f"model.safetensors, preprocessor_config.json), 'demo', or {DEFAULT_ANNOTATOR}.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(ref, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise ModelNotFoundError(f"The depth model {ref} is not downloaded.",
                                 hint=f"Download {ref} in the Models page, or give a local folder or 'demo'.") from None


def estimate_depth(image: Any, ref: str) -> Any:
    """The depth map of ``image`` (PIL) by the model ``ref`` names: the predicted depth normalised to 0–255 (near
    is bright, as depth ControlNets expect), an RGB PIL image of ``image``'s size."""
    import numpy as np
    import torch
    from PIL import Image

    model, processor = _depth_model(annotator_path(ref))
    rgb = image.convert("RGB")
    inputs = processor(images=rgb, return_tensors="pt")
    with torch.inference_mode():
        predicted = model(pixel_values=inputs["pixel_values"].to(model.device, model.dtype)).predicted_depth
    depth = torch.nn.functional.interpolate(predicted.float()[:, None], size=(rgb.height, rgb.width),
                                            mode="bicubic", align_corners=False)[0, 0].cpu().numpy()
    low, high = float(depth.min()), float(depth.max())
    scaled = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
    grey = np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def _depth_model(path: Path) -> tuple[Any, Any]:
    key = str(path.resolve())
    if key not in _LOADED:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        if not (path / "config.json").is_file():
            raise ModelFormatError(f"{path.name} is not a transformers depth model (it has no config.json).",
                                   hint=f"Give a depth-estimation model folder such as {DEFAULT_ANNOTATOR}, "
                                        "or 'demo'.")
        try:
            model = AutoModelForDepthEstimation.from_pretrained(str(path), local_files_only=True,
                                                                use_safetensors=True)
            processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError… for broken folders
            text = str(exc).strip().splitlines()
            raise ModelFormatError(f"The depth model {path.name} could not be loaded: "
                                   f"{text[0] if text else type(exc).__name__}",
                                   hint=f"Give a depth-estimation model folder such as {DEFAULT_ANNOTATOR} "
                                        "(safetensors weights), or 'demo'.") from exc
        model.eval()
        _LOADED[key] = (model, processor)
    return _LOADED[key]
