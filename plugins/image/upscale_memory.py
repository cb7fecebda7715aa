"""How much memory a model upscale needs at its peak, and the refusal of one that does not fit, before it starts.

:func:`estimate_upscale_bytes` adds up what :meth:`plugins.image.upscale.Upscaler.upscale` holds at its peak for
an ESRGAN-family network (:class:`plugins.image.rrdbnet.RRDBShape`):

* the whole picture's buffers: the input as float32 (12 bytes a pixel), the output and its blending weights as
  float32 (16 bytes an output pixel) and the 8-bit result, its contiguous copy and the PIL image (9 bytes an
  output pixel);
* one tile's activations (the network's dtype): the dense blocks' concatenated features at the network's inner
  size (``2·nf + 2·(nf + 4·gc) + nf`` channels), and the last ×2 step's three ``nf``-channel maps at the output
  size (``3·nf`` channels: the features, ``conv_hr``'s output and its activation) — the larger is the peak;
  plus the tile's output, its blending ramp and their product (float32, 20 bytes an output pixel);
* plus :data:`FIXED` bytes and times :data:`OVERHEAD` for what the count misses (convolution workspaces and
  weight copies, the allocator's slack). Measured (``benchmarks/upscale_tiles.py``'s measure: the growth of
  ``ru_maxrss`` over the loaded, warmed-up process; CPU, float32) on the demo upscaler at 512² untiled and in
  tiles of 128, and on the real ESRGAN widths (64 features, growth 32, 2 blocks) at 128² and 256² untiled, 256²
  in tiles of 128 and 192² in tiles of 64: the bare count came to 0.74–1.06 of the measured growth (small tiles
  lowest; a small-tile run's growth varies by a third between runs), and the estimate to 1.07–1.34 times it:
  e.g. 256² untiled, measured 887–927 MB, estimated 1183 MB; 192² in tiles of 64, measured 82–113 MB,
  estimated 121 MB.

:func:`check_upscale_memory` compares the estimate with the memory free for it (RAM:
:func:`desktop.api.available_ram`; a CUDA device: the tile's activations against the device's free memory too)
and raises :class:`~desktop.api.InsufficientMemoryError` naming the estimate and the largest tile that fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from desktop.api import InsufficientMemoryError, available_ram

__all__ = ["FIXED", "OVERHEAD", "TILE_CHOICES", "UpscaleEstimate", "check_upscale_memory", "estimate_upscale_bytes"]

OVERHEAD = 1.3
"""Factor over the counted bytes (see the module docstring for the measurement)."""
FIXED = 32 * 1024 * 1024
"""Bytes added to the count whatever the size (convolution workspaces and weight copies; measured)."""
TILE_CHOICES = (1024, 768, 512, 384, 256, 192, 128, 96, 64, 32)
"""Tiles the refusal may suggest, largest first."""
_HEADROOM = 0.9  # of the free memory: the rest of the process (and the system) keeps going meanwhile
_MB = 1024 * 1024


class UpscaleEstimate:
    """The peak of one upscale, split where it lives: ``host`` bytes of RAM, ``device`` bytes of accelerator
    memory (0 on the CPU, where the tile's activations are part of ``host``)."""

    def __init__(self, host: int, device: int) -> None:
        self.host, self.device = host, device

    @property
    def total(self) -> int:
        return self.host + self.device


def estimate_upscale_bytes(shape: Any, width: int, height: int, *, tile: int, overlap: int, scale: int,
                           element_size: int = 4, on_device: bool = False,
                           final_size: tuple[int, int] | None = None) -> UpscaleEstimate:
    """The estimated peak of upscaling a ``width`` × ``height`` picture with a network of ``shape`` (an
    :class:`~plugins.image.rrdbnet.RRDBShape`) ×``scale``, in tiles of ``tile`` (0: untiled) overlapping by
    ``overlap``, its activations ``element_size`` bytes an element. ``final_size``: the picture the result is
    then resized to (another image of 4 bytes a pixel). ``on_device``: the tile runs on an accelerator."""
    from plugins.image.upscale import tile_spans

    tile = tile if tile > 0 else max(width, height)
    overlap = max(0, min(overlap, tile // 2))
    tile_h = max(size for _, size in tile_spans(height, tile, overlap))
    tile_w = max(size for _, size in tile_spans(width, tile, overlap))
    out_pixels = width * height * scale * scale
    whole = 12 * width * height + (16 + 9) * out_pixels
    if final_size is not None:
        whole += 4 * final_size[0] * final_size[1]
    nf, gc, u = shape.features, shape.growth, max(1, shape.unshuffle)
    inner = math.ceil(tile_h / u) * math.ceil(tile_w / u)
    tile_out = tile_h * tile_w * scale * scale
    trunk = (2 * nf + 2 * (nf + 4 * gc) + nf) * inner
    last = 3 * nf * inner * 4 ** shape.upsamples + nf * inner * 4 ** max(0, shape.upsamples - 1)
    activations = max(trunk, last) * element_size
    tile_buffers = 20 * tile_out  # the tile's float32 output on the CPU, its ramp, their product
    if on_device:
        return UpscaleEstimate(int(OVERHEAD * (whole + tile_buffers)), int(OVERHEAD * (activations + FIXED)))
    return UpscaleEstimate(int(OVERHEAD * (whole + tile_buffers + activations + FIXED)), 0)


def check_upscale_memory(upscaler: Any, width: int, height: int, *, tile: int, overlap: Callable[[int], int],
                         field: str = "upscale_tile", final_size: tuple[int, int] | None = None,
                         free_ram: Callable[[], int | None] | None = None,
                         free_device: Callable[[str], int | None] | None = None) -> UpscaleEstimate:
    """Refuse (:class:`~desktop.api.InsufficientMemoryError`) an upscale of a ``width`` × ``height`` picture with
    the loaded ``upscaler`` in tiles of ``tile`` whose estimated peak does not fit the free memory, naming the
    estimate and a tile that fits (or saying that none does). ``overlap(tile)`` is the overlap a tile gets.
    Returns the estimate when it fits, or when the free memory is unknown."""
    free_ram = free_ram or available_ram
    free_device = free_device or _free_device_memory
    device = str(getattr(upscaler, "device", "cpu"))
    on_device = device != "cpu"

    def estimate(size: int) -> UpscaleEstimate:
        return estimate_upscale_bytes(upscaler.net.shape, width, height, tile=size, overlap=overlap(size),
                                      scale=upscaler.scale, element_size=_element_size(upscaler.net),
                                      on_device=on_device, final_size=final_size)

    ram = free_ram()
    vram = free_device(device) if on_device else None

    def fits(found: UpscaleEstimate) -> bool:
        return (ram is None or found.host <= ram * _HEADROOM) and (vram is None or found.device <= vram * _HEADROOM)

    asked = estimate(tile)
    if fits(asked):
        return asked
    where = f"{_mb(asked.host)} of RAM" + (f" and {_mb(asked.device)} on {device}" if on_device else "")
    free = " and ".join(text for text in (
        None if ram is None else f"{_mb(ram)} of RAM", None if vram is None else f"{_mb(vram)} on {device}") if text)
    tiling = f"in tiles of {tile} pixels" if 0 < tile < max(width, height) else "untiled"
    message = (f"Upscaling this {width}×{height} picture ×{upscaler.scale} {tiling} needs about {where} at its peak "
               f"(an estimate); only {free} is free.")
    smaller = [size for size in TILE_CHOICES if size < (tile if tile > 0 else max(width, height))]
    fitting = next(((size, found) for size in smaller if fits(found := estimate(size))), None)
    if fitting is not None:
        size, found = fitting
        hint = (f"Set {field} to {size} (about {_mb(found.total)} at its peak), or close other programs.")
    else:
        hint = ("Even small tiles do not fit: the whole upscaled picture must be held at once. Upscale a smaller "
                "picture, use a ×2 upscaler, or close other programs.")
    raise InsufficientMemoryError(message, hint=hint)


def _element_size(net: Any) -> int:
    try:
        return int(next(net.parameters()).element_size())
    except (StopIteration, AttributeError):
        return 4


def _free_device_memory(device: str) -> int | None:
    """Free bytes on a CUDA device (``torch.cuda.mem_get_info``), None for another or unknown device."""
    if not device.startswith("cuda"):
        return None
    try:
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    except Exception:  # no CUDA build, a device that went away: not known
        return None


def _mb(size: int) -> str:
    return f"{size / 1024 ** 3:.1f} GB" if size >= 1024 ** 3 else f"{max(1, round(size / _MB))} MB"
