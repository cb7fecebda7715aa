"""Which device a job runs on: CUDA, then Apple's MPS, then the CPU — or what the user chose.

Probing for a GPU needs torch, so it happens only for generators that declare a GPU device, on the worker thread,
once per process. The host itself never imports torch for a generator that runs on the CPU only.
"""

from __future__ import annotations

import functools
import importlib.util
import sys

from desktop.api import StudioloError

AUTO = "auto"


@functools.lru_cache(maxsize=1)
def available_devices() -> tuple[str, ...]:
    """The devices this machine has, best first (imports torch if it is installed)."""
    if importlib.util.find_spec("torch") is None:
        return ("cpu",)
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return (*found, "cpu")


def pick_device(supported: tuple[str, ...], preference: str = AUTO) -> str:
    """The device for a generator that can use ``supported`` (best first), honouring the user's ``preference``
    (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``)."""
    supported = supported or ("cpu",)
    if preference in ("", AUTO):
        if all(d == "cpu" for d in supported):
            return "cpu"
        have = available_devices()
        return next((d for d in supported if d in have), "cpu")
    family = preference.split(":", 1)[0]
    if family == "cpu" or family not in supported:
        return "cpu"  # the generator cannot use the chosen device: it runs where it can
    if family not in available_devices():
        raise StudioloError(f"The device {preference!r} chosen in Settings is not available on this machine.",
                            hint="Choose 'Automatic' or 'CPU' as the device in Settings.")
    return preference


def empty_device_cache() -> None:
    """Give cached device memory back (only if torch is already loaded)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        mps.empty_cache()
