"""Hires fix (AUTOMATIC1111's): a txt2img picture made larger, then refined by an img2img pass at the larger size.

One job, as in A1111: the txt2img pass at ``width`` × ``height``; the result made ``hires_scale`` times larger,
either

* ``hires_upscaler="latent"`` (A1111's "Latent"): the pass returns its latents (``output_type="latent"``, no
  decode) and they are resized with ``torch.nn.functional.interpolate(mode="bilinear", antialias=False)``, as
  A1111's "Latent" upscaler does; the img2img pass takes them as its ``image`` (diffusers uses a 4-channel
  ``image`` as the starting latents as they are), or
* an upscaler model (an ESRGAN-family ``.safetensors`` file, or ``demo``; :mod:`plugins.image.upscale`, run in
  tiles of ``upscale_tile`` pixels): the pass's decoded picture upscaled, then resized (Lanczos) to the target
  size when the model's own scale differs;

then the img2img pass with ``hires_steps`` steps (0: the job's ``steps``) and ``strength=hires_denoise``, which
runs ``int(hires_steps × hires_denoise)`` of them (diffusers' rule, and A1111's by default).

Seeds: each pass gets a fresh CPU ``torch.Generator`` per image seeded with that image's seed, so the job makes
the pixels of the direct chain ``txt2img(..., generator=torch.Generator().manual_seed(seed))`` → upscale →
``img2img(..., generator=torch.Generator().manual_seed(seed))`` (``tests/test_image_hires.py`` checks both
upscaler kinds bit for bit). The img2img pass's scheduler is a fresh one built from the txt2img pass's config.

Progress: one bar over both passes (``steps`` + the second pass's steps per run); previews in both passes; a
cancel lands within a step of either pass (or between the upscaler's tiles) without decoding the unfinished
picture. The final size must be a multiple of 8 and at most 2048 a side; a mistake is named before any step.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

from desktop.api import ParamError, RunContext

__all__ = ["HiresPlan", "LATENT", "MAX_SIDE", "hires_plan", "run_hires"]

LATENT = "latent"
"""``hires_upscaler`` value for resizing the latents (A1111's "Latent": bilinear, no antialiasing)."""
MAX_SIDE = 2048
_OFF_HINT = "Set hires_scale to 1 (off)."


@dataclass(frozen=True)
class HiresPlan:
    """A hires-fix job checked and sized: the final size, the second pass's steps (asked and run) and upscaler."""

    width: int
    height: int
    steps: int  # the img2img pass's num_inference_steps
    steps_run: int  # how many of them run: int(steps × denoise)
    denoise: float
    upscaler: str  # LATENT, or an upscaler file / "demo"

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def hires_plan(params: Any) -> HiresPlan | None:
    """The hires-fix plan of ``params``, or None when ``hires_scale`` is 1 (off). :class:`ParamError` naming the
    field when hires fix cannot run: another mode than txt2img, a final size that is not a
    multiple of 8 or over :data:`MAX_SIDE`, a denoise too low for any step, no upscaler."""
    scale = float(params.hires_scale)
    if scale <= 1:
        return None
    if params.mode != "txt2img":
        raise ParamError("hires_scale", scale, f"hires fix works in txt2img only, not in {params.mode}",
                         hint=_OFF_HINT + " Or use txt2img.")
    width, height = int(params.width * scale), int(params.height * scale)
    if width % 8 or height % 8 or max(width, height) > MAX_SIDE:
        raise ParamError("hires_scale", scale, f"the final size {width}x{height} must be a multiple of 8 and at "
                                               f"most {MAX_SIDE} a side",
                         hint="Choose a scale that gives such a size (e.g. 1.5 or 2), or a smaller width/height.")
    steps = int(params.hires_steps) or int(params.steps)
    steps_run = min(int(steps * float(params.hires_denoise)), steps)
    if steps_run < 1:
        raise ParamError("hires_denoise", params.hires_denoise,
                         f"too low for {steps} hires steps (no step would run): use at least {1 / steps:.2f}, "
                         "or more hires steps")
    upscaler = str(params.hires_upscaler).strip()
    if not upscaler:
        raise ParamError("hires_upscaler", params.hires_upscaler, "hires fix needs an upscaler",
                         hint="'latent', an ESRGAN-family .safetensors file, or 'demo'.")
    return HiresPlan(width, height, steps, steps_run, float(params.hires_denoise),
                     LATENT if upscaler.lower() == LATENT else upscaler)


def run_hires(handle: Any, pipe: Any, plan: HiresPlan, params: Any, kwargs: dict[str, Any], extra: dict[str, Any],
              seeds: list[int], reporter: Any, ctx: RunContext) -> Any:
    """Both passes of one run (one batch of ``len(seeds)`` images); returns the img2img pass's pipeline output.

    ``kwargs``/``extra`` are the txt2img call's arguments, ``reporter`` the run's step reporter (the generator's
    ``_StepReporter``), copied here into one per pass counting along one bar."""
    import torch

    def generator() -> Any:
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        return generators[0] if len(generators) == 1 else generators

    upscaler = None if plan.upscaler == LATENT else _load_upscaler(plan.upscaler, handle, ctx)  # before any step
    if upscaler is not None:  # an upscale that cannot fit memory is refused before the first pass
        from plugins.image.upscale_memory import check_upscale_memory
        from plugins.image.upscale_mode import tile_overlap

        check_upscale_memory(upscaler, int(params.width), int(params.height), tile=int(params.upscale_tile),
                             overlap=tile_overlap, final_size=plan.size)
    first = copy.copy(reporter)
    first.per_run = int(params.steps) + plan.steps_run
    second = copy.copy(first)
    second.done_before, second.size = int(params.steps), plan.size
    output_type = {"output_type": "latent"} if plan.upscaler == LATENT else {}
    images = pipe(**kwargs, **extra, **output_type, generator=generator(), callback_on_step_end=first).images
    ctx.raise_if_cancelled(partial=list(reporter.finished))
    if plan.upscaler == LATENT:
        larger = upscale_latents(images, plan.size, pipe.vae_scale_factor)
    else:
        larger = _model_upscaled(upscaler, images, plan, params, ctx, list(reporter.finished))
    refine, control = _refine_pipeline(handle, params, plan, ctx)
    refine.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    return refine(**second_pass_kwargs(refine, kwargs, plan, larger, control), generator=generator(),
                  callback_on_step_end=second)


def _refine_pipeline(handle: Any, params: Any, plan: HiresPlan, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
    """The second pass's pipeline and its ControlNet arguments: plain img2img, or with ControlNet units the
    ControlNet img2img pipeline with each control image brought to the final size (as sd-webui-controlnet does
    in the hires pass; the resize note was given for the first pass already)."""
    if not params.controlnets:
        return handle.pipeline("img2img"), {}
    import dataclasses

    from plugins.image.controlnet import prepare_control

    larger = dataclasses.replace(params, width=plan.width, height=plan.height)
    control = prepare_control(handle, larger, "img2img", _WithoutNotes(ctx))
    if control is None:  # every unit of weight 0
        return handle.pipeline("img2img"), {}
    return control.pipe, control.kwargs


class _WithoutNotes:
    """``ctx`` without ``warn``: the control images' resize notes, already given for the first pass."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx

    def warn(self, message: str) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def upscale_latents(latents: Any, size: tuple[int, int], vae_scale_factor: int) -> Any:
    """``latents`` resized to the latents of a ``size`` (width, height) picture: A1111's "Latent" (bilinear)."""
    import torch

    width, height = size
    return torch.nn.functional.interpolate(latents, size=(height // vae_scale_factor, width // vae_scale_factor),
                                           mode="bilinear", antialias=False)


def second_pass_kwargs(refine: Any, kwargs: dict[str, Any], plan: HiresPlan, image: Any,
                       control: dict[str, Any] | None = None) -> dict[str, Any]:
    """The img2img pass's arguments: the txt2img call's prompts and guidance, the larger ``image``, the hires steps
    and denoise, and ``control`` (the ControlNet units' arguments at the final size), only those the pipeline
    takes. (A ControlNet txt2img call's ``image`` is its control image: replaced here by the larger picture.)"""
    wanted = {key: value for key, value in kwargs.items() if key not in ("width", "height", "num_inference_steps")}
    wanted.update(image=image, strength=plan.denoise, num_inference_steps=plan.steps)
    wanted.update(control or {})
    accepted = inspect.signature(type(refine).__call__).parameters
    return {key: value for key, value in wanted.items() if key in accepted}


def _load_upscaler(ref: str, handle: Any, ctx: Any = None) -> Any:
    """The upscaler model ``ref`` names, loaded as the upscale mode loads it (the last one stays loaded)."""
    from plugins.image.upscale_mode import _upscaler

    try:
        return _upscaler(ref, allow_pickle=handle.allow_pickle, device=handle.device, ctx=ctx)
    except ParamError as exc:  # the upscale mode's field is "upscaler": name this one
        raise ParamError("hires_upscaler", ref, exc.allowed, hint=exc.hint) from None


def _model_upscaled(upscaler: Any, images: list[Any], plan: HiresPlan, params: Any, ctx: RunContext,
                    finished: list[Any]) -> list[Any]:
    """The decoded pictures made larger by the upscaler model and brought to the plan's size (Lanczos)."""
    from PIL import Image

    from plugins.image.upscale_mode import tile_overlap

    def step(done: int, total: int) -> None:
        ctx.raise_if_cancelled(partial=finished)

    tile = int(params.upscale_tile)
    larger = []
    for image in images:
        upscaled = upscaler.upscale(image, tile=tile, overlap=tile_overlap(tile), step=step)
        if upscaled.size != plan.size:
            upscaled = upscaled.resize(plan.size, Image.Resampling.LANCZOS)
        larger.append(upscaled)
    return larger


def a1111_hires(params: Any) -> list[tuple[str, str | None]]:
    """A1111's hires-fix settings for the ``parameters`` line (none when off), as A1111 writes them:
    ``Denoising strength: 0.5, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent`` (steps only when set)."""
    if getattr(params, "mode", None) != "txt2img" or float(getattr(params, "hires_scale", 1)) <= 1:
        return []
    upscaler = str(params.hires_upscaler).strip()
    name = "Latent" if upscaler.lower() == LATENT else _upscaler_name(upscaler)
    return [("Denoising strength", _number(params.hires_denoise)), ("Hires upscale", _number(params.hires_scale)),
            ("Hires steps", str(params.hires_steps) if params.hires_steps else None), ("Hires upscaler", name)]


def hires_values(settings: dict[str, str]) -> dict[str, str]:
    """Params values (as text, checked by the caller) from A1111 settings holding ``Hires upscale``: its
    ``Denoising strength`` is then the hires pass's. Empty without ``Hires upscale``."""
    if "Hires upscale" not in settings:
        return {}
    values = {"hires_scale": settings["Hires upscale"]}
    if "Hires steps" in settings:
        values["hires_steps"] = settings["Hires steps"]
    if "Denoising strength" in settings:
        values["hires_denoise"] = settings["Denoising strength"]
    upscaler = settings.get("Hires upscaler", "").strip()
    if upscaler:  # A1111's "Latent (bicubic)" etc. are all latent resizes here; another name: an upscaler file
        values["hires_upscaler"] = LATENT if upscaler.lower().startswith(LATENT) else upscaler
    return values


def _upscaler_name(ref: str) -> str:
    """How an upscaler is named in A1111's text: ``demo``, or the file's name without its folder and suffix."""
    from pathlib import PurePath

    return ref if ref == "demo" else PurePath(ref).stem or ref


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
