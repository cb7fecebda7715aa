"""Saving outputs as files, atomically, in dated folders.

Layout: ``root/YYYY-MM-DD/<generator_id>/<HHMMSS>-<job_id>-<index><suffix>``, with ``-2``, ``-3``… added before the
suffix rather than overwriting a file already there. A file whose bytes do not embed the metadata gets a JSON
sidecar, ``<file>.json``, written first: a saved file never exists without its metadata. A full disk raises
:class:`DiskFullError` (naming the folder, the space needed and the space free) and leaves nothing partial behind.

Saving *and indexing* is :mod:`desktop.library.saving`; what a killed process left half-done is tidied by
:mod:`desktop.library.reconciliation`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop import paths
from desktop.api import files as fileio
from desktop.api.errors import DiskFullError, StudioloError
from desktop.api.outputs import EncodedOutput
from desktop.destinations import DISK_FULL_ERRNOS
from desktop.library.embedded import read_embedded_metadata
from desktop.library.encoders import metadata_to_json

__all__ = ["OutputStore", "SIDECAR_SUFFIX", "metadata_for", "sidecar_path", "disk_full_errnos", "free_bytes"]

SIDECAR_SUFFIX = ".json"
_SUFFIX_RE = re.compile(r"^(\.[A-Za-z0-9_-]{1,16}){1,3}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_LOCK = threading.Lock()  # choosing a free name and writing it is one step for every store in the process


def disk_full_errnos() -> frozenset[int]:
    """The ``errno`` values that mean "no space left" (:data:`desktop.destinations.DISK_FULL_ERRNOS`)."""
    return DISK_FULL_ERRNOS


def free_bytes(folder: Path) -> int | None:
    """The bytes free (for this user) on the disk holding ``folder``, or its nearest existing parent; None when
    unknown."""
    for candidate in (Path(folder), *Path(folder).parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def sidecar_path(path: Path) -> Path:
    """The JSON sidecar of the file at ``path`` (``picture.wav`` → ``picture.wav.json``)."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


class OutputStore:
    """Writes encoded outputs under ``root`` (by default ``<data dir>/outputs``). Safe to use from any thread."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.data_dir() / "outputs"

    def folder_for(self, generator_id: str, created: datetime) -> Path:
        """The folder an output of ``generator_id`` made at ``created`` goes in."""
        return self.root / f"{created:%Y-%m-%d}" / _safe_part(generator_id)

    def save(
        self,
        encoded: EncodedOutput,
        metadata: dict[str, Any],
        *,
        generator_id: str,
        job_id: str,
        index: int = 0,
        created: datetime | None = None,
    ) -> Path:
        """Write ``encoded`` (and its sidecar when its bytes do not carry ``metadata``) and return its path.

        Raises :class:`DiskFullError` when the disk (or quota) is full and :class:`StudioloError` for any other
        failure; either way no file, partial or whole, is left behind.
        """
        if not _SUFFIX_RE.match(encoded.suffix):
            raise StudioloError(
                f"The generator {generator_id!r} gave an invalid file extension {encoded.suffix!r}.",
                hint="This is a bug in the generator plugin; report it to its author.",
            )
        when = datetime.now() if created is None else created
        if when.tzinfo is not None:
            when = when.astimezone()  # folders and names follow the local clock
        folder = self.folder_for(generator_id, when)
        stem = f"{when:%H%M%S}-{_safe_part(job_id)}-{int(index)}"
        sidecar_bytes = None
        if not encoded.embeds_metadata:
            sidecar_bytes = (metadata_to_json(metadata, indent=2) + "\n").encode("utf-8")
        with _NAME_LOCK:
            path = folder / (stem + encoded.suffix)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = _free_path(folder, stem, encoded.suffix)
                if sidecar_bytes is not None:
                    fileio.atomic_write_bytes(sidecar_path(path), sidecar_bytes)
                    try:
                        fileio.atomic_write_bytes(path, encoded.data)
                    except BaseException:
                        _remove_quietly(sidecar_path(path))
                        raise
                else:
                    fileio.atomic_write_bytes(path, encoded.data)
            except OSError as exc:
                raise _save_error(exc, path, len(encoded.data) + len(sidecar_bytes or b"")) from exc
        return path


def _safe_part(text: str) -> str:
    """``text`` made safe as one path component (no separators, no leading dot, not empty)."""
    cleaned = _UNSAFE.sub("_", str(text)).lstrip(".")[:80]
    return cleaned or "_"


def _free_path(folder: Path, stem: str, suffix: str) -> Path:
    counter = 1
    while True:
        name = stem + suffix if counter == 1 else f"{stem}-{counter}{suffix}"
        candidate = folder / name
        if not os.path.lexists(candidate) and not os.path.lexists(sidecar_path(candidate)):
            return candidate
        counter += 1


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _save_error(exc: OSError, path: Path, needed: int) -> StudioloError:
    if exc.errno in disk_full_errnos():
        from desktop.engine.memory import human_bytes

        free = free_bytes(path.parent)
        return DiskFullError(
            f"Not enough disk space to save {path.name} in {path.parent}: it needs {human_bytes(needed)}"
            + ("." if free is None else f", {human_bytes(free)} free."),
            hint="Free some disk space, or choose another output folder in Settings.",
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StudioloError(
        f"Could not save {path}: {reason}.",
        hint="Check that the output folder exists and is writable, or choose another one in Settings.",
    )


def metadata_for(path: Path | str) -> dict[str, Any] | None:
    """The metadata saved with the output at ``path``: its JSON sidecar, else what its bytes embed (PNG
    ``studiolo`` chunk, WAV ``stdo`` chunk, FLAC ``STUDIOLO`` comment); None when there is none or it cannot be
    read. Never raises."""
    path = Path(path)
    sidecar = sidecar_path(path)
    try:
        if sidecar.is_file():
            value = json.loads(sidecar.read_text(encoding="utf-8"))
            return value if isinstance(value, dict) else None
    except Exception:  # corrupt or unreadable sidecar: no metadata
        return None
    return read_embedded_metadata(path)
