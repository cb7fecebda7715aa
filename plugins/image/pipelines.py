"""Loading Stable Diffusion pipelines from local files, and the loaded model's handle.

What ``load`` accepts (already resolved by the host to local files):

* a **diffusers folder** (with ``model_index.json``: a ``save_pretrained`` folder or a downloaded hub repo) —
  SD 1.x/2.x, SDXL, SD-Turbo and SDXL-Turbo load through diffusers' Auto pipelines;
* a **single checkpoint file** (``NAME.safetensors``; ``NAME.ckpt`` only when pickle weights are allowed). Such a
  file holds weights only: loading it offline needs the diffusers configuration of the model it was made from.
  Studiolo looks for that configuration *beside the file*, in a folder named ``NAME.config`` or ``NAME`` that holds
  a diffusers folder (``model_index.json``, ``scheduler/``, ``tokenizer/`` and each part's ``config.json``; the
  weights in it, if any, are not used). Without one it stops at once with a message saying so: it never goes
  online to look for one.

Every file that cannot be used raises :class:`~desktop.api.ModelFormatError` naming it: before diffusers reads
anything, the folder (or the checkpoint's configuration folder) is checked against its ``model_index.json`` — each
part it lists present, with its configuration (:mod:`plugins.image.model_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import (
    InsufficientMemoryError,
    LoadOptions,
    ModelFormatError,
    ModelNotFoundError,
    is_pickle,
    safetensors_header,
)
from desktop.api import check_model_files as api_check_model_files
from plugins.image.loras import LoraSet
from plugins.image.model_folder import check_diffusers_folder, tokenizer_problem

__all__ = ["ImageModel", "load_model", "check_model_files", "config_folder_for"]
_CONFIG_HINT = (
    "Put the diffusers configuration of its base model beside it, in a folder named {config} (model_index.json, "
    "scheduler/, tokenizer/ and each part's config.json, as in the base model's diffusers repo — the weights are "
    "not needed), or use the model in diffusers format instead."
)


@dataclass
class ImageModel:
    """The handle ``load`` returns: the text-to-image pipeline and what was derived from it.

    ``pipe`` is the text-to-image pipeline; :meth:`pipeline` builds the image-to-image and inpainting pipelines
    from it on first use (``from_pipe``: the same weights, no copy). ``loras`` tracks the LoRAs applied to the
    shared UNet and text encoders. ``notes`` are things to tell the user with each job (an ignored option).
    """

    pipe: Any
    device: str
    source: Path
    allow_pickle: bool = False
    cpu_offload: bool = False
    notes: list[str] = field(default_factory=list)
    loras: LoraSet = field(default_factory=LoraSet)
    original_scheduler: Any = None
    _derived: dict[str, Any] = field(default_factory=dict)
    controlnets: dict[Any, Any] = field(default_factory=dict)  # plugins.image.controlnet's models, pipelines
    ip_adapter: Any = None  # plugins.image.ip_adapter's loaded adapter (kept off the UNet between jobs)

    def __post_init__(self) -> None:
        if self.original_scheduler is None:
            self.original_scheduler = self.pipe.scheduler

    @property
    def is_sdxl(self) -> bool:
        """True for SDXL-family pipelines (two text encoders; their own latent colours)."""
        return "XL" in type(self.pipe).__name__

    @property
    def inpainting_only(self) -> bool:
        """True for inpainting checkpoints (a UNet that also takes the mask and masked image: 9 channels)."""
        unet = getattr(self.pipe, "unet", None)
        return getattr(getattr(unet, "config", None), "in_channels", 4) == 9

    def pipeline(self, mode: str) -> Any:
        """The pipeline for ``mode`` (``txt2img``, ``img2img`` or ``inpaint``), sharing this model's weights."""
        if mode == "txt2img":
            return self.pipe
        if mode not in self._derived:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

            auto = AutoPipelineForImage2Image if mode == "img2img" else AutoPipelineForInpainting
            try:
                derived = auto.from_pipe(self.pipe)
            except ValueError as exc:
                raise ModelFormatError(f"{self.source.name} cannot be used for {mode}: {exc}",
                                       hint="Use txt2img with this model, or choose a Stable Diffusion model.") from exc
            if self.cpu_offload:
                derived.enable_model_cpu_offload(device=self.device)
            derived.set_progress_bar_config(disable=True)
            self._derived[mode] = derived
        return self._derived[mode]

    def release(self) -> None:
        """Drop the derived pipelines (the host drops the handle itself and frees the device memory)."""
        self._derived.clear()
        self.controlnets.clear()
        self.ip_adapter = None

    def size_bytes(self) -> int:
        """Bytes held by the model's parameters and buffers (shared between the pipelines, counted once)."""
        seen: set[int] = set()
        total = 0
        for component in self.pipe.components.values():
            for tensor in _tensors(component):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
        return total


def _tensors(component: Any) -> list[Any]:
    if hasattr(component, "parameters") and hasattr(component, "buffers"):
        return [*component.parameters(), *component.buffers()]
    return []


# ---------------------------------------------------------------------------------------------- loading


def load_model(path: Path, device: str, options: LoadOptions) -> ImageModel:
    """Load the model at ``path`` onto ``device`` with ``options`` (dtype, memory savers, ``allow_pickle``)."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"No model at {path}.", hint="Choose a model folder or a .safetensors file.")
    allow_pickle = bool(getattr(options, "allow_pickle", False))
    check_model_files(path, allow_pickle=allow_pickle)
    config = _diffusers_folder_for(path)
    index = check_diffusers_folder(config)  # each part model_index.json lists, present and sound: named if not
    import torch

    dtype = _dtype(torch, options.get("dtype", "auto"), device)
    try:
        pipe = _load_folder(path, dtype, allow_pickle) if path.is_dir() else _load_file(path, dtype, config, index)
    except (ModelFormatError, ModelNotFoundError):
        raise
    except MemoryError as exc:
        raise InsufficientMemoryError(f"There is not enough memory to load {path.name}.",
                                      hint="Close other models or programs, or use a smaller model.") from exc
    except Exception as exc:  # diffusers/transformers raise OSError, ValueError, KeyError, RuntimeError…
        raise tokenizer_problem(config, index) or ModelFormatError(
            f"{path.name} could not be loaded as a Stable Diffusion model: {_first_line(exc)}",
            hint="Check that the files are complete and made for Stable Diffusion (1.x, 2.x, SDXL or Turbo); "
                 "download or export the model again.") from exc
    notes: list[str] = []
    cpu_offload = bool(options.get("cpu_offload", False)) and device.startswith("cuda")
    if options.get("cpu_offload", False) and not cpu_offload:
        notes.append(f"CPU offload only helps on a CUDA GPU; it is ignored on {device}.")
    try:
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
    except torch.OutOfMemoryError as exc:
        raise InsufficientMemoryError(f"{path.name} does not fit in the memory of {device}.",
                                      hint="Turn on CPU offload, choose float16, or use a smaller model.") from exc
    if options.get("attention_slicing", False):
        pipe.enable_attention_slicing()
    if hasattr(pipe, "vae"):
        # Decode a batch one image at a time: less memory (the UNet still runs the batch at once; see the
        # generator's docstring for how close image k of a batch is to a single run).
        pipe.vae.enable_slicing()
        if options.get("vae_tiling", False):
            pipe.vae.enable_tiling()
    pipe.set_progress_bar_config(disable=True)
    return ImageModel(pipe=pipe, device=device, source=path, allow_pickle=allow_pickle, cpu_offload=cpu_offload,
                      notes=notes)


def _dtype(torch: Any, name: str, device: str) -> Any:
    if name == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def _diffusers_folder_for(path: Path) -> Path:
    """The diffusers folder whose ``model_index.json`` describes the model ``path``: the folder itself, or the
    configuration folder beside a single-file checkpoint. :class:`ModelFormatError` when there is none."""
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelFormatError(f"{path} is not a diffusers model folder (it has no model_index.json).",
                                   hint="Choose the folder that holds model_index.json, or a single .safetensors "
                                        "file.")
        return path
    config = config_folder_for(path)
    if config is None:
        raise ModelFormatError(
            f"{path.name} is a single-file checkpoint{_family_text(path)}, and loading one offline needs the "
            "configuration of its base model, which was not found beside it.",
            hint=_CONFIG_HINT.format(config=f"{path.stem}.config"))
    return config


def _load_folder(path: Path, dtype: Any, allow_pickle: bool) -> Any:
    from diffusers import AutoPipelineForText2Image

    kwargs: dict[str, Any] = {**_dtype_kwarg(dtype), "local_files_only": True,
                              "use_safetensors": None if allow_pickle else True}
    if _only_fp16_variant(path):
        kwargs["variant"] = "fp16"
    return AutoPipelineForText2Image.from_pretrained(str(path), **kwargs)


def _only_fp16_variant(path: Path) -> bool:
    """True when the denoiser's weights exist only as the ``fp16`` variant (some hub repos ship just that)."""
    for part in ("unet", "transformer"):
        folder = path / part
        if folder.is_dir():
            names = [p.name for p in folder.iterdir()]
            plain = any(n.startswith("diffusion_pytorch_model") and ".fp16." not in n for n in names)
            return not plain and any(".fp16." in n for n in names)
    return False


def _load_file(path: Path, dtype: Any, config: Path, index: dict[str, Any]) -> Any:
    """The single-file checkpoint ``path`` with the configuration folder ``config`` (``index``: its
    model_index.json)."""
    import diffusers

    class_name = index["_class_name"]
    pipeline_class = getattr(diffusers, str(class_name), None)
    if pipeline_class is None or not hasattr(pipeline_class, "from_single_file"):
        raise ModelFormatError(f"The configuration in {config} is for {class_name or 'an unknown pipeline'}, "
                               "which cannot load single-file checkpoints.",
                               hint="Use the configuration of a Stable Diffusion (1.x, 2.x or SDXL) base model.")
    return pipeline_class.from_single_file(str(path), config=str(config), local_files_only=True,
                                           **_dtype_kwarg(dtype))


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """``dtype=`` for diffusers that takes it (it deprecated ``torch_dtype=``), ``torch_dtype=`` for older ones."""
    from diffusers.pipelines import pipeline_utils

    return {"dtype": dtype} if hasattr(pipeline_utils, "_resolve_dtype") else {"torch_dtype": dtype}


def config_folder_for(path: Path) -> Path | None:
    """The diffusers configuration folder for the checkpoint ``path``: ``NAME.config/`` or ``NAME/`` beside it,
    whichever holds a ``model_index.json`` (in that order); None when neither does."""
    for candidate in (path.with_name(path.stem + ".config"), path.with_name(path.stem)):
        if (candidate / "model_index.json").is_file():
            return candidate
    return None


def _family_text(path: Path) -> str:
    """' (it looks like SDXL)' and the like, from the checkpoint's tensor names (header only; '' if unsure)."""
    try:
        names = safetensors_header(path).keys() if path.suffix == ".safetensors" else ()
    except (OSError, ValueError, ModelFormatError):
        return ""
    if any(n.startswith("conditioner.embedders.1.") for n in names):
        return " (it looks like SDXL)"
    if any(n.startswith("cond_stage_model.model.") for n in names):
        return " (it looks like Stable Diffusion 2.x)"
    if any(n.startswith("cond_stage_model.transformer.") for n in names):
        return " (it looks like Stable Diffusion 1.x)"
    return ""


# ------------------------------------------------------------------------------------------ file checks


def check_model_files(path: Path, *, allow_pickle: bool) -> None:
    """The API's checks, plus: a single file must be a checkpoint (``.safetensors``, or pickle when allowed)."""
    if path.is_file() and path.suffix.lower() != ".safetensors" and not is_pickle(path):
        raise ModelFormatError(f"{path.name} is not a model file Studiolo can load.",
                               hint="Choose a .safetensors checkpoint or a diffusers model folder.")
    api_check_model_files(path, allow_pickle=allow_pickle)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
