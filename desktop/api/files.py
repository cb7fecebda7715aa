"""Writing files so that a crash or a full disk never leaves half a file behind (for the host and plugins:
drafts, presets, clips)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_json"]  # is_temporary_name is for the host's library

_TEMPORARY = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp$", re.DOTALL)  # mkstemp: prefix, 8 random characters, suffix


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync'd, then ``os.replace``.

    On any error the temporary file is removed and ``path`` is left as it was. The temporary file's name starts
    with a dot and the first 60 characters of ``path``'s name, and ends with ``.tmp`` (a name as long as the file
    system allows still leaves room for it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:60]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is the name of a temporary file :func:`atomic_write_bytes` writes (``.<name>.XXXXXXXX.tmp``);
    one left behind belongs to a write that never finished (the process was killed)."""
    return bool(_TEMPORARY.match(name))
