"""Which device a job runs on: CUDA, then Apple's MPS, then the CPU — or what the user chose.

Probing for a GPU needs torch, so it happens only for generators that declare a GPU device, on the worker thread,
once per process. The host itself never imports torch for a generator that runs on the CPU only.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys

from desktop.api import StudioloError

AUTO = "auto"
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
"""The device names there can be: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` and ``mps``."""


class DeviceError(StudioloError):
    """A device was asked for that this machine does not have (or that is not a device at all)."""


def is_device_name(value: str) -> bool:
    """Whether ``value`` has the form of a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``). Never
    imports torch: used when the settings are read."""
    return DEVICE_NAME.fullmatch(value) is not None


def device_choices() -> tuple[str, ...]:
    """Every device that can be chosen here: ``auto``, ``cpu``, then ``cuda`` and ``cuda:N`` for each CUDA device
    and ``mps`` when there are (imports torch if it is installed)."""
    have = available_devices()
    choices = ["auto", "cpu"]
    if "cuda" in have:
        choices += ["cuda", *(f"cuda:{index}" for index in range(_cuda_count()))]
    if "mps" in have:
        choices.append("mps")
    return tuple(choices)


def check_device(value: str) -> str:
    """``value`` as a device this machine has, or :class:`DeviceError` listing the devices there are. ``auto``
    and ``cpu`` are accepted without importing torch; a GPU name is checked against the GPUs found."""
    name = value.strip().lower()
    if name in (AUTO, "cpu"):
        return name
    choices = device_choices()
    if name not in choices:
        kind = "" if is_device_name(name) else " (not a device name)"
        raise DeviceError(f"There is no device {value!r} on this machine{kind}.",
                          hint="Choose one of: " + ", ".join(choices) + ".")
    return name


def _cuda_count() -> int:
    import torch

    return int(torch.cuda.device_count())


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
