"""Reading a model's small files safely: regular files only, sizes checked before reading, JSON that must be an
object.

A model reference can lead anywhere: a named pipe or ``/dev/zero`` is never read to its end, and a file is never
read whole into memory without a size limit. Each function looks at the file with ``stat`` first (never opening a
pipe or a device) and raises :class:`~desktop.api.ModelFormatError` naming the file and what is wrong with it::

    config = read_json_object(model_path / "config.json")  # a dict, or an error naming config.json

Plugins use these for the files they read themselves (a corpus, a palette, a config); the host uses them for the
checks in :mod:`desktop.api.weights`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from desktop.api.errors import ModelFormatError

__all__ = ["read_model_text", "read_json_object", "check_json_files"]

MAX_JSON_BYTES = 16 * 1024 * 1024
"""The largest JSON file :func:`read_json_object` reads unless told otherwise (configs are a few KB)."""
_HINT = "Download or export the model again, or restore the file from the model's original files."


def describe_file_type(mode: int) -> str:
    """What a ``stat`` mode is, for messages: ``"a named pipe"``, ``"a character device"``, ``"a folder"``…"""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def check_regular_file(path: Path, *, max_bytes: int | None = None) -> int:
    """The size of ``path`` when it is a regular file (links followed) of at most ``max_bytes``; otherwise a
    :class:`ModelFormatError` naming it: missing, unreadable, a pipe or device, or too large. Does not open it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelFormatError(f"{path} is missing.", hint=_HINT) from None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"Cannot read {path}: {_reason(exc)}.", hint=_HINT) from exc
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"{path} is {describe_file_type(info.st_mode)}, not a file.",
                               hint="Choose a model file or folder; pipes and devices cannot be read as models.")
    if max_bytes is not None and info.st_size > max_bytes:
        raise _too_large(path, info.st_size, max_bytes)
    return info.st_size


def read_model_bytes(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`check_regular_file`), at most ``max_bytes`` of them."""
    check_regular_file(path, max_bytes=max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced by a pipe since the check
                raise ModelFormatError(f"{path} is not a file.", hint=_HINT)
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise ModelFormatError(f"Cannot read {path}: {_reason(exc)}.", hint=_HINT) from exc
    if len(data) > max_bytes:  # grew since the check
        raise _too_large(path, len(data), max_bytes)
    return data


def read_model_text(path: Path, *, max_bytes: int) -> str:
    """The UTF-8 text of the regular file ``path`` of at most ``max_bytes``; :class:`ModelFormatError` naming it
    otherwise (also when it is not UTF-8 text)."""
    data = read_model_bytes(path, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{path} is not UTF-8 text (byte {exc.start} is not valid UTF-8).",
                               hint=_HINT) from None


def read_json_object(path: Path, *, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The JSON object (a dict) in the regular file ``path``; :class:`ModelFormatError` naming the file and what
    is wrong: missing, not a file, too large, not UTF-8, not JSON (with the line and column), or JSON of another
    kind (``"it holds a list"``)."""
    text = read_model_text(path, max_bytes=max_bytes)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                               hint=_HINT) from None
    except RecursionError:
        raise ModelFormatError(f"{path} is not valid JSON: it is nested too deeply.", hint=_HINT) from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path} should hold a JSON object ({{…}}), but it holds {describe_json(value)}.",
                               hint=_HINT)
    return value


def check_json_files(folder: Path, names: Iterable[str], *, max_bytes: int = MAX_JSON_BYTES) -> None:
    """Check that each of the files ``names`` in ``folder`` that is there holds a JSON object (see
    :func:`read_json_object`); the first that does not raises :class:`ModelFormatError` naming it. A file that is
    absent is skipped (a link to nothing is not: it is named as missing)::

        check_json_files(model_path, ("config.json", "tokenizer_config.json"))
    """
    for name in names:
        file = folder / name
        if file.exists() or file.is_symlink():
            read_json_object(file, max_bytes=max_bytes)


def describe_json(value: Any) -> str:
    """``"a list"``, ``"a string"``, ``"a number"``… for messages about a JSON value of the wrong kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    for kind, name in ((dict, "an object"), (list, "a list"), (str, "a string"), ((int, float), "a number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _too_large(path: Path, size: int, limit: int) -> ModelFormatError:
    return ModelFormatError(f"{path} is too large: {_mb(size)}, where at most {_mb(limit)} is expected.",
                            hint="Check that you chose the right file.")


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
