"""Writing files so that a crash or a full disk never leaves half a file behind (for the host and plugins:
drafts, presets, clips)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json"]  # is_temporary_name is for the host's library

_TEMPORARY = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp$", re.DOTALL)  # mkstemp: prefix, 8 random characters, suffix


@contextmanager
def atomic_path(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """A temporary file beside ``path`` for something that writes by file name (a converter, a library's writer):
    when the ``with`` block ends normally it is fsync'd, given ``mode`` (mkstemp makes it owner-only) and moved onto
    ``path`` with ``os.replace``; on any error it is removed, ``path`` is left as it was and the error goes on (a
    full disk's ``OSError`` stays one). The temporary file's name starts with a dot and the first 60 characters of
    ``path``'s name, and ends with ``.tmp`` (a name as long as the file system allows still leaves room for it)."""
    with _temporary_beside(path, mode) as (fd, tmp):
        os.close(fd)
        yield Path(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, as :func:`atomic_path` does: a crash
    or a full disk leaves the old file, never half a new one."""
    with _temporary_beside(path, None) as (fd, _tmp), os.fdopen(fd, "wb") as f:
        f.write(data)


@contextmanager
def _temporary_beside(path: Path, mode: int | None) -> Iterator[tuple[int, str]]:
    """``(open descriptor, name)`` of a new temporary file beside ``path`` (the caller closes the descriptor); moved
    onto ``path``, fsync'd and given ``mode``, when the block ends normally; removed on any error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:60]}.", suffix=".tmp", dir=path.parent)
    try:
        yield fd, tmp
        if mode is not None:
            os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is the name of a temporary file :func:`atomic_write_bytes` writes (``.<name>.XXXXXXXX.tmp``);
    one left behind belongs to a write that never finished (the process was killed)."""
    return bool(_TEMPORARY.match(name))
