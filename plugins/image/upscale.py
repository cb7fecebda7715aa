"""Model upscaling of finished pictures: an ESRGAN-family upscaler run in overlapping, blended tiles.

:func:`load_upscaler` opens an upscaler file under the host's rules (``.safetensors``, checked; a pickle file
such as ``.pth`` only when the user allows pickles, else the host's :func:`~desktop.api.pickle_refused` error) and
reads the network and its scale from the weights (:mod:`plugins.image.rrdbnet`). :meth:`Upscaler.upscale` runs
it on a PIL image in tiles of ``tile`` × ``tile`` input pixels that overlap by ``overlap`` pixels; where tiles
overlap their outputs are mixed with linear ramps, so no seam shows, and only one tile's activations are in
memory at a time (``benchmarks/upscale_tiles.py`` measures the peak). ``step(done, total)`` is called before
the first tile and after each one: the caller reports progress there and ends the job (raises
:class:`~desktop.api.JobCancelled`) between tiles.

Tiled and untiled results differ only where a tile's edge cuts the network's view; on the demo upscaler, tiles
of 32 with an overlap of 16 differ from an untiled run by at most 8 levels of 255, along the seams
(``tests/test_image_upscale.py`` states the measurement and its tolerance).

torch is imported only inside the functions the worker calls.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import ModelFormatError, check_model_files, is_pickle, pickle_refused

__all__ = ["Upscaler", "load_upscaler", "demo_upscaler_path", "tile_spans"]

Step = Callable[[int, int], None]
"""``step(done, total)``: called before the first tile (done 0) and after each tile; may raise to stop."""

_DEMO: dict[str, Path] = {}
_DEMO_DIR: list[tempfile.TemporaryDirectory[str]] = []


@dataclass
class Upscaler:
    """A loaded upscaler: the network (eval mode, on ``device``), its scale and where it came from."""

    net: Any
    scale: int
    source: Path
    device: str = "cpu"

    def upscale(self, image: Any, *, tile: int = 512, overlap: int = 32, step: Step | None = None) -> Any:
        """``image`` (PIL) ``scale`` times larger along each side, as a new PIL image (RGB; an alpha channel is
        kept, resized with Lanczos). ``tile`` 0 runs the whole picture at once."""
        import torch
        from PIL import Image

        rgb = image.convert("RGB")
        pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
        x = pixels.view(rgb.height, rgb.width, 3).permute(2, 0, 1).unsqueeze(0).float().div_(255)
        with torch.inference_mode():
            out = self.run_tiled(x, tile=tile, overlap=overlap, step=step)
            data = out.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        result = Image.fromarray(data, "RGB")
        if "A" in image.getbands():
            alpha = image.getchannel("A").resize(result.size, Image.Resampling.LANCZOS)
            result.putalpha(alpha)
        return result

    def run_tiled(self, x: Any, *, tile: int, overlap: int, step: Step | None = None) -> Any:
        """The network on the image tensor ``x`` (1×3×H×W, 0–1) in blended tiles; a 3×(H·s)×(W·s) float tensor."""
        import torch

        _, _, height, width = x.shape
        tile = tile if tile > 0 else max(height, width)
        overlap = max(0, min(overlap, tile // 2))
        ys, xs = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
        total, s = len(ys) * len(xs), self.scale
        out = torch.zeros(3, height * s, width * s)
        weight = torch.zeros(1, height * s, width * s)
        if step is not None:
            step(0, total)
        for done, ((y0, th), (x0, tw)) in enumerate(((y, x_) for y in ys for x_ in xs), start=1):
            patch = x[:, :, y0:y0 + th, x0:x0 + tw].to(self.device, _dtype(self.net))
            result = self.net(patch)[0, :3].float().cpu()
            ramp = _ramp(th * s, overlap * s, y0 > 0, y0 + th < height)[:, None] * \
                _ramp(tw * s, overlap * s, x0 > 0, x0 + tw < width)[None, :]
            area = (slice(None), slice(y0 * s, (y0 + th) * s), slice(x0 * s, (x0 + tw) * s))
            out[area] += result * ramp
            weight[area] += ramp
            if step is not None:
                step(done, total)
        return out.div_(weight)


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, size)`` of the tiles along a side of ``length`` pixels: as few as fit with tiles of at most
    ``tile`` pixels overlapping by at least ``overlap``, all of one size (shrunk to share the side evenly: no
    last tile lying almost wholly over its neighbour), the first at 0 and the last ending at the edge."""
    if length <= tile:
        return [(0, length)]
    overlap = min(overlap, tile - 1)
    count = math.ceil((length - overlap) / (tile - overlap))
    size = min(tile, math.ceil((length + (count - 1) * overlap) / count))
    return [(round(k * (length - size) / (count - 1)), size) for k in range(count)]


def _ramp(length: int, overlap: int, before: bool, after: bool) -> Any:
    """Weights along one side of a tile: 1 inside, rising linearly (never to 0) across ``overlap`` pixels at a side
    another tile overlaps."""
    import torch

    ramp = torch.ones(length)
    if overlap > 0:
        rise = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
        n = min(overlap, length)
        if before:
            ramp[:n] = torch.minimum(ramp[:n], rise[:n])
        if after:
            ramp[length - n:] = torch.minimum(ramp[length - n:], rise[:n].flip(0))
    return ramp


def _dtype(net: Any) -> Any:
    return next(net.parameters()).dtype


def load_upscaler(path: Path, *, allow_pickle: bool = False, device: str = "cpu") -> Upscaler:
    """The ESRGAN-family upscaler in the file ``path`` (``"demo"``: the tiny demo one). A pickle file is refused
    unless ``allow_pickle``; a file that is no upscaler raises :class:`~desktop.api.ModelFormatError` saying so."""
    if str(path) == "demo":
        path = demo_upscaler_path()
    path = Path(path).expanduser()
    if is_pickle(path) and not allow_pickle:  # refused before the file is even looked at
        raise pickle_refused(path)
    check_model_files(path, allow_pickle=allow_pickle)  # missing, not a file, a corrupt safetensors
    if path.is_dir():
        raise ModelFormatError(f"{path} is a folder; an upscaler is one .safetensors file.",
                               hint="Choose the upscaler's .safetensors file (an ESRGAN / Real-ESRGAN model).")
    state = _read_state(path)
    from plugins.image.rrdbnet import NotRRDBNet, read_rrdbnet

    try:
        net = read_rrdbnet(state)
    except NotRRDBNet as exc:
        raise ModelFormatError(f"{path.name} is not an upscaler model Studiolo can use: {exc}.",
                               hint="Choose an ESRGAN-family upscaler (ESRGAN, Real-ESRGAN, 4x-UltraSharp…) "
                                    "saved as .safetensors.") from None
    return Upscaler(net=net.to(device), scale=net.shape.scale, source=path, device=device)


def _read_state(path: Path) -> dict[str, Any]:
    """The tensors in ``path`` (safetensors, or an allowed pickle read with ``weights_only``)."""
    import torch

    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure is a file that cannot be used
        raise ModelFormatError(f"Cannot read the upscaler {path.name}: {str(exc).splitlines()[0] if str(exc) else exc}",
                               hint="Download or export the model again.") from None
    for key in ("params_ema", "params", "state_dict"):  # BasicSR and Lightning wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFormatError(f"{path.name} holds no table of weights.", hint="Choose an upscaler model file.")
    return state


def demo_upscaler_path() -> Path:
    """The tiny demo upscaler, built once per process into a temporary folder (random weights, a few KB)."""
    if "path" not in _DEMO:
        from plugins.image.demo import build_tiny_upscaler

        _DEMO_DIR.append(tempfile.TemporaryDirectory(prefix="studiolo-upscaler-"))
        _DEMO["path"] = build_tiny_upscaler(Path(_DEMO_DIR[0].name) / "demo-esrgan-x4.safetensors")
    return _DEMO["path"]
