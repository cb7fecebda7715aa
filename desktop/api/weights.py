"""Checks on weight files before loading them: pickle refused unless allowed, safetensors complete and sane.

The host runs :func:`check_model_files` on a model before it loads it (not again while it stays in memory); plugins
call these too where they open files themselves (a LoRA, a checkpoint given directly). Only headers are read: cheap
even for multi-GB files.

A folder is searched only when it looks like a model folder (:func:`is_model_folder`: a ``model_index.json``,
``config.json`` or weight file at its top), and then only a few levels down and up to a bound number of entries
(:func:`model_folder_files`): ``/`` or a home folder given as a model is never walked through.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

from desktop.api.errors import ModelFormatError, ModelNotFoundError
from desktop.api.model_files import check_regular_file, describe_file_type, describe_json

__all__ = ["PICKLE_SUFFIXES", "is_pickle", "pickle_refused", "safetensors_header", "check_safetensors",
           "check_model_files"]

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
"""File suffixes of pickle-format weights, which can run arbitrary code when loaded."""
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES, ".gguf", ".onnx", ".msgpack", ".h5")
"""File suffixes of weight files (any format): one at the top of a folder makes it a model folder."""
MODEL_FOLDER_MARKERS = ("model_index.json", "config.json")
"""File names that make the folder holding them a model folder (diffusers, transformers and most others)."""
MAX_FOLDER_DEPTH = 4
"""How many folder levels below a model folder :func:`model_folder_files` looks (diffusers parts are one down)."""
MAX_FOLDER_ENTRIES = 10_000
"""How many files and folders a model folder may hold (the largest hub repos hold a few hundred)."""
SAFETENSORS_DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
    "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
"""The element types of the safetensors format (those of safetensors 0.8) and their sizes in bits."""
_MAX_HEADER = 100_000_000  # the format's own limit on the JSON header


def is_pickle(path: Path) -> bool:
    """Whether ``path`` is a pickle-format weights file, by its suffix (:data:`PICKLE_SUFFIXES`)."""
    return path.suffix.lower() in PICKLE_SUFFIXES


def pickle_refused(path: Path) -> ModelFormatError:
    """The error for a pickle-format file the user has not allowed."""
    return ModelFormatError(
        f"{path.name} is a pickle-format weights file, which can run arbitrary code when it is loaded.",
        hint="Use a .safetensors version of the model, or, if you trust where it came from, allow pickle weights "
             "in Settings.",
    )


# ------------------------------------------------------------------------------------------ safetensors


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a complete, consistent safetensors file; :class:`ModelFormatError` naming ``path`` and,
    where there is one, the tensor at fault when it is not one: not a regular file, too short, cut off, a header
    that is not a JSON object, a tensor with an unknown dtype, a shape or offsets that do not match its bytes,
    tensors that overlap or leave gaps, bytes missing at the end or left over after the last tensor.

    The checks are those of the safetensors library itself (which refuses such files), made before any weight is
    read, with a message saying what is wrong."""
    size = check_regular_file(path)  # never opens a pipe or a device
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise _corrupt(path, f"it is only {size} bytes long")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > _MAX_HEADER:
                raise _corrupt(path, f"its header would be {header_len} bytes long, more than the format allows")
            if 8 + header_len > size:
                raise _corrupt(path, f"its header is cut off (it should be {header_len} bytes long, and the file "
                                     f"is {size} bytes)")
            raw = f.read(header_len)
    except OSError as exc:
        raise ModelFormatError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _corrupt(path, "its header is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"its header is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise _corrupt(path, "its header is not valid JSON (it is nested too deeply)") from None
    if not isinstance(header, dict):
        raise _corrupt(path, f"its header should be a JSON object, but it is {describe_json(header)}")
    _check_tensor_table(path, header, header_len, data_len=size - 8 - header_len)
    return header


def _check_tensor_table(path: Path, header: dict[str, Any], header_len: int, data_len: int) -> None:
    """Each tensor's entry well formed, its bytes matching its dtype and shape, the tensors covering the data
    exactly (in offset order: no overlap, no gap, nothing missing or left over)."""
    metadata = header.get("__metadata__")
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise _corrupt(path, "its __metadata__ is not a table of text values")
    spans = []
    for name, info in header.items():
        if name != "__metadata__":
            spans.append((*_tensor_span(path, name, info), name))
    spans.sort()
    position, previous = 0, None
    for begin, end, name in spans:
        if begin < position:
            raise _corrupt(path, f"the tensor {name!r} (bytes {begin}–{end}) overlaps the tensor {previous!r} "
                                 f"(which ends at byte {position})")
        if begin > position:
            after = f"the tensor {previous!r}" if previous is not None else "the header"
            raise _corrupt(path, f"the tensor {name!r} starts at byte {begin}, but {after} ends at byte {position}: "
                                 f"{begin - position} bytes in between belong to no tensor")
        position, previous = end, name
    if position > data_len:
        size = 8 + header_len + data_len
        raise _corrupt(path, f"it is truncated ({size} bytes, {size - data_len + position} expected): the tensor "
                             f"{previous!r} ends past the end of the file")
    if position < data_len:
        last = f"its last tensor {previous!r}" if previous is not None else "its header"
        raise _corrupt(path, f"it has {data_len - position} bytes after the end of {last}")


def _tensor_span(path: Path, name: str, info: Any) -> tuple[int, int]:
    """The data offsets of the tensor ``name``, checked against its dtype and shape."""
    if not isinstance(info, dict):
        raise _corrupt(path, f"the entry for the tensor {name!r} is {describe_json(info)}, not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPE_BITS:
        raise _corrupt(path, f"the tensor {name!r} has the dtype {dtype!r}, which is not a safetensors dtype "
                             f"({', '.join(SAFETENSORS_DTYPE_BITS)})")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise _corrupt(path, f"the tensor {name!r} has the shape {shape!r}, which is not a list of sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets):
        raise _corrupt(path, f"the tensor {name!r} has the data offsets {offsets!r}, which are not two byte "
                             "positions")
    begin, end = offsets
    if end < begin:
        raise _corrupt(path, f"the tensor {name!r} has the data offsets [{begin}, {end}], which end before they "
                             "begin")
    bits = math.prod(shape) * SAFETENSORS_DTYPE_BITS[dtype]
    if bits % 8:
        raise _corrupt(path, f"the tensor {name!r} of shape {shape} and dtype {dtype} does not fill a whole number "
                             "of bytes")
    if bits // 8 != end - begin:
        raise _corrupt(path, f"the tensor {name!r} of shape {shape} and dtype {dtype} takes {bits // 8} bytes, but "
                             f"its data offsets [{begin}, {end}] hold {end - begin}")
    return begin, end


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_safetensors(path: Path) -> None:
    """Raise :class:`ModelFormatError` naming ``path`` unless it is a complete safetensors file."""
    safetensors_header(path)


# ---------------------------------------------------------------------------------------------- folders


def is_model_folder(path: Path) -> bool:
    """True when the folder ``path`` looks like a model at its top level: a ``model_index.json`` or
    ``config.json``, or a weight file (:data:`WEIGHT_SUFFIXES`). Reads the top level only, and at most
    :data:`MAX_FOLDER_ENTRIES` entries of it."""
    if any(os.path.isfile(path / name) for name in MODEL_FOLDER_MARKERS):
        return True
    try:
        with os.scandir(path) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_FOLDER_ENTRIES:
                    return False
                if entry.name.lower().endswith(WEIGHT_SUFFIXES) and entry.is_file():
                    return True
    except OSError:
        return False
    return False


def model_folder_files(path: Path) -> list[Path]:
    """The files Studiolo checks in the folder ``path``: down to :data:`MAX_FOLDER_DEPTH` levels in a model folder
    (:func:`is_model_folder`), only the top level in any other folder (never searched: it is not a model). Links
    are followed; a link to nothing is listed (reading it names it).

    Raises :class:`ModelFormatError` naming the folder when it holds more than :data:`MAX_FOLDER_ENTRIES` entries,
    and naming the entry when it is a named pipe, a device or a socket (which a loader would read forever)."""
    found: list[Path] = []
    budget = [MAX_FOLDER_ENTRIES]
    _walk(path, path, MAX_FOLDER_DEPTH if is_model_folder(path) else 0, found, budget)
    return found


def _walk(root: Path, folder: Path, depth: int, found: list[Path], budget: list[int]) -> None:
    try:
        with os.scandir(folder) as scan:
            entries = list(scan)
    except OSError as exc:
        raise ModelFormatError(f"Cannot read the folder {folder}: {exc.strerror or exc}.",
                               hint="Check the folder's permissions, or choose another model.") from exc
    budget[0] -= len(entries)
    if budget[0] < 0:
        raise ModelFormatError(f"{root} holds more than {MAX_FOLDER_ENTRIES} files and folders: it does not look "
                               "like a model folder.",
                               hint="Choose the folder that holds the model's files (its model_index.json or "
                                    "config.json), or a model file.")
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            mode = entry.stat().st_mode  # follows links
        except OSError:  # a link to nothing: listed, so that reading it names it
            found.append(Path(entry.path))
            continue
        if stat.S_ISDIR(mode):
            if depth > 0:
                _walk(root, Path(entry.path), depth - 1, found, budget)
        elif stat.S_ISREG(mode):
            found.append(Path(entry.path))
        else:
            raise ModelFormatError(f"{entry.path} is {describe_file_type(mode)}, not a file: a model folder holds "
                                   "only files and folders.",
                                   hint="Remove it from the folder, or choose another model.")


def check_model_files(path: Path, *, allow_pickle: bool) -> None:
    """Check a model file, or the weight files of a model folder (:func:`model_folder_files`): a regular file or
    a folder (never a pipe or a device), pickle refused unless ``allow_pickle`` (in a folder, only when it has no
    safetensors to use instead), safetensors complete and consistent (:func:`safetensors_header`)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ModelNotFoundError(f"No model at {path}.") from None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from exc
    if stat.S_ISREG(mode):
        if is_pickle(path) and not allow_pickle:
            raise pickle_refused(path)
        if path.suffix.lower() == ".safetensors":
            check_safetensors(path)
        return
    if not stat.S_ISDIR(mode):
        raise ModelFormatError(f"{path} is {describe_file_type(mode)}, not a model file or folder.",
                               hint="Choose a model file or folder; pipes and devices cannot be read as models.")
    files = model_folder_files(path)
    safetensors = [file for file in files if file.suffix.lower() == ".safetensors"]
    for file in safetensors:
        check_safetensors(file)
    if not safetensors and not allow_pickle:
        pickles = [file for file in files if is_pickle(file) and file.is_file()]
        if pickles:
            raise pickle_refused(pickles[0])


def _corrupt(path: Path, why: str) -> ModelFormatError:
    return ModelFormatError(f"{path} is not a valid safetensors file: {why}.",
                            hint="Download or export the model again.")
