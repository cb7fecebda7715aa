"""LoRAs given by name: ``NAME`` or ``NAME:WEIGHT`` in the ``loras`` param, where NAME is a LoRA in the model store
(one trained from your pictures, or imported), made into its file's path through the job's ``ctx.addon_model``
(a LoRA imported as a folder: the one ``.safetensors`` file in it). A text that names an existing file, or looks
like a path, stays a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plugins.image.loras import parse_lora

__all__ = ["resolve_lora_names"]


def resolve_lora_names(texts: list[str], ctx: Any, *, allow_pickle: bool = False) -> list[str]:
    """``texts`` with each LoRA that is not a file on this machine looked up by name (``ctx.addon_model("lora",
    NAME)``, which names what is missing when it is not there). Outside a job (no ``addon_model``): unchanged."""
    resolve = getattr(ctx, "addon_model", None)
    if resolve is None:
        return list(texts)
    resolved = []
    for text in texts:
        spec = parse_lora(text)
        if spec.path.exists() or _looks_like_a_path(str(spec.path)):
            resolved.append(text)
            continue
        path = _the_file(Path(resolve("lora", str(spec.path), allow_pickle=allow_pickle)))
        resolved.append(f"{path}:{spec.weight!r}")
    return resolved


def _the_file(path: Path) -> Path:
    """A LoRA imported as a folder: its one ``.safetensors`` file (else the folder, which the LoRA check names)."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.safetensors") if p.is_file())
        if len(found) == 1:
            return found[0]
    return path


def _looks_like_a_path(text: str) -> bool:
    """A missing file given as a path (its own error then says 'no LoRA file at …'), not a store name (which may
    end in ``.safetensors``: a trained LoRA is imported as ``NAME.safetensors``)."""
    return "/" in text or "\\" in text or text.startswith(("~", "."))
