"""Tiny Stable Diffusion pipelines with random weights, built offline in a second or two.

:func:`build_tiny_sd` is the image generator's demo model (``--model demo``): a complete SD 1.x-style diffusers
folder (tokenizer, CLIP text encoder, UNet, VAE, Euler scheduler) of about 2 MB that loads through the same code
as a downloaded model. :func:`build_tiny_sdxl` is its SDXL sibling (two text encoders), for tests.

The weights are drawn from a private ``torch.Generator`` seeded with ``seed``: the same seed gives the same files,
and building never touches torch's process-wide random generator (another job may be holding it). The modules
are laid out on the ``meta`` device, which allocates nothing and draws nothing, and only their shapes are used.

Random weights draw coloured noise, whatever the prompt; the UI labels the demo model as a demo.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["build_tiny_controlnet", "build_tiny_depth", "build_tiny_ip_adapter", "build_tiny_sd", "build_tiny_sdxl",
           "build_tiny_upscaler"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
_MAX_TOKENS = 77
_TEXT_HIDDEN = 32
_VAE = {
    "block_out_channels": (32, 32, 64, 64),  # four blocks: 8× down-sampling, as in real Stable Diffusion
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "sample_size": 64,
}
_UNET = {
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "sample_size": 8,
}
_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
}


def build_tiny_sd(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny SD 1.x-style ``StableDiffusionPipeline`` folder into ``dest`` (created if needed); return it.

    64×64 images in 2–4 steps take a fraction of a second on a CPU.
    """
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _tokenizer()
    with _meta():
        text_encoder = CLIPTextModel(_text_config(CLIPTextConfig, len(tokenizer)))
        unet = UNet2DConditionModel(cross_attention_dim=_TEXT_HIDDEN, **_UNET)
        vae = AutoencoderKL(**_VAE)
    parts = _materialise({"text_encoder": text_encoder, "unet": unet, "vae": vae}, seed)
    pipe = StableDiffusionPipeline(**parts, tokenizer=tokenizer, scheduler=_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    return _save(pipe, dest)


def build_tiny_sdxl(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny SDXL-style ``StableDiffusionXLPipeline`` folder (two text encoders) into ``dest``; return it."""
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _tokenizer()
    time_dim = 8
    with _meta():
        text_encoder = CLIPTextModel(_text_config(CLIPTextConfig, len(tokenizer)))
        text_encoder_2 = CLIPTextModelWithProjection(_text_config(CLIPTextConfig, len(tokenizer)))
        unet = UNet2DConditionModel(
            cross_attention_dim=2 * _TEXT_HIDDEN, addition_embed_type="text_time", addition_time_embed_dim=time_dim,
            projection_class_embeddings_input_dim=6 * time_dim + _TEXT_HIDDEN, use_linear_projection=True,
            **_UNET)
        vae = AutoencoderKL(scaling_factor=0.13025, **_VAE)
    parts = _materialise({"text_encoder": text_encoder, "text_encoder_2": text_encoder_2, "unet": unet, "vae": vae},
                         seed)
    pipe = StableDiffusionXLPipeline(**parts, tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=_scheduler())
    return _save(pipe, dest)


def build_tiny_controlnet(dest: Path, *, sdxl: bool = False, seed: int = 0) -> Path:
    """Write a tiny ``ControlNetModel`` folder (config.json + safetensors) matching :func:`build_tiny_sd`'s UNet
    (``sdxl``: :func:`build_tiny_sdxl`'s) into ``dest``; return it. Random weights, so it changes the picture."""
    from diffusers import ControlNetModel

    shape = {key: value for key, value in _UNET.items() if key not in ("up_block_types", "sample_size")}
    extra: dict[str, Any] = {"cross_attention_dim": _TEXT_HIDDEN}
    if sdxl:
        time_dim = 8
        extra = {"cross_attention_dim": 2 * _TEXT_HIDDEN, "addition_embed_type": "text_time",
                 "addition_time_embed_dim": time_dim, "use_linear_projection": True,
                 "projection_class_embeddings_input_dim": 6 * time_dim + _TEXT_HIDDEN}
    with _meta():
        model = ControlNetModel(conditioning_embedding_out_channels=(16, 16, 32, 32), **shape, **extra)
    _materialise({"controlnet": model}, seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest), safe_serialization=True)
    return dest


# ------------------------------------------------------------------------------------------------- parts


def _tokenizer() -> Any:
    """A CLIP tokenizer over single letters and digits, from a hand-written ``vocab.json`` and ``merges.txt``."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for token in (*_SPECIALS, *_LETTERS, *(c + "</w>" for c in _LETTERS)):
        vocab[token] = len(vocab)
    with tempfile.TemporaryDirectory(prefix="studiolo-tokenizer-") as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                             model_max_length=_MAX_TOKENS)


def _text_config(config_class: type, vocab_size: int) -> Any:
    return config_class(vocab_size=vocab_size, hidden_size=_TEXT_HIDDEN, intermediate_size=37, projection_dim=32,
                        num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=_MAX_TOKENS,
                        bos_token_id=0, eos_token_id=1, pad_token_id=1)


def _scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**_SCHEDULER)


def _meta() -> Any:
    import torch

    return torch.device("meta")


def _materialise(modules: dict[str, Any], seed: int) -> dict[str, Any]:
    """Give meta-device modules real weights drawn from a generator seeded with ``seed`` (in a fixed order).

    Matrices and convolution kernels get PyTorch's default spread (std 1/sqrt(3·fan_in)), embeddings std 0.02,
    norm scales 1 and biases 0. Buffers outside the state dict (CLIP's ``position_ids``) are rebuilt.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    for module in modules.values():
        state = {name: _init(name, tensor.shape, generator) for name, tensor in module.state_dict().items()}
        module.load_state_dict(state, assign=True)
        for name, buffer in list(module.named_buffers()):
            if buffer.is_meta:
                if not name.endswith("position_ids"):
                    raise RuntimeError(f"demo model: no rule to build the buffer {name}")
                owner = module.get_submodule(name.rpartition(".")[0])
                owner.register_buffer("position_ids", torch.arange(buffer.shape[-1]).expand(buffer.shape).clone(),
                                      persistent=False)
        module.eval()
    return modules


def _init(name: str, shape: Any, generator: Any) -> Any:
    import torch

    if name.endswith("bias"):
        return torch.zeros(shape)
    if len(shape) == 1:
        return torch.ones(shape)
    if name.endswith("embedding.weight") and len(shape) == 2:  # token and position embeddings
        return torch.randn(shape, generator=generator) * 0.02
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=generator) / math.sqrt(3 * fan_in)


def _save(pipe: Any, dest: Path) -> Path:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(dest), safe_serialization=True)
    return dest


def build_tiny_upscaler(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny ×4 ESRGAN upscaler (BasicSR's RRDBNet layout, as Real-ESRGAN's x4plus: 8 features, one block;
    about 60 KB) with random weights to the ``.safetensors`` file ``dest``; return it. It loads through
    :func:`plugins.image.upscale.load_upscaler` like a downloaded one, and upscales into coloured noise."""
    import torch
    from safetensors.torch import save_file

    from plugins.image.rrdbnet import RRDBNet, RRDBShape

    with _meta():
        net = RRDBNet(RRDBShape(in_channels=3, out_channels=3, features=8, growth=4, blocks=1, upsamples=2,
                                unshuffle=1))
    _materialise({"net": net}, seed)
    with torch.no_grad():  # mid-grey noise with a visible spread, rather than near-black
        net.conv_last.weight.mul_(10)
        net.conv_last.bias.fill_(0.5)
    state = {(f"conv_up{int(name.split('.')[1]) + 1}.{name.rsplit('.', 1)[1]}" if name.startswith("ups.") else name):
             tensor.contiguous() for name, tensor in net.state_dict().items()}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dest))
    return dest


def build_tiny_depth(dest: Path, *, seed: int = 0) -> Path:
    """Write a tiny Depth Anything depth-estimation model (``DepthAnythingForDepthEstimation`` over a 4-layer,
    32-wide DINOv2 backbone, 56×56 input; about 500 KB) and its image processor into the folder ``dest``; return
    it. Random weights: the "depth" it predicts is noise shaped by the picture, but it loads and runs through
    transformers' ``AutoModelForDepthEstimation`` like Depth Anything V2 Small."""
    import transformers
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    # the PIL processor where transformers has one (its plain name wants torchvision, which this stack lacks)
    processor_class = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=56,
                            patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=32,
                                 neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8)
    with _meta():
        model = DepthAnythingForDepthEstimation(config)
    _materialise({"model": model}, seed)
    import torch

    with torch.no_grad():  # a positive depth with a visible spread, rather than mostly 0 after the last ReLU
        model.head.conv3.weight.mul_(10)
        model.head.conv3.bias.fill_(1.0)
    processor = processor_class(do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, resample=3, do_rescale=True, do_normalize=True,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest), safe_serialization=True)
    processor.save_pretrained(str(dest))
    return dest


_IP_IMAGE_SIZE = 32
_IP_EMBED_DIM = 32


def build_tiny_ip_adapter(dest: Path, *, sdxl: bool = False, seed: int = 0) -> Path:
    """Write a tiny IP-Adapter laid out like h94/IP-Adapter into the folder ``dest``; return ``dest``.

    ``models/ip-adapter_sd15.safetensors`` (``sdxl``: ``sdxl_models/ip-adapter_sdxl.safetensors``) holds the
    ``image_proj.*`` projection and one ``ip_adapter.N.to_k_ip``/``to_v_ip`` pair per cross-attention layer of
    :func:`build_tiny_sd`'s UNet (:func:`build_tiny_sdxl`'s), numbered as diffusers' loader reads them;
    ``image_encoder/`` beside it is a tiny ``CLIPVisionModelWithProjection`` with its ``CLIPImageProcessor``
    (32×32 input). Random weights: it changes the picture, not in any meaningful way."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    cross = 2 * _TEXT_HIDDEN if sdxl else _TEXT_HIDDEN
    with _meta():
        unet = UNet2DConditionModel(cross_attention_dim=cross, **_UNET)
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=32, intermediate_size=37, projection_dim=_IP_EMBED_DIM, num_hidden_layers=2,
            num_attention_heads=4, image_size=_IP_IMAGE_SIZE, patch_size=8))
    _materialise({"encoder": encoder}, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    state = {"image_proj.proj.weight": _init("proj.weight", (4 * cross, _IP_EMBED_DIM), generator),
             "image_proj.proj.bias": torch.zeros(4 * cross),
             "image_proj.norm.weight": torch.ones(cross), "image_proj.norm.bias": torch.zeros(cross)}
    key_id = 1  # diffusers numbers the cross-attention layers 1, 3, 5… (the self-attention ones take the evens)
    blocks = list(_UNET["block_out_channels"])
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = blocks[-1]
        elif name.startswith("up_blocks"):
            hidden = blocks[::-1][int(name.split(".")[1])]
        else:
            hidden = blocks[int(name.split(".")[1])]
        for part in ("to_k_ip", "to_v_ip"):
            state[f"ip_adapter.{key_id}.{part}.weight"] = _init("w", (hidden, cross), generator) * 4
        key_id += 2
    dest = Path(dest)
    weights = dest / ("sdxl_models" if sdxl else "models")
    (weights / "image_encoder").mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state.items()},
              str(weights / ("ip-adapter_sdxl.safetensors" if sdxl else "ip-adapter_sd15.safetensors")))
    encoder.save_pretrained(str(weights / "image_encoder"), safe_serialization=True)
    size = {"shortest_edge": _IP_IMAGE_SIZE}
    CLIPImageProcessor(size=size, crop_size={"height": _IP_IMAGE_SIZE, "width": _IP_IMAGE_SIZE}).save_pretrained(
        str(weights / "image_encoder"))
    return dest
