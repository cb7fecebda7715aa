"""TinyVAE: images from a small VAE decoder — a complete Studiolo plugin that uses torch.

Started with `studiolo plugins new tinyvae --kind image` and grown from there. Its model is a folder holding
`config.json` and `decoder.safetensors`: the decoder half of a variational autoencoder, a few convolutions that
turn a latent (seeded Gaussian noise) into a small image. The demo model's weights are random, written offline in
milliseconds by `build_demo_model`: it draws abstract colour fields rather than pictures, through exactly the code
a trained decoder would go through.

torch is imported inside `build_demo_model`, `load` and `generate` only, so discovering the plugin (every start of
Studiolo, every `studiolo plugins list`) stays fast, and a broken torch install fails a job, not the start.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import Generator, ImageOutput, JobCancelled, ModelFormatError, check_model_files, hookimpl, param

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "decoder.safetensors"
CONFIG_LIMITS = {"latent_channels": (1, 64), "latent_size": (1, 64), "hidden_channels": (1, 512),
                 "upsamples": (0, 6), "image_channels": (3, 3)}
DEMO_CONFIG = {"latent_channels": 8, "latent_size": 4, "hidden_channels": 32, "upsamples": 3, "image_channels": 3}


@dataclass(frozen=True)
class TinyVaeParams:
    images: int = param(4, min=1, max=64, help="How many images to draw, each from a latent of its own.")
    temperature: float = param(1.0, min=0.0, max=3.0, step=0.1,
                               help="How far from the centre of the latent space to draw: higher is wilder; 0 gives "
                                    "the decoder's average image every time.")
    upscale: int = param(4, choices=(1, 2, 4, 8), help="Enlarge each image this many times (nearest neighbour).")


@dataclass
class TinyVae:
    """The loaded model: the decoder on its device and the latent shape it takes."""

    decoder: Any  # torch.nn.Sequential
    latent_shape: tuple[int, int, int]
    device: str


def build_decoder(config: dict[str, int]) -> Any:
    """The decoder network for ``config``: a convolution, ``upsamples`` × (double the size, convolve), then a
    convolution down to RGB in [0, 1]. Its image is ``latent_size * 2**upsamples`` pixels square."""
    from torch import nn

    hidden = config["hidden_channels"]
    layers: list[nn.Module] = [nn.Conv2d(config["latent_channels"], hidden, 3, padding=1), nn.SiLU()]
    for _ in range(config["upsamples"]):
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU()]
    layers += [nn.Conv2d(hidden, config["image_channels"], 3, padding=1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class TinyVaeGenerator(Generator):
    id = "image.tinyvae"
    name = "Tiny VAE"
    kind = "image"
    version = "1.0.0"
    description = "Small images decoded from seeded latents by a tiny VAE decoder (torch)."
    Params = TinyVaeParams
    default_model = "demo"
    devices = ("cuda", "mps", "cpu")
    preload_modules = ("torch", "safetensors.torch")

    def build_demo_model(self, dest: Path) -> None:
        import torch
        from safetensors.torch import save_file

        # Random weights from a generator of our own: the demo model is the same on every machine, and building it
        # never moves torch's global RNG, which another job may be drawing from.
        rng = torch.Generator().manual_seed(0)
        weights = {}
        with torch.device("meta"):  # shapes only: no memory, and no default initialisation drawing from the RNG
            shapes = build_decoder(DEMO_CONFIG).state_dict()
        for name, tensor in shapes.items():
            fan_in = tensor[0].numel() if tensor.dim() > 1 else 1
            scale = 1.8 / math.sqrt(fan_in) if tensor.dim() > 1 else 0.2
            weights[name] = (torch.randn(tensor.shape, generator=rng) * scale).contiguous()
        save_file(weights, str(dest / WEIGHTS_FILE))
        (dest / CONFIG_FILE).write_text(json.dumps(DEMO_CONFIG, indent=2), encoding="utf-8")

    def load(self, model_path, device, options):
        import torch
        from safetensors.torch import load_file

        if not model_path.is_dir():
            raise ModelFormatError(f"{model_path} is not a TinyVAE model folder.",
                                   hint=f"Choose a folder holding {CONFIG_FILE} and {WEIGHTS_FILE}.")
        config = read_config(model_path / CONFIG_FILE)
        weights_path = model_path / WEIGHTS_FILE
        if not weights_path.is_file():
            raise ModelFormatError(f"{model_path} has no {WEIGHTS_FILE}.",
                                   hint="Choose a TinyVAE model folder, or export the model again.")
        check_model_files(weights_path, allow_pickle=False)  # a complete safetensors file, else an error naming it
        with torch.device("meta"):  # no default initialisation: it would draw from torch's global RNG
            decoder = build_decoder(config)
        try:
            decoder.load_state_dict(load_file(str(weights_path)), assign=True)
        except (RuntimeError, OSError, ValueError) as exc:  # missing, extra or misshapen tensors
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFormatError(f"{weights_path} does not match {CONFIG_FILE}: {first_line}",
                                   hint="The weights and the config must come from the same model.") from exc
        decoder = decoder.to(device=torch.device(device)).eval()
        shape = (config["latent_channels"], config["latent_size"], config["latent_size"])
        return TinyVae(decoder=decoder, latent_shape=shape, device=device)

    def handle_size(self, vae):
        return sum(p.numel() * p.element_size() for p in vae.decoder.parameters())

    def generate(self, vae, params, ctx):
        import torch

        # Latents come from a CPU generator seeded with the job's seed, then move to the device: the same seed
        # draws the same images on every device, and image i of a job is the same however many images it draws.
        rng = torch.Generator().manual_seed(ctx.seed)
        outputs = []
        for i in range(params.images):
            if ctx.cancelled:  # checked before every image; the images drawn so far are handed over
                raise JobCancelled(partial=outputs)
            latent = torch.randn((1, *vae.latent_shape), generator=rng) * params.temperature
            with torch.inference_mode():
                pixels = vae.decoder(latent.to(vae.device))
            image = to_image(pixels, params.upscale)
            outputs.append(ImageOutput(image=image, metadata={"index": i, "temperature": params.temperature}))
            ctx.preview(image)
            ctx.progress(i + 1, params.images)
        return outputs


def read_config(path: Path) -> dict[str, int]:
    """The model's config, every field an integer in range, or a :class:`ModelFormatError` naming the file."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFormatError(f"Cannot read {path}: {exc}", hint="Choose a TinyVAE model folder.") from exc
    if not isinstance(config, dict):
        raise ModelFormatError(f"{path} is not a TinyVAE config.", hint="Choose a TinyVAE model folder.")
    for key, (low, high) in CONFIG_LIMITS.items():
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ModelFormatError(f"{path}: {key} must be a whole number from {low} to {high}, not {value!r}.",
                                   hint="Fix the config, or export the model again.")
    return {key: config[key] for key in CONFIG_LIMITS}


def to_image(pixels: Any, upscale: int) -> Any:
    """A (1, 3, H, W) tensor in [0, 1] → an RGB PIL image, enlarged ``upscale`` times."""
    import torch
    from PIL import Image

    array = (pixels[0].permute(1, 2, 0).float().clamp(0, 1) * 255).round().to("cpu", dtype=torch.uint8)
    image = Image.fromarray(array.numpy())  # height × width × 3 bytes: RGB
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.Resampling.NEAREST)
    return image


@hookimpl
def register_generators(register):
    register(TinyVaeGenerator())
