"""The image generator's ``upscale`` mode: the init image made larger by an upscaler model, tile by tile.

No diffusion runs: the job loads the upscaler named by ``params.upscaler`` (:func:`plugins.image.upscale.
load_upscaler`; the last one stays loaded for the next job), runs it in tiles of ``params.upscale_tile`` pixels,
reports progress per tile and ends between tiles when cancelled (nothing is delivered: a half-upscaled picture is
no picture). ``params.upscale_by`` (when not 0) resizes the result to that multiple of the init image (Lanczos), as
A1111's Extras tab does with a model of another scale. An upscale whose estimated peak memory does not fit the free
memory is refused before the first tile (:mod:`plugins.image.upscale_memory`), naming the estimate and a tile that
fits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import ImageOutput, ModelNotFoundError, ParamError, RunContext

__all__ = ["final_size", "run_upscale", "tile_overlap"]

_LOADED: dict[tuple[Any, ...], Any] = {}


def tile_overlap(tile: int) -> int:
    """How many pixels neighbouring tiles share (blended): 32, or a quarter of a smaller tile."""
    return min(32, tile // 4)


def final_size(size: tuple[int, int], upscale_by: float, scale: int) -> tuple[int, int]:
    """The picture's size after upscaling ``size`` by ``upscale_by`` (0: the model's own ``scale``)."""
    factor = upscale_by if upscale_by > 0 else scale
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def run_upscale(params: Any, image: Any, ctx: RunContext, *, allow_pickle: bool, device: str) -> list[ImageOutput]:
    """``image`` (PIL, the opened init image) upscaled with ``params.upscaler``: one output, its metadata naming
    the upscaler and its scale."""
    upscaler = _upscaler(params.upscaler, allow_pickle=allow_pickle, device=device, ctx=ctx)

    def step(done: int, total: int) -> None:
        ctx.raise_if_cancelled()
        ctx.progress(done, total, f"Upscaling: tile {done} of {total}" if done else "Upscaling")
        ctx.raise_if_cancelled()

    tile = params.upscale_tile
    final = final_size(image.size, float(getattr(params, "upscale_by", 0) or 0), upscaler.scale)
    from plugins.image.upscale_memory import check_upscale_memory

    check_upscale_memory(upscaler, image.width, image.height, tile=tile, overlap=tile_overlap,  # before any tile
                         final_size=None if final == (image.width * upscaler.scale, image.height * upscaler.scale)
                         else final)
    result = upscaler.upscale(image, tile=tile, overlap=tile_overlap(tile), step=step)
    if result.size != final:  # "upscale by" another factor than the model's: resized as A1111's Extras does
        from PIL import Image

        result = result.resize(final, Image.Resampling.LANCZOS)
    metadata = {"seed": ctx.seed, "batch_index": 0, "mode": "upscale", "upscaler": upscaler.source.name,
                "upscale_scale": upscaler.scale}
    if getattr(ctx, "watermark", False):  # the invisible watermark, when on (plugins/image/watermark.py)
        from plugins.image.watermark import mark_output

        result = mark_output(result, metadata, ctx)
    return [ImageOutput(image=result, metadata=metadata)]


def _upscaler(ref: str, *, allow_pickle: bool, device: str, ctx: Any = None) -> Any:
    """The upscaler ``ref`` names, loaded (the one loaded last is kept while its file is unchanged). In a job
    (``ctx``) the reference goes through the model store (an imported name, a downloaded hub file, ``demo``)."""
    from plugins.image.upscale import demo_upscaler_path, load_upscaler

    if not ref.strip():
        raise ParamError("upscaler", ref, "upscale mode needs an upscaler model",
                         hint="Give an ESRGAN-family .safetensors file (ESRGAN, Real-ESRGAN, 4x-UltraSharp…), or "
                              "'demo'.")
    if getattr(ctx, "addon_model", None) is not None:
        from plugins.image.addons import UPSCALER, local_ref

        try:
            path = Path(local_ref(ctx, UPSCALER, ref.strip(), allow_pickle=allow_pickle))
        except ModelNotFoundError as exc:
            raise ParamError("upscaler", ref, exc.message.rstrip("."), hint=exc.hint) from None
    else:
        path = demo_upscaler_path() if ref.strip() == "demo" else Path(ref).expanduser()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise ParamError("upscaler", ref, "no such upscaler file",
                         hint="Check the path, or give 'demo' for the tiny demo upscaler.") from None
    key = (str(path), stamp, allow_pickle, device)
    if key not in _LOADED:
        try:
            loaded = load_upscaler(path, allow_pickle=allow_pickle, device=device)
        except ModelNotFoundError as exc:  # removed since the stat above
            raise ParamError("upscaler", ref, "no such upscaler file") from exc
        _LOADED.clear()
        _LOADED[key] = loaded
    return _LOADED[key]
