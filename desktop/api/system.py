"""Facts about the machine a generator may need: the memory free for new allocations."""

from __future__ import annotations

import os

__all__ = ["available_ram"]


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
