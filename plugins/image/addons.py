"""The image generator's add-on models (``Generator.addon_kinds``): ControlNets, upscalers, IP-Adapters and depth
estimators, each listed in the model manager with the models recommended for it, and their tiny demo models.

Jobs find an add-on's files with ``ctx.addon_model(KIND, ref)`` (a local path, an imported name, a downloaded hub
model, or ``demo``). Sizes of the recommended models were written by hand (2026-12; the hub was not reachable
from where this was written): the model manager shows the hub's own listing once it has seen it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import AddonKind, RecommendedModel

__all__ = ["CONTROLNET", "UPSCALER", "IP_ADAPTER", "DEPTH", "LORA", "ADDON_KINDS", "build_addon_demo", "local_ref"]

CONTROLNET = "controlnet"
UPSCALER = "upscaler"
IP_ADAPTER = "ip_adapter"
DEPTH = "depth"
LORA = "lora"  # LoRAs, trained here (plugins/image/training.py) or imported

_MB = 1_000_000

ADDON_KINDS = (
    AddonKind(
        CONTROLNET, "ControlNets",
        "Guide a picture's composition with an edge map, a depth map, a pose… (diffusers ControlNet folders, or "
        "single .safetensors files).",
        recommended_models=(
            RecommendedModel("lllyasviel/control_v11p_sd15_canny", "Canny edges (SD 1.5)",
                             "Follows the edges of a photo or drawing (use preprocess=canny on a photo).",
                             size_bytes=1445 * _MB, size_checked="2026-12", license="OpenRAIL"),
            RecommendedModel("lllyasviel/control_v11f1p_sd15_depth", "Depth (SD 1.5)",
                             "Follows a depth map (use preprocess=depth on a photo).",
                             size_bytes=1445 * _MB, size_checked="2026-12", license="OpenRAIL"),
            RecommendedModel("diffusers/controlnet-canny-sdxl-1.0", "Canny edges (SDXL)",
                             "Follows edges with SDXL base models; needs a GPU with 10 GB or more.",
                             size_bytes=5004 * _MB, size_checked="2026-12", license="OpenRAIL++-M"),
        ),
        has_demo=True),
    AddonKind(
        UPSCALER, "Upscalers",
        "Make finished pictures larger (upscale mode, hires fix): ESRGAN-family models, one .safetensors file each.",
        recommended_models=(
            RecommendedModel("Comfy-Org/Real-ESRGAN_repackaged/RealESRGAN_x4plus.safetensors", "Real-ESRGAN ×4+",
                             "The general-purpose ×4 upscaler for photos and renders (safetensors repackaging).",
                             size_bytes=67 * _MB, size_checked="2026-12", license="BSD-3-Clause"),
        ),
        model_file_patterns=("*.safetensors", "*.pth", "*.pt"),
        has_demo=True),
    AddonKind(
        IP_ADAPTER, "IP-Adapters",
        "Use a picture as a prompt (IP-Adapter: a folder with the adapter's weights and its image encoder).",
        has_demo=True),
    AddonKind(
        DEPTH, "Depth estimators",
        "Turn a photo into a depth map for depth ControlNets (preprocess=depth; transformers depth estimation).",
        recommended_models=(
            RecommendedModel("depth-anything/Depth-Anything-V2-Small-hf", "Depth Anything V2 Small",
                             "Fast, good depth maps (25 M parameters).", size_bytes=99 * _MB,
                             size_checked="2026-12", license="Apache-2.0"),
        ),
        has_demo=True),
    AddonKind(
        LORA, "LoRAs",
        "Small add-ons that teach a model a subject or a style (one .safetensors file each): the ones you train from "
        "your pictures are listed here, usable by name in the LoRA list.",
        model_file_patterns=("*.safetensors",)),
)
"""What ``DiffusersImageGenerator.addon_kinds`` declares."""


def build_addon_demo(kind: str, dest: Path) -> None:
    """Write the tiny demo model of add-on ``kind`` into the empty folder ``dest`` (random weights, offline)."""
    from plugins.image import demo

    if kind == CONTROLNET:
        demo.build_tiny_controlnet(dest)
    elif kind == UPSCALER:
        demo.build_tiny_upscaler(dest / "demo-esrgan-x4.safetensors")
    elif kind == IP_ADAPTER:
        demo.build_tiny_ip_adapter(dest)
    elif kind == DEPTH:
        demo.build_tiny_depth(dest)
    else:
        raise ValueError(f"the image generator has no add-on kind {kind!r}")


def local_ref(ctx: Any, kind: str, ref: str, *, allow_pickle: bool = False) -> str:
    """``ref`` made local by the job's ``ctx.addon_model`` (an imported name, a downloaded hub id, ``demo``: the
    path of its files); ``ref`` as it is when called outside a job, with no such context (a direct call from a
    test or a benchmark, where ``demo`` is built in a temporary folder by the module that loads it)."""
    resolve = getattr(ctx, "addon_model", None)
    if resolve is None:
        return ref
    return str(resolve(kind, ref, allow_pickle=allow_pickle))
