"""Facts about the machine a generator may need: the memory free for new allocations, and what this process holds."""

from __future__ import annotations

import os

__all__ = ["available_ram", "resident_memory"]


def available_ram() -> int | None:
    """Bytes of RAM available to new allocations without swapping (``MemAvailable`` on Linux), None when unknown.
    What the host's model cache budgets against; a generator can check a load of its own against it first."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resident_memory() -> int | None:
    """(API 0.2.4) Bytes of RAM this process holds now (its resident set), None when unknown: what a trainer measures
    before and after a warm-up step on the CPU to estimate a step's peak (``TrainingContext.check_fit``)."""
    return resident_bytes("self")


def resident_bytes(process: str) -> int | None:
    """The resident set of ``process`` (a pid as text, or ``"self"``) in bytes, from ``/proc``; None when unknown."""
    try:
        with open(f"/proc/{process}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
