"""Memory facts the model cache needs: free RAM, this process's RSS or device memory, and a model's size on disk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from desktop.api.errors import ModelError
from desktop.api.system import available_ram  # noqa: F401 (the cache's, and its tests', name for it)
from desktop.api.weights import WEIGHT_SUFFIXES, model_folder_files


def total_ram() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def process_rss(pid: int | None = None) -> int | None:
    """The resident memory in bytes of this process, or of process ``pid`` (None when unknown)."""
    from desktop.api.system import resident_bytes

    return resident_bytes(str(pid) if pid else "self")


def in_use(device: str) -> int | None:
    """Bytes this process holds where a model on ``device`` lives: memory allocated on a CUDA device (0 while torch
    is not imported: nothing can be allocated there yet), else the process's RSS. None when unknown."""
    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        return torch.cuda.memory_allocated(device) if torch is not None else 0
    return process_rss()


def weights_size(path: Path | None) -> int:
    """Bytes of weight files at ``path`` (a file, or a folder's :func:`~desktop.api.weights.model_folder_files`: a few
    levels of a model folder, only the top of any other); 0 when there are none or the folder cannot be read."""
    if path is None:
        return 0
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in model_folder_files(path) if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    except (OSError, ModelError):
        return 0


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover
