"""The image generator's parameters: one schema for the CLI, the panel and the metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop.api import param

MODES = ("txt2img", "img2img", "inpaint", "outpaint", "upscale", "control_map")
SCHEDULERS = ("default", "euler", "euler_a", "dpmpp_2m", "ddim", "unipc")
OUTPAINT_FILLS = ("edge", "noise")
DTYPES = ("auto", "float16", "bfloat16", "float32")


@dataclass(frozen=True)
class ImageParams:
    prompt: str = param("", prompt=True, multiline=True, help="What to draw.")
    negative_prompt: str = param("", multiline=True, help="What to keep out of the picture.")
    mode: str = param("txt2img", choices=MODES,
                      help="txt2img: from the prompt alone; img2img: change an init image; inpaint: repaint the "
                           "masked part of an init image; outpaint: extend an init image on its sides; "
                           "upscale: make an init image larger with an upscaler model; "
                           "control_map: only the first ControlNet unit's preprocessed map.")
    width: int = param(512, min=64, max=2048, step=8, multiple_of=8, help="Width in pixels (a multiple of 8).")
    height: int = param(512, min=64, max=2048, step=8, multiple_of=8, help="Height in pixels (a multiple of 8).")
    steps: int = param(20, min=1, max=150, help="Denoising steps: more is slower and usually finer.")
    guidance_scale: float = param(7.0, min=0.0, max=30.0, step=0.5,
                                  help="How closely to follow the prompt (Turbo models: 0).")
    scheduler: str = param("default", choices=SCHEDULERS,
                           help="The sampler; 'default' keeps the model's own.")
    batch_size: int = param(1, min=1, max=16, help="Images made together in one run (uses more memory).")
    batch_count: int = param(1, min=1, max=100, help="Runs one after another.")
    strength: float = param(0.75, min=0.0, max=1.0, step=0.05,
                            help="img2img and inpaint: how much of the init image to change (1 = all).")
    init_image: Path | None = param(None, help="img2img and inpaint: the image to start from.")
    mask_image: Path | None = param(None, help="inpaint: white where the image is repainted, black where kept.")
    outpaint_left: int = param(0, min=0, max=1024, step=8, multiple_of=8, label="Extend left",
                               help="outpaint: pixels added on the left (the init image keeps its size).")
    outpaint_right: int = param(0, min=0, max=1024, step=8, multiple_of=8, label="Extend right",
                                help="outpaint: pixels added on the right.")
    outpaint_top: int = param(0, min=0, max=1024, step=8, multiple_of=8, label="Extend up",
                              help="outpaint: pixels added at the top.")
    outpaint_bottom: int = param(0, min=0, max=1024, step=8, multiple_of=8, label="Extend down",
                                 help="outpaint: pixels added at the bottom.")
    outpaint_feather: int = param(16, min=0, max=256, label="Feather",
                                  help="outpaint: how many pixels into the picture the new area fades in (the "
                                       "rest of the picture is kept exactly).")
    outpaint_fill: str = param("edge", choices=OUTPAINT_FILLS, label="Fill",
                               help="outpaint: what the new area starts as: edge (the border's colours "
                                    "stretched outward) or noise.")
    upscaler: str = param("", label="Upscaler",
                          help="An ESRGAN-family upscaler .safetensors file (ESRGAN, Real-ESRGAN, 4x-UltraSharp…); "
                               "'demo': a tiny random one. upscale mode uses it on the init image.")
    upscale_tile: int = param(512, min=0, max=4096, step=64, label="Upscale tile",
                              help="upscale: the picture is run in tiles of this many pixels (overlapping, blended); "
                                   "smaller uses less memory; 0: all at once.")
    upscale_by: float = param(0.0, min=0.0, max=8.0, step=0.5, label="Upscale by",
                              help="upscale: the final size as a multiple of the init image's (the upscaler's output "
                                   "resized, Lanczos, as A1111's Extras does); 0: the upscaler's own scale.")
    hires_scale: float = param(1.0, min=1.0, max=4.0, step=0.25, label="Hires upscale",
                               help="txt2img: hires fix — make the picture this many times larger, then refine it with "
                                    "an image-to-image pass at that size (1: off).")
    hires_upscaler: str = param("latent", label="Hires upscaler",
                                help="Hires fix: 'latent' (resize the latents, bilinear) or an ESRGAN-family upscaler "
                                     ".safetensors file ('demo': a tiny random one).")
    hires_steps: int = param(0, min=0, max=150, label="Hires steps",
                             help="Hires fix: steps of the second pass (0: the same as steps; about steps × denoise "
                                  "of them run).")
    hires_denoise: float = param(0.5, min=0.0, max=1.0, step=0.05, label="Hires denoise",
                                 help="Hires fix: how much the second pass changes the larger picture (1 = all).")
    variation_seed: int | None = param(None, min=0, max=2**63 - 1, label="Variation seed",
                                       help="txt2img: a second seed whose starting noise is mixed into the seed's "
                                            "(AUTOMATIC1111's variation seed); empty: none.")
    variation_strength: float = param(0.0, min=0.0, max=1.0, step=0.05, label="Variation strength",
                                      help="How much of the variation seed's noise to use: 0 the seed's picture, "
                                           "1 the variation seed's.")
    prompt_to: str = param("", multiline=True, label="Mix with prompt",
                           help="A second prompt whose meaning is mixed into the prompt's (prompt interpolation).")
    prompt_mix: float = param(0.0, min=0.0, max=1.0, step=0.05, label="Prompt mix",
                              help="How much of the second prompt to use: 0 the prompt alone, 1 the second alone.")
    loras: list[str] = param(default_factory=list, max_items=8,
                             help="LoRA .safetensors files, each as PATH or PATH:WEIGHT (weight 1 by default), or a "
                                  "stored LoRA (trained or imported) as NAME or NAME:WEIGHT.")
    controlnets: list[str] = param(default_factory=list, max_items=3, label="ControlNets",
                                   help="ControlNet units, each MODEL|IMAGE|WEIGHT|START|END (weight 1, start 0, "
                                        "end 1 by default; add |preprocess=canny to use a photo's edges).")
    ip_adapter: str = param("", label="IP-Adapter",
                            help="An image prompt: MODEL|IMAGE — an IP-Adapter folder laid out like h94/IP-Adapter "
                                 "(or 'demo': a tiny random one) and the reference picture; empty: off.")
    ip_adapter_scale: float = param(0.6, min=0.0, max=2.0, step=0.05, label="IP-Adapter scale",
                                    help="How strongly the picture follows the IP-Adapter's reference picture "
                                         "(0: not at all).")
    preview_every: int = param(1, min=0, max=100, help="Show a preview every N steps (0: none).")
    dtype: str = param("auto", choices=DTYPES, load_option=True, label="Number format",
                       help="Number format of the weights: auto is float16 on a GPU, float32 on the CPU.")
    attention_slicing: bool = param(False, load_option=True, help="Save memory at some cost in speed.")
    vae_tiling: bool = param(False, load_option=True, label="VAE tiling",
                             help="Decode large images in tiles (saves memory).")
    cpu_offload: bool = param(False, load_option=True, label="CPU offload",
                              help="Keep parts of the model in RAM until needed (small GPUs; slower).")
