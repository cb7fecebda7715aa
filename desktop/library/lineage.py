"""The chain of refinements: which library item a job's input file is, so that its outputs record their parent.

A generator says which file a job starts from (``Generator.input_file(params)``: the init image of image-to-image
or inpaint). :func:`input_parent` hashes that file and looks it up in the library — by its path (the gallery's
"Use as input" passes the library file itself), else by its bytes (a library file copied elsewhere, byte for byte,
still links). The job's worker records what it found in each output's metadata (``parent``: ``item_id``,
``sha256``, ``path``) and in the library row (``parent_id``, ``parent_sha256``; :mod:`desktop.library.db`,
schema 3). No Qt here; blocking (file and library reads): called on the generator's worker thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.library.db import Library

__all__ = ["InputParent", "file_sha256", "input_parent", "parent_from_metadata"]

_CHUNK = 1024 * 1024


def file_sha256(path: Path | str) -> str | None:
    """The hex SHA-256 of the file at ``path``; None when it cannot be read (or is not a regular file)."""
    try:
        if not Path(path).is_file():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


@dataclass(frozen=True)
class InputParent:
    """A job's input file: its path, its hash and the library item it is (``item_id`` None: no library item)."""

    path: str
    sha256: str
    item_id: int | None

    def metadata(self) -> dict[str, Any]:
        """What each output of the job records under ``parent`` in its metadata."""
        return {"item_id": self.item_id, "sha256": self.sha256, "path": self.path}


def input_parent(library: Library | None, path: Path | str | None) -> InputParent | None:
    """The library item the input file ``path`` is (by path, else by bytes); None when there is no input or it
    cannot be read. Without a library the file is still hashed (``item_id`` None)."""
    if path is None:
        return None
    given = Path(path).expanduser().absolute()
    sha256 = file_sha256(given)
    if sha256 is None:
        return None
    item = None
    if library is not None:
        candidates = [given]
        try:
            resolved = given.resolve()
        except (OSError, RuntimeError):
            resolved = given
        if resolved != given:
            candidates.append(resolved)
        for candidate in candidates:
            item = library.find_file(candidate)
            if item is not None:
                break
        if item is None:
            item = library.find_file(None, sha256)
    return InputParent(str(given), sha256, item.id if item is not None else None)


def parent_from_metadata(metadata: dict[str, Any]) -> tuple[int | None, str | None]:
    """``(parent_id, parent_sha256)`` as an output's metadata records them (``parent``), for re-indexing a file
    the library lost; ``(None, None)`` when it records none or something else."""
    parent = metadata.get("parent")
    if not isinstance(parent, dict):
        return None, None
    item_id, sha256 = parent.get("item_id"), parent.get("sha256")
    return (item_id if isinstance(item_id, int) and not isinstance(item_id, bool) and item_id > 0 else None,
            sha256 if isinstance(sha256, str) and len(sha256) == 64 else None)
