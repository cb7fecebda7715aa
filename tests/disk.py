"""A real, tiny filesystem for full-disk tests.

``small_disk`` mounts a tmpfs of a given size (root only: CI and these machines run as root). Where mounting is not
allowed, tests fall back to :func:`inject_enospc`, which makes the chosen write function fail exactly as a full
disk does (``OSError(errno.ENOSPC)``), so every full-disk test runs on every machine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size_kb: int) -> Iterator[Path]:
    """Mount a ``size_kb`` KiB tmpfs on ``folder`` (created) for the block's duration."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], check=True,
                   capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the filesystem holding ``folder`` until at most ``leave_bytes`` are free."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with contextlib.suppress(OSError), open(folder / ".filler", "wb") as out:
        out.write(b"\0" * max(0, free - leave_bytes))


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
