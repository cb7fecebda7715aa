"""Checks on weight files before loading them: pickle refused unless allowed, safetensors complete and sane.

The host runs :func:`check_model_files` on a model before it loads it (not again while it stays in memory); plugins
call these too where they open files themselves (a LoRA, a checkpoint given directly). Only headers are read: cheap
even for multi-GB files.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from desktop.api.errors import ModelFormatError

__all__ = ["PICKLE_SUFFIXES", "is_pickle", "pickle_refused", "safetensors_header", "check_safetensors",
           "check_model_files"]

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
"""File suffixes of pickle-format weights, which can run arbitrary code when loaded."""
_MAX_HEADER = 100 * 1024 * 1024


def is_pickle(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def pickle_refused(path: Path) -> ModelFormatError:
    """The error for a pickle-format file the user has not allowed."""
    return ModelFormatError(
        f"{path.name} is a pickle-format weights file, which can run arbitrary code when it is loaded.",
        hint="Use a .safetensors version of the model, or, if you trust where it came from, allow pickle weights "
             "in Settings.",
    )


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a complete safetensors file; :class:`ModelFormatError` naming ``path`` when the file is
    not one (too short, cut off, malformed header or tensor table)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise _corrupt(path, f"it is only {size} bytes long")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > _MAX_HEADER or 8 + header_len > size:
                raise _corrupt(path, "its header is cut off or invalid")
            header = json.loads(f.read(header_len))
    except OSError as exc:
        raise ModelFormatError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise _corrupt(path, "its header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, ValueError, IndexError):
            raise _corrupt(path, f"the entry for {name!r} is malformed") from None
    if 8 + header_len + end > size:
        raise _corrupt(path, f"it is truncated ({size} bytes, {8 + header_len + end} expected)")
    return header


def check_safetensors(path: Path) -> None:
    """Raise :class:`ModelFormatError` naming ``path`` unless it is a complete safetensors file."""
    safetensors_header(path)


def check_model_files(path: Path, *, allow_pickle: bool) -> None:
    """Check a model file, or every weight file in a model folder: pickle refused unless ``allow_pickle`` (in a
    folder, only when it has no safetensors to use instead), safetensors complete."""
    if path.is_file():
        if is_pickle(path) and not allow_pickle:
            raise pickle_refused(path)
        if path.suffix.lower() == ".safetensors":
            check_safetensors(path)
        return
    safetensors = sorted(path.rglob("*.safetensors"))
    for file in safetensors:
        check_safetensors(file)
    if not safetensors and not allow_pickle:
        pickles = sorted(p for p in path.rglob("*") if is_pickle(p) and p.is_file())
        if pickles:
            raise pickle_refused(pickles[0])


def _corrupt(path: Path, why: str) -> ModelFormatError:
    return ModelFormatError(f"{path} is not a valid safetensors file: {why}.",
                            hint="Download or export the model again.")
