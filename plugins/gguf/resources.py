"""The machine's resources a llama.cpp model uses: free memory, CPU threads, and whether the installed
llama-cpp-python can offload to a GPU (told without importing it, for the panel in Studiolo's own process)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from desktop.api import available_ram

__all__ = ["available_memory", "automatic_threads", "gpu_build_installed", "GPU_BACKENDS"]

GPU_BACKENDS = ("cuda", "metal", "vulkan", "hip", "sycl", "musa", "opencl", "cann", "kompute")
"""ggml's GPU backends: a GPU build of llama-cpp-python ships a ``libggml-<backend>`` library for one of them."""


def available_memory() -> int | None:
    """Bytes of RAM new allocations can take without swapping (the host's figure, :func:`desktop.api.available_ram`;
    a name of its own here so that tests can stand in for it)."""
    return available_ram()


def automatic_threads() -> int:
    """The threads for "automatic": this process's CPUs counted as physical cores (hyper-threads add nothing to
    llama.cpp's matrix products), at least 1."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        import psutil  # optional: tells physical cores from logical ones
    except ImportError:
        return max(1, usable)
    physical = psutil.cpu_count(logical=False) or usable
    logical = psutil.cpu_count(logical=True) or usable
    return max(1, min(usable, usable * physical // max(1, logical)))


def gpu_build_installed() -> bool:
    """True when the installed llama-cpp-python carries a GPU backend library (CUDA, Metal, Vulkan…). Looks at
    its files only: never imports it (the panel asks, in Studiolo's own process). The worker process, which
    imports it, asks llama.cpp itself (``llama_supports_gpu_offload``) before offloading."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    for location in spec.submodule_search_locations:
        lib = Path(location) / "lib"
        try:
            names = [p.name.lower() for p in lib.iterdir()] if lib.is_dir() else []
        except OSError:
            continue
        if any(f"ggml-{backend}" in name for name in names for backend in GPU_BACKENDS):
            return True
    return False
