"""LoRAs: parsing ``PATH[:WEIGHT]`` and keeping a loaded model's applied LoRAs in step with each job's list.

LoRAs are applied to the loaded model in place (diffusers + peft adapters): adding, removing or re-weighting one
never reloads the base model, and removing the last one restores the base weights exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import ModelFormatError, ParamError

__all__ = ["LoraSpec", "LoraSet", "parse_lora"]


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA of a job: its file and its weight (1 = as trained)."""

    path: Path
    weight: float = 1.0


def parse_lora(text: str) -> LoraSpec:
    """Parse ``PATH`` or ``PATH:WEIGHT``. A Windows drive letter (``C:\\loras\\a.safetensors``) is part of the path;
    the text after the last ``:`` is a weight only when it reads as a number."""
    text = str(text).strip()
    if not text:
        raise ParamError("loras", text, "each LoRA is PATH or PATH:WEIGHT")
    head, sep, tail = text.rpartition(":")
    path_text, weight = text, 1.0
    if sep and head and not (len(head) == 1 and head.isalpha()):
        try:
            weight = float(tail)
            path_text = head.strip()
        except ValueError:
            pass
    if not math.isfinite(weight):
        raise ParamError("loras", text, "the weight after ':' must be a finite number")
    return LoraSpec(Path(path_text).expanduser(), weight)


@dataclass
class _Applied:
    name: str
    spec: LoraSpec


@dataclass
class LoraSet:
    """The LoRAs applied to one loaded model (keyed by file identity), and their adapter names."""

    applied: dict[tuple[str, int, int], _Applied] = field(default_factory=dict)
    active: tuple[tuple[str, float], ...] = ()
    loads: int = 0  # LoRA files loaded so far (tests check that unchanged LoRAs are not loaded again)
    _counter: int = 0

    def apply(self, pipe: Any, texts: list[str], *, allow_pickle: bool = False) -> None:
        """Make ``pipe``'s adapters exactly the LoRAs in ``texts`` with their weights."""
        wanted: dict[tuple[str, int, int], LoraSpec] = {}
        for text in texts:
            spec = parse_lora(text)
            key = _identity(spec, text)
            if key in wanted:
                raise ParamError("loras", text, "this LoRA is listed twice; list it once with the weight you want")
            wanted[key] = spec
        if not wanted:
            self.clear(pipe)
            return
        for spec in wanted.values():
            _check_file(spec.path, text=str(spec.path), allow_pickle=allow_pickle)
        gone = [key for key in self.applied if key not in wanted]
        if gone:
            pipe.delete_adapters([self.applied.pop(key).name for key in gone])
            self.active = ()
        for key, spec in wanted.items():
            if key in self.applied:
                self.applied[key].spec = spec
            else:
                self.applied[key] = _Applied(self._load(pipe, spec), spec)
        order = [self.applied[key] for key in wanted]
        state = tuple((a.name, a.spec.weight) for a in order)
        if state != self.active:
            pipe.set_adapters([name for name, _ in state], adapter_weights=[w for _, w in state])
            self.active = state

    def clear(self, pipe: Any) -> None:
        """Remove every LoRA: the model is back to its base weights."""
        if self.applied:
            pipe.unload_lora_weights()
        self.applied.clear()
        self.active = ()

    def _load(self, pipe: Any, spec: LoraSpec) -> str:
        self._counter += 1
        name = f"lora_{self._counter}"
        try:
            pipe.load_lora_weights(str(spec.path), adapter_name=name)
        except Exception as exc:
            _forget(pipe, name)
            self.active = ()  # diffusers may have switched the active adapters: set them again next time
            raise _unusable(spec.path, exc) from exc
        self.loads += 1
        if not any(name in names for names in pipe.get_list_adapters().values()):
            raise ModelFormatError(f"{spec.path.name} holds no LoRA weights that fit this model.",
                                   hint="Check that it is a LoRA made for this model's base model, or remove it.")
        return name


def _identity(spec: LoraSpec, text: str) -> tuple[str, int, int]:
    try:
        stat = spec.path.stat()
    except OSError:
        raise ParamError("loras", text, f"no LoRA file at {spec.path}; each LoRA is PATH or PATH:WEIGHT") from None
    return str(spec.path.resolve()), stat.st_mtime_ns, stat.st_size


def _check_file(path: Path, *, text: str, allow_pickle: bool) -> None:
    from desktop.api import PICKLE_SUFFIXES, check_safetensors, pickle_refused

    if not path.is_file():
        raise ParamError("loras", text, "a LoRA is a .safetensors file, not a folder")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise pickle_refused(path)
    elif suffix == ".safetensors":
        check_safetensors(path)
    else:
        raise ParamError("loras", text, "a LoRA is a .safetensors file")


def _forget(pipe: Any, name: str) -> None:
    """Drop a half-loaded adapter after a failure, so the model is as it was."""
    try:
        if any(name in names for names in pipe.get_list_adapters().values()):
            pipe.delete_adapters([name])
    except Exception:  # nothing was registered under that name
        pass


def _unusable(path: Path, exc: Exception) -> ModelFormatError:
    text = str(exc)
    if "size mismatch" in text or "shape" in text:
        return ModelFormatError(f"{path.name} is a LoRA for another base model: its layers do not fit this model.",
                                hint="Choose a LoRA made for this model's base model (SD 1.x, SD 2.x or SDXL), "
                                     "or remove it.")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ModelFormatError(f"{path.name} is not a LoRA this model can use: {first}",
                            hint="Check that it is a LoRA (not a full model) made for this model's base model.")
