"""The image generator's interpolation frames (``Generator.interpolation_frames``): between two seeds and/or two
prompts, every frame an ordinary txt2img job that its own params reproduce.

Frame ``k`` of ``n`` is at ``t = k / (n - 1)``. The first frame is the start job as it is and the last the end job
as it is (so the ends are the single runs, bit for bit). A frame in between runs with the start's seed and:

* when the seeds differ, ``variation_seed`` = the end's seed and ``variation_strength`` = ``t``: its starting
  noise is the spherical interpolation of the two seeds' noise (:mod:`plugins.image.noise`);
* when the prompts differ, ``prompt_to`` = the end's prompt and ``prompt_mix`` = ``t``: its prompt embeddings are
  the linear interpolation of the two prompts' embeddings.

Everything else must be the same at both ends: a different size (or any other field) is refused with a
:class:`ParamError` naming the field, as are batches (a frame is one image), variations and prompt mixes already
set (the interpolation sets them), and seed interpolation outside txt2img (variations are txt2img's).
"""

from __future__ import annotations

from dataclasses import fields, replace

from desktop.api import ParamError, validate
from plugins.image.params import ImageParams

__all__ = ["MIN_FRAMES", "interpolation_frames"]

MIN_FRAMES = 2
"""An interpolation has its two ends at least."""
_INTERPOLATED = ("prompt",)
_SET_HERE = ("variation_seed", "variation_strength", "prompt_to", "prompt_mix")


def interpolation_frames(start: ImageParams, end: ImageParams, start_seed: int, end_seed: int,
                         frames: int) -> list[tuple[ImageParams, int]]:
    """``(params, seed)`` of each of ``frames`` frames from ``(start, start_seed)`` to ``(end, end_seed)``."""
    if not isinstance(frames, int) or frames < MIN_FRAMES:
        raise ParamError("frames", frames, f"an interpolation has at least {MIN_FRAMES} frames")
    start, end = validate(start, ImageParams), validate(end, ImageParams)
    _check_ends(start, end, start_seed != end_seed)
    seeds_differ, prompts_differ = start_seed != end_seed, start.prompt != end.prompt
    result = [(start, start_seed)]
    for k in range(1, frames - 1):
        t = k / (frames - 1)
        params = start
        if seeds_differ:
            params = replace(params, variation_seed=end_seed, variation_strength=t)
        if prompts_differ:
            params = replace(params, prompt_to=end.prompt, prompt_mix=t)
        result.append((params, start_seed))
    result.append((end, end_seed))
    return result


def _check_ends(start: ImageParams, end: ImageParams, seeds_differ: bool) -> None:
    for name in ("width", "height"):  # the common mistake first, in words of its own
        if getattr(start, name) != getattr(end, name):
            raise ParamError(name, getattr(end, name),
                             f"both ends of an interpolation must be the same size ({start.width}×{start.height} "
                             f"at the start, {end.width}×{end.height} at the end)",
                             hint="Give both ends the same width and height.")
    for params, which in ((start, "start"), (end, "end")):
        if params.batch_size != 1 or params.batch_count != 1:
            field = "batch_size" if params.batch_size != 1 else "batch_count"
            raise ParamError(field, getattr(params, field), f"an interpolation frame is one image (at the {which})",
                             hint="Use a batch size and count of 1.")
        if (params.variation_seed is not None and params.variation_strength > 0) or (
                params.prompt_to and params.prompt_mix > 0):
            field = "variation_seed" if params.variation_seed is not None and params.variation_strength > 0 \
                else "prompt_to"
            raise ParamError(field, getattr(params, field),
                             f"the interpolation sets the variation and the prompt mix itself (the {which} has one)",
                             hint="Clear the variation seed and the second prompt of both ends.")
    for field in fields(ImageParams):
        name = field.name
        if name in _INTERPOLATED or name in _SET_HERE:
            continue
        if getattr(start, name) != getattr(end, name):
            raise ParamError(name, getattr(end, name),
                             f"only the seed and the prompt can change along an interpolation; the start's {name} "
                             f"is {getattr(start, name)!r}",
                             hint=f"Give both ends the same {name}.")
    if seeds_differ and start.mode != "txt2img":
        raise ParamError("mode", start.mode, "seeds are interpolated in txt2img only",
                         hint="Use txt2img, or the same seed at both ends (prompts only).")
