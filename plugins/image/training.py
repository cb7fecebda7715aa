"""Training a LoRA from your pictures (issue 22): the image generator's ``lora`` training kind.

The approach of diffusers' ``train_text_to_image_lora.py`` / ``train_dreambooth_lora.py``, written as a job: the
base model's UNet gets a peft LoRA on its attention projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``), and only
those weights learn to predict the noise (or the velocity, for v-prediction models) added to the pictures' latents at
random timesteps, conditioned on each picture's caption. The text encoder and the VAE stay frozen, so each picture's
latent distribution and each caption's embedding are computed once, before the first step.

Reproducible and resumable: every random draw of the run (the data order, the latent samples, the noise, the
timesteps) comes from one CPU ``torch.Generator`` seeded with ``ctx.seed`` (the LoRA's initial weights from a fork of
torch's generator seeded with it too); a checkpoint holds the LoRA weights, the optimiser's state, that generator's
state and the data order's position, so a resumed run makes the same steps as one never interrupted (on the CPU
with the same thread count: bit for bit, see ``tests/test_image_lora_training.py``).

Only Stable Diffusion 1.x and 2.x base models are trained here for now (SDXL is refused, saying so). torch, diffusers
and peft are imported only inside :func:`train_lora`, which runs in the generator's worker.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import (
    ModelFormatError,
    ParamError,
    TrainingContext,
    TrainingKind,
    TrainingResult,
    file_manifest,
    param,
    resident_memory,
    training_files,
)

__all__ = ["ImageLoraParams", "LORA_TRAINING", "train_lora", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
CAPTIONS = ("metadata", "sidecar", "instance")
PRECISIONS = ("no", "fp16", "bf16")
RESULT_FILE = "pytorch_lora_weights.safetensors"
_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
_MAX_GRAD_NORM = 1.0  # the diffusers scripts' default
_WEIGHT_DECAY = 1e-2  # AdamW's weight decay in the diffusers scripts


@dataclass(frozen=True)
class ImageLoraParams:
    images: list[str] = param(default_factory=list,
                              help="The pictures to learn from: image files and/or folders (searched recursively "
                                   "for PNG, JPEG, WebP, BMP and TIFF files).")
    captions: str = param("metadata", choices=CAPTIONS,
                          help="Each picture's caption: metadata — the prompt recorded in it (Studiolo, "
                               "AUTOMATIC1111, ComfyUI, InvokeAI), else its sidecar .txt, else the instance prompt; "
                               "sidecar — the .txt file of the same name beside it, else the instance prompt; "
                               "instance — the instance prompt for every picture.")
    instance_prompt: str = param("", label="Instance prompt",
                                 help="The caption of pictures that have none (and of all of them with "
                                      "captions=instance), e.g. 'a photo of my dog'.")
    trigger: str = param("", label="Trigger word",
                         help="A word put before every caption (e.g. 'sks'); use it in a prompt to call up what "
                              "was learnt.")
    resolution: int = param(512, min=64, max=2048, step=8, multiple_of=8,
                            help="Pictures are resized (shorter side) and center-cropped to this square size.")
    rank: int = param(4, min=1, max=256, help="The LoRA's rank: larger learns more detail, and is bigger.")
    steps: int = param(500, min=1, max=100_000, help="Optimisation steps.")
    learning_rate: float = param(1e-4, min=0.0, max=1.0, label="Learning rate", help="AdamW's learning rate.")
    batch_size: int = param(1, min=1, max=64, help="Pictures per forward pass.")
    gradient_accumulation: int = param(1, min=1, max=256,
                                       help="Forward passes whose gradients are summed into one step (a larger "
                                            "effective batch without the memory).")
    mixed_precision: str = param("no", choices=PRECISIONS, label="Mixed precision",
                                 help="fp16/bf16: the frozen weights in half precision and autocast (CUDA GPUs "
                                      "only: ignored, with a note, elsewhere); no: float32.")
    gradient_checkpointing: bool = param(False, label="Gradient checkpointing",
                                         help="Save memory by recomputing activations (slower).")
    checkpoint_every: int = param(100, min=0, max=100_000, label="Checkpoint every",
                                  help="Write a checkpoint (to resume from) every N steps; 0: only at the end.")
    sample_every: int = param(0, min=0, max=100_000, label="Sample every",
                              help="Draw sample pictures every N steps, with fixed seeds (0: never).")
    sample_prompts: list[str] = param(default_factory=list, max_items=8, label="Sample prompts",
                                      help="Prompts of the samples (default: the first picture's caption).")
    sample_steps: int = param(20, min=1, max=150, label="Sample steps", help="Denoising steps of each sample.")


LORA_TRAINING = TrainingKind(
    "lora", "LoRA from your pictures", ImageLoraParams, result_kind="lora",
    description="Teach a Stable Diffusion 1.x/2.x model a subject or a style from a few of your pictures: a LoRA "
                "you can use at once in the image panel.")


# --------------------------------------------------------------------------------------------- the dataset


@dataclass
class _Example:
    path: Path
    image: Any  # PIL RGB, resolution × resolution
    caption: str


def load_examples(params: ImageLoraParams, ctx: TrainingContext) -> list[_Example]:
    """The pictures made square RGB at the resolution, with their captions. Notes: how many were changed, which
    could not be read, how many fell back to another caption source. ParamError when none can be used."""
    from PIL import Image, ImageOps

    files = training_files(params.images, IMAGE_SUFFIXES, param_name="images")
    size = params.resolution
    examples: list[_Example] = []
    changed, unreadable = 0, []
    for path in files:
        try:
            with Image.open(path) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)
                original = (image.size, image.mode)
                image = image.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            unreadable.append(path.name)
            continue
        if original != ((size, size), "RGB"):
            changed += 1
            image = _square(image, size)
        examples.append(_Example(path, image, ""))
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else "")
        ctx.warn(f"{len(unreadable)} file(s) could not be read as pictures and were skipped: {shown}.")
    if not examples:
        raise ParamError("images", ", ".join(params.images), "none of these files can be read as a picture",
                         hint="Choose PNG, JPEG or WebP pictures (or folders holding them).")
    if changed:
        ctx.warn(f"{changed} of {len(examples)} picture(s) were not {size}×{size} RGB: they were converted to RGB, "
                 f"resized (shorter side to {size} px) and center-cropped.")
    _caption(examples, params, ctx)
    return examples


def _square(image: Any, size: int) -> Any:
    from PIL import Image

    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                           Image.Resampling.LANCZOS)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


def _caption(examples: list[_Example], params: ImageLoraParams, ctx: TrainingContext) -> None:
    if params.captions == "instance" and not (params.instance_prompt.strip() or params.trigger.strip()):
        raise ParamError("instance_prompt", params.instance_prompt,
                         "captions=instance needs an instance prompt or a trigger word")
    fallback = 0
    for example in examples:
        text = None
        if params.captions == "metadata":
            text = _metadata_prompt(example.path)
        if text is None and params.captions in ("metadata", "sidecar"):
            text = _sidecar(example.path)
        if text is None:
            if params.captions != "instance":
                fallback += 1
            text = params.instance_prompt.strip()
        trigger = params.trigger.strip()
        example.caption = f"{trigger}, {text}" if trigger and text else (trigger or text)
    if fallback:
        where = "a recorded prompt or a sidecar .txt" if params.captions == "metadata" else "a sidecar .txt"
        ctx.warn(f"{fallback} of {len(examples)} picture(s) have no {where}: their caption is the instance prompt"
                 f" {params.instance_prompt.strip()!r}{' and the trigger word' if params.trigger.strip() else ''}.")


def _metadata_prompt(path: Path) -> str | None:
    """The prompt Studiolo / AUTOMATIC1111 / ComfyUI / InvokeAI recorded in the picture, or None."""
    from plugins.image.metadata import read_params

    try:
        recorded = read_params(path)
    except Exception:  # read_params never raises; a picture without metadata is an ordinary case
        return None
    prompt = getattr(recorded, "prompt", None)
    return prompt.strip() if isinstance(prompt, str) and prompt.strip() else None


def _sidecar(path: Path) -> str | None:
    side = path.with_suffix(".txt")
    try:
        text = side.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


# ----------------------------------------------------------------------------------------- the base model


def check_base(model_path: Path | None) -> None:
    """Refuse at once a base model this trainer cannot train (before loading it): SDXL, other pipelines."""
    if model_path is None:
        from desktop.api import ModelNotFoundError

        raise ModelNotFoundError("No base model was given.", hint="Choose a Stable Diffusion 1.x or 2.x model.")
    from plugins.image.pipelines import config_folder_for

    path = Path(model_path)
    folder = path if path.is_dir() else config_folder_for(path)
    if folder is None:
        return  # load_model names what is missing
    try:
        class_name = str(json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name"))
    except (OSError, ValueError, AttributeError):
        return
    _check_class(class_name, path.name)


def _check_class(class_name: str, name: str) -> None:
    if "XL" in class_name:
        raise ModelFormatError(f"{name} is an SDXL model: LoRA training here works only with Stable Diffusion 1.x "
                               "and 2.x models for now.",
                               hint="Choose an SD 1.x or 2.x base model (SD 1.5, SD 2.1, SD-Turbo…) to train on.")
    if class_name != "StableDiffusionPipeline":
        raise ModelFormatError(f"{name} ({class_name}) is not a model this LoRA trainer supports: only Stable "
                               "Diffusion 1.x and 2.x text-to-image models can be trained here for now.",
                               hint="Choose an SD 1.x or 2.x base model.")


def _family(pipe: Any) -> str:
    hidden = getattr(getattr(pipe.text_encoder, "config", None), "hidden_size", 768)
    return "sd2" if hidden == 1024 else "sd1"


# ------------------------------------------------------------------------------------------------ training


def train_lora(model_path: Path | None, device: str, params: ImageLoraParams,
               ctx: TrainingContext) -> TrainingResult:
    """Train a LoRA on ``params.images`` for the SD 1.x/2.x model at ``model_path``; see the module docstring."""
    import torch

    check_base(model_path)
    examples = load_examples(params, ctx)
    precision = params.mixed_precision
    if precision != "no" and not device.startswith("cuda"):
        ctx.warn(f"Mixed precision ({precision}) needs a CUDA GPU: training in float32 on {device} instead.")
        precision = "no"
    rss_before = _rss() if device == "cpu" else None
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    ctx.raise_if_cancelled()
    trainer = None
    try:
        trainer = _Trainer(Path(model_path), device, params, precision, examples, ctx)  # type: ignore[arg-type]
        return trainer.run(rss_before)
    finally:
        if trainer is not None:
            trainer.free()
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


class _Trainer:
    def __init__(self, model_path: Path, device: str, params: ImageLoraParams, precision: str,
                 examples: list[_Example], ctx: TrainingContext) -> None:
        import torch
        from diffusers import DDPMScheduler

        from desktop.api import LoadOptions
        from plugins.image.pipelines import load_model

        self.params, self.device, self.ctx, self.examples = params, device, ctx, examples
        self.model_path = model_path
        self.weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.autocast = precision != "no"
        dtype_name = {"no": "float32", "fp16": "float16", "bf16": "bfloat16"}[precision]
        handle = load_model(model_path, device, LoadOptions({"dtype": dtype_name}))
        self.pipe = pipe = handle.pipe
        _check_class(type(pipe).__name__, model_path.name)
        if getattr(pipe.unet.config, "in_channels", 4) != 4:
            raise ModelFormatError(f"{model_path.name} is an inpainting model: LoRA training here works with "
                                   "text-to-image Stable Diffusion 1.x/2.x models.", hint="Choose its base model.")
        self.family = _family(pipe)
        self.unet = unet = pipe.unet
        for part in (pipe.unet, pipe.vae, pipe.text_encoder):
            part.requires_grad_(False)
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self._add_lora(torch)
        self.lora_params = [p for p in unet.parameters() if p.requires_grad]
        if params.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        self.optimizer = torch.optim.AdamW(self.lora_params, lr=params.learning_rate, weight_decay=_WEIGHT_DECAY)
        ctx.raise_if_cancelled()
        self._encode(torch)
        self.generator = torch.Generator("cpu").manual_seed(int(ctx.seed))
        self.order = torch.randperm(len(examples), generator=self.generator)
        self.position = 0

    def _add_lora(self, torch: Any) -> None:
        from peft import LoraConfig

        config = LoraConfig(r=self.params.rank, lora_alpha=self.params.rank, init_lora_weights="gaussian",
                            target_modules=list(_TARGETS))
        with torch.random.fork_rng(devices=[]):  # the initial weights from the seed, torch's own RNG untouched
            torch.manual_seed(int(self.ctx.seed))
            self.unet.add_adapter(config)
        for p in self.unet.parameters():
            if p.requires_grad:
                p.data = p.data.float()  # LoRA weights learn in float32 whatever the frozen weights' precision

    @property
    def torch_device(self) -> Any:
        return self.pipe.unet.device

    def _encode(self, torch: Any) -> None:
        """Each picture's latent distribution (mean, std) and each caption's embedding, computed once."""
        import numpy as np

        pipe, dev = self.pipe, self.torch_device
        means, stds, embeds = [], [], []
        with torch.no_grad():
            for example in self.examples:
                pixels = torch.from_numpy(np.asarray(example.image, dtype=np.float32) / 127.5 - 1.0)
                pixels = pixels.permute(2, 0, 1).unsqueeze(0).to(dev, self.weight_dtype)
                dist = pipe.vae.encode(pixels).latent_dist
                means.append(dist.mean.float())
                stds.append(dist.std.float())
                ids = pipe.tokenizer(example.caption, padding="max_length", truncation=True,
                                     max_length=pipe.tokenizer.model_max_length, return_tensors="pt").input_ids
                embeds.append(pipe.text_encoder(ids.to(dev))[0].to(self.weight_dtype))
                self.ctx.raise_if_cancelled()
        self.means, self.stds, self.embeds = torch.cat(means), torch.cat(stds), torch.cat(embeds)
        self.scaling = float(pipe.vae.config.scaling_factor)

    # -- one step ----------------------------------------------------------------------------------------

    def _next_indices(self, torch: Any) -> Any:
        taken = []
        for _ in range(self.params.batch_size):
            if self.position >= len(self.order):
                self.order = torch.randperm(len(self.examples), generator=self.generator)
                self.position = 0
            taken.append(int(self.order[self.position]))
            self.position += 1
        return torch.tensor(taken)

    def _micro_loss(self, torch: Any, generator: Any) -> Any:
        import torch.nn.functional as F

        idx = self._next_indices(torch)
        dev = self.torch_device
        mean, std = self.means[idx], self.stds[idx]
        sample = torch.randn(mean.shape, generator=generator).to(dev)
        latents = (mean + std * sample) * self.scaling
        noise = torch.randn(latents.shape, generator=generator).to(dev)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (latents.shape[0],), generator=generator).to(dev).long()
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        kind = self.noise_scheduler.config.prediction_type
        if kind == "epsilon":
            target = noise
        elif kind == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise ModelFormatError(f"{self.model_path.name} predicts {kind!r}: LoRA training here supports epsilon "
                                   "and v-prediction models.", hint="Choose an SD 1.x or 2.x base model.")
        with torch.autocast(dev.type, dtype=self.weight_dtype, enabled=self.autocast):
            pred = self.unet(noisy.to(self.weight_dtype), timesteps, self.embeds[idx]).sample
        return F.mse_loss(pred.float(), target.float(), reduction="mean")

    def step(self, torch: Any, generator: Any) -> float:
        """One optimisation step (``gradient_accumulation`` forward/backward passes); its mean loss."""
        accumulate = self.params.gradient_accumulation
        total = 0.0
        for _ in range(accumulate):
            loss = self._micro_loss(torch, generator)
            scaled = loss / accumulate
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += float(loss.detach())
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.lora_params, _MAX_GRAD_NORM)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / accumulate

    # -- the run -----------------------------------------------------------------------------------------

    def run(self, rss_before: int | None) -> TrainingResult:
        import torch

        params, ctx = self.params, self.ctx
        start = 0
        if ctx.resume_from is not None:
            start, folder = ctx.resume_from
            self._load_state(torch, folder)
        self._warm_up(torch, rss_before)
        for step in range(start + 1, params.steps + 1):
            loss = self.step(torch, self.generator)
            ctx.step_done(step, params.steps, loss)
            if params.sample_every and step % params.sample_every == 0:
                self._samples(torch, step)
            if ctx.checkpoint_due(step, params.checkpoint_every, params.steps):
                ctx.save_checkpoint(step, self._save_state)
            ctx.raise_if_stopping()
        return self._result()

    def _warm_up(self, torch: Any, rss_before: int | None) -> None:
        """One throwaway step (its own random draws, its gradients dropped, the weights and the optimiser left as
        they were) timed and measured, then the host's fit check."""
        position, order = self.position, self.order
        began = time.perf_counter()
        accumulate = self.params.gradient_accumulation
        for _ in range(accumulate):
            (self._micro_loss(torch, torch.Generator("cpu").manual_seed(0)) / accumulate).backward()
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize(self.torch_device)
        seconds = time.perf_counter() - began
        self.optimizer.zero_grad(set_to_none=True)
        self.position, self.order = position, order
        optimiser_bytes = 2 * sum(p.numel() * p.element_size() for p in self.lora_params)  # AdamW's two moments
        if self.torch_device.type == "cuda":
            peak = int(torch.cuda.max_memory_allocated(self.torch_device))
        else:
            now = _rss()
            peak = max(0, (now or 0) - (rss_before or 0)) if now is not None and rss_before is not None else 0
        self.ctx.check_fit(peak_bytes=peak + optimiser_bytes, seconds_per_step=seconds)

    def _samples(self, torch: Any, step: int) -> None:
        prompts = list(self.params.sample_prompts) or [self.examples[0].caption]
        folder = self.ctx.work_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        self.unet.eval()
        try:
            for i, prompt in enumerate(prompts):
                generator = torch.Generator("cpu").manual_seed(int(self.ctx.seed) + i)
                with torch.autocast(self.torch_device.type, dtype=self.weight_dtype, enabled=self.autocast):
                    image = self.pipe(prompt, num_inference_steps=self.params.sample_steps,
                                      width=self.params.resolution, height=self.params.resolution,
                                      generator=generator).images[0]
                image.save(folder / f"step-{step}-{i}.png")
                self.ctx.preview(image)
        finally:
            self.unet.train()

    # -- checkpoints -------------------------------------------------------------------------------------

    def _lora_state(self) -> dict[str, Any]:
        from peft.utils import get_peft_model_state_dict

        return {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(self.unet).items()}

    def _save_state(self, folder: Path) -> None:
        import torch
        from safetensors.torch import save_file

        save_file(self._lora_state(), str(folder / "lora.safetensors"))
        state = {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                 "order": self.order.clone(), "position": self.position, "torch_rng": torch.get_rng_state()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        torch.save(state, folder / "state.pt")
        (folder / "trainer.json").write_text(json.dumps({"kind": "lora", "rank": self.params.rank,
                                                         "examples": len(self.examples)}), encoding="utf-8")

    def _load_state(self, torch: Any, folder: Path) -> None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        try:
            saved = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
            weights = load_file(str(folder / "lora.safetensors"))
            state = torch.load(folder / "state.pt", weights_only=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelFormatError(f"The checkpoint {folder} cannot be read: {exc}",
                                   hint="Start the training again without resuming.") from exc
        if saved.get("rank") != self.params.rank or saved.get("examples") != len(self.examples):
            raise ParamError("rank", self.params.rank,
                             f"the checkpoint was made with rank {saved.get('rank')} on {saved.get('examples')} "
                             "picture(s): resume with the same rank and pictures",
                             hint="Or start the training again without resuming.")
        set_peft_model_state_dict(self.unet, {k: v.to(self.torch_device) for k, v in weights.items()})
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], int(state["position"])
        torch.set_rng_state(state["torch_rng"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    # -- the result --------------------------------------------------------------------------------------

    def _result(self) -> TrainingResult:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        folder = self.ctx.work_dir / "result"
        folder.mkdir(parents=True, exist_ok=True)
        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(self.unet))
        layers = {k: v.detach().float().cpu().contiguous() for k, v in layers.items()}
        StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers, weight_name=RESULT_FILE,
                                                  safe_serialization=True)
        captions = _caption_map(self.examples)
        return TrainingResult(path=folder / RESULT_FILE,
                              metadata={"family": self.family, "trigger": self.params.trigger.strip(),
                                        "resolution": self.params.resolution, "rank": self.params.rank,
                                        "captions": captions},
                              dataset=file_manifest([e.path for e in self.examples]))

    def free(self) -> None:
        """Drop the model, the optimiser and the cached latents (the caller collects and empties the cache)."""
        for name in ("optimizer", "lora_params", "unet", "pipe", "means", "stds", "embeds", "scaler"):
            self.__dict__.pop(name, None)


def _caption_map(examples: list[_Example]) -> dict[str, str]:
    names = [e.path.name for e in examples]
    unique = len(set(names)) == len(names)
    return {(e.path.name if unique else str(e.path)): e.caption for e in examples}


def _rss() -> int | None:
    """This process's resident memory (the CPU's measure of what the warm-up used)."""
    return resident_memory()

