"""The initial noise of a txt2img run, and variations of it (AUTOMATIC1111's variation seed and strength).

A txt2img run starts from Gaussian noise that diffusers draws with ``randn_tensor`` from the job's CPU
``torch.Generator`` (one per image, seeded with the image's seed), of shape ``(1, unet in_channels, height / vae
scale, width / vae scale)`` per image, in the pipeline's dtype. :func:`initial_noise` draws exactly that, from the
same generators, so that what follows in the pipeline (an ancestral sampler's noise, drawn from the same
generators) is what a plain run would get.

A variation mixes two such noises: ``slerp(strength, noise(seed), noise(variation_seed))``, A1111's spherical
interpolation (:func:`slerp`), image by image. Strength 0 and 1 are not computed (the generator runs the plain
seed, or the plain variation seed, instead), so they are bit-identical to single runs.

torch and diffusers are imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["PARALLEL_DOT", "latent_shape", "initial_noise", "slerp", "varied_noise"]

PARALLEL_DOT = 0.9995
"""Above this mean cosine between the two noises, :func:`slerp` is a plain lerp (A1111's threshold)."""


def latent_shape(pipe: Any, width: int, height: int) -> tuple[int, int, int, int]:
    """The shape of ONE image's initial noise for ``pipe`` at ``width`` × ``height``: what diffusers'
    ``prepare_latents`` uses (``unet.config.in_channels`` channels, the VAE's scale factor)."""
    channels = int(pipe.unet.config.in_channels)
    scale = int(getattr(pipe, "vae_scale_factor", 8))
    return 1, channels, int(height) // scale, int(width) // scale


def initial_noise(shape: Sequence[int], generators: Sequence[Any], dtype: Any) -> Any:
    """One noise tensor per generator, drawn as diffusers draws a batch's initial latents from a list of CPU
    generators (``randn_tensor``), concatenated along the batch: ``(len(generators), C, H, W)``, on the CPU.
    Each generator advances as it would inside the pipeline."""
    from diffusers.utils.torch_utils import randn_tensor

    shape = (len(generators), *tuple(shape)[1:])
    return randn_tensor(shape, generator=list(generators), device=generators[0].device, dtype=dtype)


def slerp(val: float, low: Any, high: Any) -> Any:
    """AUTOMATIC1111's ``slerp`` of two noise tensors of one image (shape ``(C, H, W)``): the norms and the angle
    are taken along dim 1, as A1111 does. When the two are nearly parallel (mean cosine above
    :data:`PARALLEL_DOT`), a linear interpolation (``low`` at 0, ``high`` at 1; A1111's own fallback has the two
    the other way round, a slip this does not copy)."""
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > PARALLEL_DOT:
        return low * (1.0 - val) + high * val
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def varied_noise(shape: Sequence[int], generators: Sequence[Any], variation_seeds: Sequence[int], strength: float,
                 dtype: Any) -> Any:
    """The initial latents of a batch with a variation: image ``k`` is ``slerp(strength, noise from
    generators[k], noise from a fresh CPU generator seeded with variation_seeds[k])``. Both noises are drawn in
    ``dtype`` (as the pipeline draws them), mixed in float32 and given back in ``dtype``. ``generators`` advance as
    a plain run's would (their later draws are the sampler's)."""
    import torch

    base = initial_noise(shape, generators, dtype).float()
    others = initial_noise(shape, [torch.Generator("cpu").manual_seed(int(s)) for s in variation_seeds],
                           dtype).float()
    mixed = torch.stack([slerp(float(strength), base[k], others[k]) for k in range(base.shape[0])])
    return mixed.to(dtype)
