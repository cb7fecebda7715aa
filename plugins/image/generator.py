"""``image.diffusers``: Stable Diffusion (1.x, 2.x, SDXL, Turbo) through diffusers.

One loaded model serves three modes — txt2img, img2img and inpaint (the last two are built from the first with
``from_pipe``, sharing its weights) — with a choice of schedulers, LoRAs applied and removed in place, batches
whose every image has its own recorded seed, a cheap latent preview every N steps, and a cancel that lands within
a step without decoding the unfinished image.

Variations and interpolation: a variation seed and strength mix the starting noise of a second seed into the
seed's (AUTOMATIC1111's variation seed; txt2img only; :mod:`plugins.image.noise`), a second prompt and a mix mix
the prompts' embeddings; :meth:`DiffusersImageGenerator.interpolation_frames` builds interpolations on both.

Upscaling (mode ``upscale``): the init image made larger by an ESRGAN-family upscaler run in blended tiles, no
diffusion (:mod:`plugins.image.upscale_mode`, :mod:`plugins.image.upscale`).

Outpainting (mode ``outpaint``): the init image extended on its sides, the new area painted by one inpaint pass,
the original laid back over it (:mod:`plugins.image.outpaint`).

Hires fix (txt2img, ``hires_scale`` > 1): the picture made larger (its latents resized, or decoded and run through
an upscaler model), then an img2img pass at that size; one progress bar, cancel within a step of either pass
(:mod:`plugins.image.hires`, which also states the seeds of both passes).

ControlNet: up to three units (``controlnets``) run the ControlNet pipeline of the mode, built from the loaded model
with ``from_pipe`` (:mod:`plugins.image.controlnet`; the canny preprocessor: :mod:`plugins.image.preprocess`).

IP-Adapter (``ip_adapter``, an image prompt): put on the shared UNet for the job and taken off after it, kept
loaded on the handle in between (:mod:`plugins.image.ip_adapter`).

Reproducibility: image ``k`` of a job (counting across the whole batch) is drawn from its own CPU
``torch.Generator`` seeded with ``ctx.seed + k``. The same model, parameters, seed and batch shape give
bit-identical pixels, run after run, and the same as calling the diffusers pipeline directly with those generators
and arguments. Image ``k`` of a batch is the picture a single run with seed ``ctx.seed + k`` makes, but not always
bit for bit: a batch (or another thread count or device) orders the floating-point sums differently, and a few
values round to the neighbouring level — measured on the tiny test model: 1 level, at most 6 of 12,288 values
(``tests/test_image_generator.py`` states the measurement and the tolerance its tests allow).

torch and diffusers are imported only inside the methods the worker thread calls.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from desktop.api import (
    Generator,
    ImageOutput,
    JobCancelled,
    LoadOptions,
    ModelNotFoundError,
    ParamError,
    RecommendedModel,
    RunContext,
)
from plugins.image.addons import ADDON_KINDS
from plugins.image.params import ImageParams
from plugins.image.training import LORA_TRAINING

__all__ = ["DiffusersImageGenerator", "SCHEDULERS"]

SCHEDULERS = {
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",  # DPM++ 2M: its defaults are dpmsolver++, order 2
    "ddim": "DDIMScheduler",
    "unipc": "UniPCMultistepScheduler",
}
"""Scheduler names (``ImageParams.scheduler``) → diffusers classes; ``default`` keeps the model's own."""

_GB = 1_000_000_000


class DiffusersImageGenerator(Generator):
    """Stable Diffusion image generation with diffusers."""

    id = "image.diffusers"
    name = "Image (Stable Diffusion)"
    kind = "image"
    version = "0.1.0"
    description = "Pictures from a text prompt, or changes to a picture, with Stable Diffusion models."
    Params = ImageParams
    default_model = "demo"
    devices = ("cuda", "mps", "cpu")
    preload_modules = ("torch", "diffusers")
    input_modes = {"img2img": "Image-to-image", "inpaint": "Inpaint",  # "Use as input" (the refinement loop)
                   "upscale": "Upscale"}
    addon_kinds = ADDON_KINDS  # ControlNets, upscalers, IP-Adapters, depth estimators, LoRAs (plugins/image/addons.py)
    training_kinds = (LORA_TRAINING,)  # a LoRA from your pictures (plugins/image/training.py)
    # Sizes: the diffusers-format float32 weights, written by hand (the hub was not reachable); approximate.
    recommended_models = (
        RecommendedModel("stabilityai/sd-turbo", "SD-Turbo",
                         "Fast 512×512 pictures in 1–4 steps (use guidance 0). A distilled Stable Diffusion 2.1.",
                         size_bytes=int(5.2 * _GB), size_checked="2026-11",
                         license="Stability AI Community License"),
        RecommendedModel("stabilityai/sdxl-turbo", "SDXL-Turbo",
                         "Fast 512×512 pictures in 1–4 steps (use guidance 0), sharper than SD-Turbo. Needs more "
                         "memory.", size_bytes=int(13.9 * _GB), size_checked="2026-11",
                         license="Stability AI Community License"),
        RecommendedModel("stable-diffusion-v1-5/stable-diffusion-v1-5", "Stable Diffusion 1.5",
                         "The classic 512×512 model (20–50 steps); most LoRAs are made for it.",
                         size_bytes=int(5.5 * _GB), size_checked="2026-11", license="CreativeML OpenRAIL-M"),
        RecommendedModel("stabilityai/stable-diffusion-xl-base-1.0", "Stable Diffusion XL 1.0",
                         "High quality 1024×1024 pictures (25–40 steps); a GPU with 8 GB or more is advised.",
                         size_bytes=int(13.9 * _GB), size_checked="2026-11", license="CreativeML OpenRAIL++-M"),
    )

    # -- models ------------------------------------------------------------------------------------------

    def build_demo_model(self, dest: Path) -> None:
        """A tiny SD 1.x pipeline with random weights (about 8 MB, a second or two, offline)."""
        from plugins.image.demo import build_tiny_sd

        build_tiny_sd(dest)

    def build_addon_demo(self, kind: str, dest: Path) -> None:
        """The tiny demo ControlNet, upscaler, IP-Adapter or depth estimator (seconds, offline)."""
        from plugins.image.addons import build_addon_demo

        build_addon_demo(kind, dest)

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> Any:
        """Load a diffusers folder or a single ``.safetensors`` checkpoint (see :mod:`plugins.image.pipelines`)."""
        from plugins.image.pipelines import load_model

        if model_path is None:
            raise ModelNotFoundError("No model was given.", hint="Choose a Stable Diffusion model, or 'demo'.")
        return load_model(model_path, device, options)

    def train(self, model_path: Path | None, device: str, kind: str, params: Any, ctx: Any) -> Any:
        """Train a LoRA from pictures (kind ``lora``) on the SD 1.x/2.x model at ``model_path``; its own copy of
        the model, freed at the end (:mod:`plugins.image.training`)."""
        from plugins.image.training import train_lora

        if kind != LORA_TRAINING.id:
            raise ParamError("kind", kind, f"the image generator trains: {LORA_TRAINING.id}")
        return train_lora(model_path, device, params, ctx)

    def handle_size(self, handle: Any) -> int | None:
        return handle.size_bytes()

    def unload(self, handle: Any) -> None:
        handle.release()

    # -- jobs ----------------------------------------------------------------------------------------------

    def generate(self, handle: Any, params: ImageParams, ctx: RunContext) -> list[ImageOutput]:
        """Run ``batch_count`` runs of ``batch_size`` images; see the module docstring for seeds and cancel."""
        import torch

        for note in handle.notes:
            ctx.warn(note)
        hires = _hires(params)  # None unless hires_scale > 1 (txt2img only: named here, before any step)
        if params.mode == "upscale":  # a finished picture made larger: no diffusion (plugins/image/upscale_mode.py)
            from plugins.image.upscale_mode import run_upscale

            image = _open_image(params.init_image, "init_image", params.mode, None, "RGB")
            return run_upscale(params, image, ctx, allow_pickle=handle.allow_pickle, device=handle.device)
        if params.mode == "control_map":  # the first ControlNet unit's map alone (plugins/image/control_map.py)
            from plugins.image.control_map import run_control_map

            return run_control_map(params, ctx)
        if handle.inpainting_only and params.mode not in ("inpaint", "outpaint"):
            raise ParamError("mode", params.mode, "this is an inpainting model: use inpaint, with an init image and "
                                                  "a mask")
        varies = _check_variation(params)
        outpaint = _outpaint(params, ctx.seed)  # None unless mode is outpaint
        if outpaint is not None:
            params = outpaint.params  # an inpaint pass over the bigger canvas, at its size
        inputs = {**_mode_inputs(params), **(outpaint.inputs if outpaint is not None else {})}
        pipe = handle.pipeline("inpaint" if outpaint is not None else params.mode)
        control = _control(handle, params, "inpaint" if outpaint is not None else params.mode, ctx)
        pipe = control.pipe if control is not None else pipe
        _use_scheduler(pipe, handle.original_scheduler, params.scheduler)
        recorded = {"dtype": str(pipe.dtype).removeprefix("torch."), "scheduler": type(pipe.scheduler).__name__,
                    "scheduler_config": json.loads(json.dumps(dict(pipe.scheduler.config), default=str))}  # reproduce
        from plugins.image.lora_names import resolve_lora_names  # a LoRA given by its name in the model store

        loras = resolve_lora_names(list(params.loras), ctx, allow_pickle=handle.allow_pickle)
        handle.loras.apply(handle.pipe, loras, allow_pickle=handle.allow_pickle)
        _warn_long_prompts(pipe, params, ctx)
        kwargs = _call_kwargs(pipe, params, inputs)
        if params.prompt_to and params.prompt_mix > 0:
            kwargs = _mixed_prompt_kwargs(pipe, params, kwargs)
        if control is not None:
            kwargs.update(control.kwargs)  # control images, weights, start/end of each ControlNet unit
        kwargs.update(_ip_adapter(handle, params, pipe, ctx))  # the IP-Adapter's reference picture (none: adapter off)
        outputs: list[ImageOutput] = []
        size = params.batch_size
        for run in range(params.batch_count):
            ctx.raise_if_cancelled(partial=outputs)
            seeds = [ctx.seed + run * size + k for k in range(size)]
            variation_seeds = [params.variation_seed + run * size + k for k in range(size)] if varies else []
            noise_seeds = variation_seeds if varies and params.variation_strength >= 1 else seeds
            generators = [torch.Generator("cpu").manual_seed(seed) for seed in noise_seeds]
            extra: dict[str, Any] = {}
            if varies and params.variation_strength < 1:  # strength 1 is the variation seed's own run
                from plugins.image.noise import latent_shape, varied_noise

                extra["latents"] = varied_noise(latent_shape(pipe, params.width, params.height), generators,
                                                variation_seeds, params.variation_strength, pipe.unet.dtype)
            reporter = _StepReporter(ctx, run=run, runs=params.batch_count, every=params.preview_every,
                                     finished=outputs, sdxl=handle.is_sdxl, size=(params.width, params.height))
            if hires is not None:  # hires fix: txt2img, upscale, img2img: one bar (plugins/image/hires.py)
                from plugins.image.hires import run_hires

                result = run_hires(handle, pipe, hires, params, kwargs, extra, noise_seeds, reporter, ctx)
            else:
                result = pipe(**kwargs, **extra, generator=generators[0] if size == 1 else generators,
                              callback_on_step_end=reporter)
            for k, image in enumerate(result.images):
                if outpaint is not None:
                    image = outpaint.finish(image)  # the original area laid back over the canvas
                metadata = {"seed": seeds[k], "batch_index": run * size + k, "mode": params.mode, **recorded}
                if varies:
                    metadata["variation_seed"] = variation_seeds[k]
                if getattr(ctx, "watermark", False):  # the invisible watermark, when on (plugins/image/watermark.py)
                    from plugins.image.watermark import mark_output

                    image = mark_output(image, metadata, ctx, first=not outputs)
                outputs.append(ImageOutput(image=image, metadata=metadata))
        _ip_adapter_off(handle)  # (a job that stopped early leaves it on: the next job takes it off first)
        return outputs

    # -- metadata (plugins/image/metadata.py, when present) -----------------------------------------------

    def encode_output(self, output: Any, metadata: dict[str, Any]) -> Any:
        """PNG with an A1111-style ``parameters`` chunk and Studiolo's JSON (other outputs: the host's writer)."""
        from desktop.api import ImageOutput
        from plugins.image.metadata import encode_png

        return encode_png(output, metadata) if isinstance(output, ImageOutput) else None

    def params_for_input(self, params: Any, path: Path, mode: str) -> ImageParams:
        """``params`` starting from the picture at ``path`` in img2img or inpaint (no mask yet: the panel paints
        one). The size stays that of ``params`` (the picture is brought to it)."""
        from dataclasses import replace

        if mode not in self.input_modes:
            raise ParamError("mode", mode, "use as input needs img2img or inpaint")
        base = params if isinstance(params, ImageParams) else ImageParams()
        return replace(base, mode=mode, init_image=Path(path), mask_image=None)

    def input_file(self, params: Any) -> Path | None:
        """The init image of an img2img or inpaint job (what its outputs are derived from); None in txt2img."""
        if getattr(params, "mode", "txt2img") == "txt2img":
            return None
        init = getattr(params, "init_image", None)
        return Path(init) if init is not None else None

    def params_from_file(self, path: Path) -> ImageParams | None:
        """Params read back from a PNG made by Studiolo, AUTOMATIC1111, ComfyUI or InvokeAI; None when the file
        holds none. Never raises, whatever the file holds."""
        from plugins.image.metadata import read_params

        try:
            return read_params(path)
        except Exception:  # read_params never raises; this guard keeps the contract if it ever did
            return None

    def detect_watermark(self, path: Path, metadata: Any, model_path: Path | None = None) -> Any:
        """Studiolo's invisible watermark (dwtDct, 48 bits) looked for in the picture at ``path`` (PNG, JPEG,
        WebP…), whatever its metadata says: a ``WatermarkCheck`` whose score is the share of bits read back
        (:mod:`plugins.image.watermark`). Never raises: a file that is not a picture is ``detected=False``."""
        from plugins.image.watermark import detect_file

        return detect_file(path)

    def interpolation_frames(self, start: ImageParams, end: ImageParams, start_seed: int, end_seed: int,
                             frames: int) -> list[tuple[ImageParams, int]]:
        """Frames between two seeds (a variation seed and strength) and/or two prompts (a second prompt and a
        mix), each an ordinary job; the ends are the two single runs. See :mod:`plugins.image.interpolation`."""
        from plugins.image.interpolation import interpolation_frames

        return interpolation_frames(start, end, start_seed, end_seed, frames)

    def create_panel(self, host: Any) -> Any:
        """The image panel: prompts, settings, mode switch, image view, mask painter, results strip."""
        from plugins.image.panel import create_panel

        return create_panel(host, reuse_from_file=self.reuse_from_file)

    def reuse_from_file(self, path: Path) -> Any | None:
        """What made a PNG (params, seed, model: a ``metadata.Reuse``), from Studiolo, AUTOMATIC1111, ComfyUI or
        InvokeAI; None when the file holds none. Never raises."""
        from plugins.image.metadata import read_reuse

        try:
            return read_reuse(path)
        except Exception:  # read_reuse never raises; this guard keeps the contract if it ever did
            return None


def _mode_inputs(params: ImageParams) -> dict[str, Any]:
    """The init image and mask for img2img/inpaint, opened and sized; ParamError naming what is missing or bad."""
    if params.mode == "txt2img":
        return {}
    steps_run = min(int(params.steps * params.strength), params.steps)
    if steps_run < 1:
        raise ParamError("strength", params.strength,
                         f"too low for {params.steps} steps (no step would run): use at least "
                         f"{1 / params.steps:.2f}, or more steps")
    size = (params.width, params.height)
    if params.mode == "outpaint":
        return {}  # its canvas and mask: _outpaint
    inputs = {"image": _open_image(params.init_image, "init_image", params.mode, size, "RGB")}
    if params.mode == "inpaint":
        inputs["mask_image"] = _open_image(params.mask_image, "mask_image", params.mode, size, "L")
    return inputs


def _outpaint(params: ImageParams, seed: int) -> Any:
    """An outpaint job made ready (:mod:`plugins.image.outpaint`: the canvas, its mask, its size), or None in the
    other modes. Its mistakes (no side extended, no init image, a canvas too big) are named before any step."""
    if params.mode != "outpaint":
        return None
    from plugins.image.outpaint import check_extents, prepare_outpaint

    check_extents(params)
    init = _open_image(params.init_image, "init_image", params.mode, None, "RGB")  # at its own size
    return prepare_outpaint(params, init, seed=seed)


def _open_image(path: Path | None, field: str, mode: str, size: tuple[int, int] | None, colour: str) -> Any:
    from PIL import Image

    what = "an init image" if field == "init_image" else "a mask image (white where to repaint)"
    if path is None:
        raise ParamError(field, None, f"{mode} needs {what}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise ParamError(field, str(path), "no such image file")
    try:
        with Image.open(path) as opened:
            image = opened.convert(colour)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ParamError(field, str(path), f"not an image file that can be read (PNG, JPEG, WebP…): {exc}") from None
    if size is not None and image.size != size:  # the picture is made at width × height: bring the input to that size
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _control(handle: Any, params: ImageParams, mode: str, ctx: RunContext) -> Any:
    """The job's ControlNet pipeline and call arguments (:mod:`plugins.image.controlnet`), or None without
    active ControlNet units."""
    if not params.controlnets:
        return None
    from plugins.image.controlnet import prepare_control

    return prepare_control(handle, params, mode, ctx)


def _ip_adapter(handle: Any, params: ImageParams, pipe: Any, ctx: Any = None) -> dict[str, Any]:
    """The IP-Adapter put on for this job and its call arguments (:mod:`plugins.image.ip_adapter`); {} without
    one, after taking off any left on by an earlier job."""
    if not params.ip_adapter and getattr(handle, "ip_adapter", None) is None:
        return {}
    from plugins.image.ip_adapter import use_ip_adapter

    return use_ip_adapter(handle, params, pipe, ctx)


def _ip_adapter_off(handle: Any) -> None:
    if getattr(handle, "ip_adapter", None) is not None:
        from plugins.image.ip_adapter import remove_ip_adapter

        remove_ip_adapter(handle)


def _hires(params: ImageParams) -> Any:
    """The job's hires-fix plan (:mod:`plugins.image.hires`), or None when ``hires_scale`` is 1 (off)."""
    if params.hires_scale <= 1:
        return None
    from plugins.image.hires import hires_plan

    return hires_plan(params)


def _check_variation(params: ImageParams) -> bool:
    """Whether the job mixes a variation seed's noise in (a variation seed and a strength above 0). A variation
    is txt2img's only: :class:`ParamError` naming ``variation_seed`` in the other modes."""
    if params.variation_seed is None or params.variation_strength <= 0:
        return False
    if params.mode != "txt2img":
        raise ParamError("variation_seed", params.variation_seed,
                         f"variations work in txt2img only, not in {params.mode}",
                         hint="Clear the variation seed (or set its strength to 0), or use txt2img.")
    return True


def _mixed_prompt_kwargs(pipe: Any, params: ImageParams, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the prompts replaced by their embeddings: the prompt's and ``prompt_to``'s, mixed
    linearly by ``prompt_mix`` (``torch.lerp``; SDXL's pooled embeddings too), and the negative prompt's."""
    import torch

    def encode(prompt: str) -> tuple[Any, ...]:
        with torch.no_grad():
            return tuple(pipe.encode_prompt(prompt=prompt, device=pipe._execution_device, num_images_per_prompt=1,
                                            do_classifier_free_guidance=True,
                                            negative_prompt=params.negative_prompt or None))

    start, end = encode(params.prompt), encode(params.prompt_to)
    names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
    mixed = dict(zip(names, start, strict=False))
    mixed["prompt_embeds"] = torch.lerp(start[0], end[0], float(params.prompt_mix))
    if len(start) == 4:  # SDXL: the pooled embeddings are mixed as well
        mixed["pooled_prompt_embeds"] = torch.lerp(start[2], end[2], float(params.prompt_mix))
    accepted = inspect.signature(type(pipe).__call__).parameters
    kept = {key: value for key, value in kwargs.items() if key not in ("prompt", "negative_prompt")}
    return {**kept, **{key: value for key, value in mixed.items() if key in accepted}}


def _warn_long_prompts(pipe: Any, params: ImageParams, ctx: RunContext) -> None:
    """Tell the user when the text encoder will cut a prompt short (diffusers only logs it)."""
    tokenizer = getattr(pipe, "tokenizer", None)
    limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer is None or not isinstance(limit, int) or limit > 100_000:
        return
    for field, label in (("prompt", "prompt"), ("negative_prompt", "negative prompt"), ("prompt_to", "second prompt")):
        text = getattr(params, field) if field != "prompt_to" or params.prompt_mix > 0 else ""
        if text and len(tokenizer(text).input_ids) > limit:
            ctx.warn(f"The {label} is longer than this model reads ({limit - 2} tokens): the end is ignored.")


def _use_scheduler(pipe: Any, original: Any, name: str) -> None:
    """Give ``pipe`` the scheduler ``name``, built from the model's own scheduler config (``default``: that one)."""
    if name == "default":
        pipe.scheduler = original
        return
    import diffusers

    pipe.scheduler = getattr(diffusers, SCHEDULERS[name]).from_config(original.config)


def _call_kwargs(pipe: Any, params: ImageParams, inputs: dict[str, Any]) -> dict[str, Any]:
    """The pipeline call's arguments, keeping only those this pipeline takes (img2img takes no width/height)."""
    wanted: dict[str, Any] = {
        "prompt": params.prompt,
        "negative_prompt": params.negative_prompt or None,
        "num_inference_steps": params.steps,
        "guidance_scale": params.guidance_scale,
        "num_images_per_prompt": params.batch_size,
        "width": params.width,
        "height": params.height,
        **inputs,
    }
    if params.mode != "txt2img":
        wanted["strength"] = params.strength
    accepted = inspect.signature(type(pipe).__call__).parameters
    return {key: value for key, value in wanted.items() if key in accepted}


class _StepReporter:
    """The pipeline's ``callback_on_step_end``: progress across the whole batch, previews, and cancel.

    A cancel raises :class:`JobCancelled` from inside the pipeline, so the unfinished images are never decoded;
    it is checked before and after reporting, so a cancel made while a step is reported lands at once.
    """

    def __init__(self, ctx: RunContext, *, run: int, runs: int, every: int, finished: list[ImageOutput],
                 sdxl: bool, size: tuple[int, int]) -> None:
        self.ctx, self.run, self.runs, self.every = ctx, run, runs, every
        self.finished, self.sdxl, self.size = finished, sdxl, size
        self.per_run: int | None = None  # steps of one run when it has several passes (hires fix): else the pipe's
        self.done_before = 0  # steps of this run's earlier passes (hires fix's second pass: the first's)

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        self._check_cancel()
        per_run = self.per_run or int(getattr(pipe, "num_timesteps", 0) or 0) or step + 1
        self.ctx.progress(self.run * per_run + self.done_before + step + 1, self.runs * per_run)
        if self.every and (step + 1) % self.every == 0 and "latents" in tensors:
            from plugins.image.previews import latents_to_preview

            self.ctx.preview(latents_to_preview(tensors["latents"], sdxl=self.sdxl, size=self.size,
                                                sigma=_remaining_sigma(pipe.scheduler)))
        self._check_cancel()
        return tensors

    def _check_cancel(self) -> None:
        if self.ctx.cancelled:
            raise JobCancelled(partial=list(self.finished))


def _remaining_sigma(scheduler: Any) -> float | None:
    """The noise level left in the latents for Euler-type schedulers (whose latents are not unit-variance)."""
    try:
        if float(scheduler.init_noise_sigma) <= 1.0:
            return None
        index = scheduler.step_index
        return float(scheduler.sigmas[min(index, len(scheduler.sigmas) - 1)]) if index is not None else None
    except (AttributeError, TypeError, IndexError):
        return None
