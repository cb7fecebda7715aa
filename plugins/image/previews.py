"""Cheap live previews: latents to an RGB picture by a fixed linear map, with no VAE decode.

Each latent pixel (4 channels) is multiplied by a 4×3 matrix fitted once for the model family's VAE: it costs
microseconds where a VAE decode costs as much as a denoising step. The colours are approximate and the picture is
1/8 of the final size, so it is scaled up (nearest neighbour) for display. Batches are shown side by side.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["latents_to_preview", "SD_FACTORS", "SDXL_FACTORS"]

# Approximate latent → RGB factors for the SD 1.x/2.x VAE and the SDXL VAE (rows: latent channels 0–3; columns:
# R, G, B; output in [-1, 1]), as in common use by diffusion front ends.
SD_FACTORS = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
              (-0.2120, -0.2616, -0.7177))
SD_BIAS = (0.0, 0.0, 0.0)
SDXL_FACTORS = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362),
                (-0.3165, -0.2492, -0.2188))
SDXL_BIAS = (0.1084, -0.0175, -0.0011)
MAX_SIDE = 512  # previews are scaled up to the image size, but no larger than this on their long side


def latents_to_preview(latents: Any, *, sdxl: bool = False, size: tuple[int, int] | None = None,
                       sigma: float | None = None) -> Any:
    """A PIL RGB image from a ``(batch, channels, h, w)`` latent tensor (images side by side).

    ``size`` is the final image's (width, height): the preview is scaled up towards it, nearest neighbour, up
    to :data:`MAX_SIDE`. ``sigma`` is the noise level still in the latents (Euler-type schedulers): dividing by
    ``sqrt(1 + sigma²)`` keeps early, noisy previews from saturating. Latents that are not 4-channel (other model
    families) are shown as their first three channels.
    """
    import numpy as np
    import torch
    from PIL import Image

    with torch.no_grad():
        x = latents.detach().to("cpu", torch.float32)
        if sigma:
            x = x / math.sqrt(1.0 + float(sigma) ** 2)
        if x.shape[1] == 4:
            factors = torch.tensor(SDXL_FACTORS if sdxl else SD_FACTORS)
            bias = torch.tensor(SDXL_BIAS if sdxl else SD_BIAS)
            rgb = torch.einsum("bchw,cr->brhw", x, factors) + bias[None, :, None, None]
        else:
            rgb = x[:, :3] / max(float(x[:, :3].abs().max()), 1e-6)
        rgb = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        tiled = torch.cat(list(rgb), dim=2)  # (3, h, w·batch)
        pixels = np.ascontiguousarray(tiled.permute(1, 2, 0).numpy())
    image = Image.fromarray(pixels)  # (h, w, 3) uint8: RGB
    return image.resize(_display_size(image.size, latents.shape[0], size), Image.Resampling.NEAREST)


def _display_size(current: tuple[int, int], batch: int, size: tuple[int, int] | None) -> tuple[int, int]:
    width, height = current
    target_w, target_h = size if size else (width * 8 // batch, height * 8)
    scale = max(1, min(target_w * batch // width, target_h // height))
    scale = max(1, min(scale, MAX_SIDE // max(width, height)))
    return width * scale, height * scale
