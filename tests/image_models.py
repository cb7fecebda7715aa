"""Tiny Stable Diffusion models for tests, built once per test session (import as ``from image_models import ...``).

* :func:`tiny_sd_dir` / :func:`tiny_sdxl_dir` — the path of a tiny SD 1.x / SDXL diffusers folder, built on
  first call into a session temp folder and reused after (random weights, offline, ~8 MB, about a second).
* :func:`make_lora` — a tiny LoRA (peft) for one of those folders, with non-zero weights so it changes pixels.
* :func:`write_single_file` — an SD 1.x diffusers folder as one original-layout (``model.diffusion_model.``,
  ``first_stage_model.``, ``cond_stage_model.transformer.``) ``.safetensors`` checkpoint, plus its config folder.

The session fixtures ``tiny_sd``/``tiny_sdxl`` are registered for every test by ``tests/conftest.py``
(``pytest_plugins``): ask for them by name, do not import them.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}


def _session_dir() -> Path:
    if "root" not in _BUILT:
        _BUILT["root"] = Path(tempfile.mkdtemp(prefix="studiolo-image-models-"))
        atexit.register(shutil.rmtree, _BUILT["root"], ignore_errors=True)
    return _BUILT["root"]


def tiny_sd_dir() -> Path:
    """The tiny SD 1.x pipeline folder (built once per process). Do not modify it: copy it first."""
    if "sd" not in _BUILT:
        from plugins.image.demo import build_tiny_sd

        _BUILT["sd"] = build_tiny_sd(_session_dir() / "tiny-sd")
    return _BUILT["sd"]


def tiny_sdxl_dir() -> Path:
    """The tiny SDXL pipeline folder (built once per process). Do not modify it: copy it first."""
    if "sdxl" not in _BUILT:
        from plugins.image.demo import build_tiny_sdxl

        _BUILT["sdxl"] = build_tiny_sdxl(_session_dir() / "tiny-sdxl")
    return _BUILT["sdxl"]


@pytest.fixture(scope="session")
def tiny_sd() -> Path:
    return tiny_sd_dir()


@pytest.fixture(scope="session")
def tiny_sdxl() -> Path:
    return tiny_sdxl_dir()


@pytest.fixture(scope="module")
def sd(tiny_sd: Path):
    """The tiny SD model loaded by the image generator (float32, no memory savers, pickles refused), once per test
    module that asks for it (each job restores what it changes: LoRAs, adapters, schedulers)."""
    from desktop.api import LoadOptions
    from plugins.image.generator import DiffusersImageGenerator

    options = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False}
    return DiffusersImageGenerator().load(tiny_sd, "cpu", LoadOptions(options, allow_pickle=False))


def make_lora(model_dir: Path, dest: Path, *, seed: int = 1, rank: int = 4, scale: float = 0.5) -> Path:
    """Write ``dest`` (a ``.safetensors`` file): a LoRA on the UNet attention projections of ``model_dir``, with
    random A and B matrices (B is not zero, so the LoRA visibly changes the picture)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(str(model_dir), subfolder="unet", local_files_only=True)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    layers = get_peft_model_state_dict(unet)
    layers = {name: torch.randn(t.shape, generator=generator) * scale for name, t in layers.items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(str(dest.parent), unet_lora_layers=layers, weight_name=dest.name,
                                              safe_serialization=True)
    return dest


# ------------------------------------------------------------------------------ single-file checkpoints

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def write_single_file(model_dir: Path, dest: Path, *, config_folder: bool = True) -> Path:
    """Write the SD 1.x pipeline in ``model_dir`` as the single checkpoint ``dest`` in the original (LDM) key
    layout, the inverse of diffusers' ``from_single_file`` conversion. With ``config_folder``, also copy the
    folder without its weights to ``<dest stem>.config/`` (the configuration Studiolo looks for beside it)."""
    import json

    from safetensors.torch import load_file, save_file

    layers = json.loads((model_dir / "unet" / "config.json").read_text())["layers_per_block"]
    unet = load_file(str(model_dir / "unet" / "diffusion_pytorch_model.safetensors"))
    vae = load_file(str(model_dir / "vae" / "diffusion_pytorch_model.safetensors"))
    text = load_file(str(model_dir / "text_encoder" / "model.safetensors"))
    n_up = len(json.loads((model_dir / "vae" / "config.json").read_text())["up_block_types"])
    checkpoint = {"model.diffusion_model." + _unet_key(k, unet, layers): v for k, v in unet.items()}
    for key, value in vae.items():
        new_key, value = _vae_key(key, value, n_up)
        checkpoint["first_stage_model." + new_key] = value
    # transformers >= 5.6 saves CLIPTextModel without its ``text_model.`` level; checkpoints always have it
    checkpoint.update({"cond_stage_model.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k: v
                       for k, v in text.items()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(dest))
    if config_folder:
        shutil.copytree(model_dir, dest.with_suffix(".config"), ignore=shutil.ignore_patterns("*.safetensors"))
    return dest


def write_controlnet_single_file(folder: Path, dest: Path) -> Path:
    """Write the diffusers ControlNet in ``folder`` as the single file ``dest`` in the original ControlNet release's
    key layout (``control_model.input_blocks…``, ``zero_convs``, ``input_hint_block``, ``middle_block_out``), the
    inverse of diffusers' ``convert_controlnet_checkpoint``."""
    import json

    from safetensors.torch import load_file, save_file

    layers = json.loads((folder / "config.json").read_text())["layers_per_block"]
    weights = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    hint = {"controlnet_cond_embedding.conv_in": "input_hint_block.0",
            "controlnet_cond_embedding.conv_out": "input_hint_block.14",
            "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}  # SDXL
    checkpoint = {}
    for key, value in weights.items():
        name, _, param = key.rpartition(".")
        if name in hint:
            new = f"{hint[name]}.{param}"
        elif m := re.fullmatch(r"controlnet_cond_embedding\.blocks\.(\d+)", name):
            new = f"input_hint_block.{2 * (int(m[1]) + 1)}.{param}"
        elif m := re.fullmatch(r"controlnet_down_blocks\.(\d+)", name):
            new = f"zero_convs.{m[1]}.0.{param}"
        elif name == "controlnet_mid_block":
            new = f"middle_block_out.0.{param}"
        else:
            new = _unet_key(key, weights, layers)
        checkpoint["control_model." + new] = value.contiguous()
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(checkpoint, str(dest))
    return dest


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def _unet_key(key: str, unet: dict, layers: int) -> str:
    name, _, param = key.rpartition(".")
    if name in _UNET_FIXED:
        return f"{_UNET_FIXED[name]}.{param}"
    per = layers + 1
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"input_blocks.{per * block + j + 1}." + ("0." + _resnet(rest) if kind == "resnets" else "1." + rest)
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{per * (int(m[1]) + 1)}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"output_blocks.{per * block + j}." + ("0." + _resnet(rest) if kind == "resnets" else "1." + rest)
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        has_attention = any(k.startswith(f"up_blocks.{block}.attentions.") for k in unet)
        return f"output_blocks.{per * block + layers}.{2 if has_attention else 1}.conv.{m[2]}"
    raise KeyError(f"no LDM name for UNet key {key}")


def _vae_key(key: str, value, n_up: int):
    fixed = {"conv_norm_out": "norm_out"}
    if m := re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out|conv_norm_out)\.(.+)", key):
        return f"{m[1]}.{fixed.get(m[2], m[2])}.{m[3]}", value
    if key.startswith(("quant_conv.", "post_quant_conv.")):
        return key, value
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}", value
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}", value
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        block = n_up - 1 - int(m[1])
        return f"decoder.up.{block}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}", value
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{n_up - 1 - int(m[1])}.upsample.conv.{m[2]}", value
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}", value
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
        rest = m[2]
        for new, old in _VAE_ATTN:
            if rest.startswith(new + "."):
                rest = old + rest[len(new):]
        if value.ndim == 2:  # the original attention projections are 1×1 convolutions
            value = value[:, :, None, None]
        return f"{m[1]}.mid.attn_1.{rest}", value
    raise KeyError(f"no LDM name for VAE key {key}")
