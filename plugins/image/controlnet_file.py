"""Single-file ControlNets: one ``.safetensors`` file, as the original ControlNet releases and the ComfyUI/A1111
model folders keep them (``control_v11p_sd15_canny_fp16.safetensors``), or a diffusers model saved as one file.

diffusers' ``ControlNetModel.from_single_file`` converts the original layout. Its architecture comes from a
``config.json``; diffusers would fetch one from the hub, which is not allowed here: the config is made from the
loaded base UNet's instead (a ControlNet has the shape of the UNet it was trained beside, as
``ControlNetModel.from_unet`` assumes), written to a temporary folder. Before anything is loaded, the file's
cross-attention width is read from its safetensors header and compared with the base UNet's: a ControlNet made for
another model family (SDXL's 2048 against SD 1.5's 768, SD 2's 1024) is refused saying so.

torch and diffusers are imported only inside the functions the worker calls.
"""

from __future__ import annotations

import inspect
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from desktop.api import ModelFormatError, safetensors_header

__all__ = ["load_single_file", "cross_attention_width"]

_TO_K = re.compile(r"(?:^|\.)(?:input_blocks|down_blocks)\.\d+\.(?:1|attentions\.\d+)\.transformer_blocks\.0\."
                   r"attn2\.to_k\.weight$")
"""The first down block's cross-attention key projection, in the original or the diffusers layout."""


def cross_attention_width(path: Path) -> int | None:
    """The text-embedding width the ControlNet in ``path`` attends to (768 SD 1.x, 1024 SD 2.x, 2048 SDXL), from
    its safetensors header (no weights read); None when the file has no cross-attention layer it can find."""
    header = safetensors_header(path)
    for key, info in header.items():
        if isinstance(info, dict) and _TO_K.search(key):
            shape = info.get("shape")
            if isinstance(shape, list) and len(shape) == 2:
                return int(shape[1])
    return None


_HINT = re.compile(r"(?:^|\.)(?:controlnet_cond_embedding\.(?P<name>conv_in|blocks\.(?P<block>\d+))|"
                   r"input_hint_block\.(?P<ldm>\d+))\.weight$")


def _hint_channels(header: dict[str, Any]) -> dict[str, Any]:
    """``conditioning_channels`` and ``conditioning_embedding_out_channels`` from the shapes of the file's control
    image encoder (either layout): what the UNet's config cannot tell. Empty when they cannot be read."""
    shapes: dict[int, list[int]] = {}  # diffusers' block index (-1: conv_in) → [out, in, k, k]
    for key, info in header.items():
        match = _HINT.search(key)
        if not match or not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            continue
        if match["ldm"] is not None:  # input_hint_block.0 is conv_in, .2/.4/… the blocks, .14 conv_out
            index = int(match["ldm"])
            if index % 2 or index == 14:
                continue
            block = index // 2 - 1
        else:
            block = -1 if match["name"] == "conv_in" else int(match["block"])
        shapes[block] = info["shape"]
    if -1 not in shapes or len(shapes[-1]) != 4:
        return {}
    # conv_in: image → c0; then per step a same-width conv and a stride-2 conv to the next width (odd blocks)
    out = [shapes[-1][0]] + [shapes[b][0] for b in sorted(shapes) if b >= 0 and b % 2 == 1]
    return {"conditioning_channels": shapes[-1][1], "conditioning_embedding_out_channels": out}


def _config_from_unet(unet_config: Any, header: dict[str, Any]) -> dict[str, Any]:
    """A ControlNetModel config with the base UNet's shape (the fields both classes take) and the file's own
    control image encoder."""
    from diffusers import ControlNetModel

    accepted = set(inspect.signature(ControlNetModel.__init__).parameters) - {"self"}
    config = {key: value for key, value in dict(unet_config).items() if key in accepted}
    config.update(_hint_channels(header))
    config["_class_name"] = "ControlNetModel"
    return config


def load_single_file(path: Path, handle: Any, number: int) -> Any:
    """The ControlNetModel in the single file ``path`` for the loaded base ``handle`` (``handle.pipe.unet``)."""
    if path.suffix.lower() != ".safetensors":
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} is not a .safetensors file.",
                               hint="Use a .safetensors ControlNet file, or a diffusers ControlNet folder.")
    unet = handle.pipe.unet
    width = cross_attention_width(path)  # also refuses a file that is not safetensors at all
    if width is None:
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} holds no ControlNet weights Studiolo "
                               "recognises.", hint="Choose a ControlNet .safetensors file.")
    base = unet.config.cross_attention_dim
    if width != base:
        families = {768: "Stable Diffusion 1.x", 1024: "Stable Diffusion 2.x", 2048: "SDXL"}
        made = families.get(width, f"a model with {width}-wide text embeddings")
        loaded = families.get(base, f"a model with {base}-wide text embeddings")
        raise ModelFormatError(f"ControlNet unit {number}: {path.name} is made for another model family ({made}) "
                               f"than the loaded {loaded} model.",
                               hint="Choose a ControlNet made for this base model's family.")
    from diffusers import ControlNetModel

    from plugins.image.pipelines import _dtype_kwarg

    with tempfile.TemporaryDirectory(prefix="studiolo-controlnet-config-") as folder:
        config = _config_from_unet(unet.config, safetensors_header(path))
        (Path(folder) / "config.json").write_text(json.dumps(config), encoding="utf-8")
        try:
            return ControlNetModel.from_single_file(str(path), config=folder, local_files_only=True,
                                                    **_dtype_kwarg(unet.dtype))
        except Exception as exc:  # diffusers raises ValueError, RuntimeError, KeyError… for files it cannot map
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFormatError(f"ControlNet unit {number}: {path.name} could not be loaded: {first}",
                                   hint="Check that it is a ControlNet for this base model, or download it "
                                        "again.") from exc
