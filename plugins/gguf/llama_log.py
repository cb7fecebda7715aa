"""What llama.cpp says while it loads a model: its log lines, caught instead of printed.

llama-cpp-python's ``Llama`` raises a bare ``ValueError("Failed to load model from file")`` when llama.cpp refuses
a model; the reason (``unknown model architecture: 'x'``, a missing tensor…) is only in llama.cpp's log.
:func:`captured_log` catches the log for the duration of a ``with`` block (one load at a time: the worker runs one
job at a time) and :func:`load_error` finds the reason in it. ``llama_cpp`` is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

__all__ = ["captured_log", "load_error"]

_ERROR_MARK = "error loading model:"


@contextlib.contextmanager
def captured_log() -> Iterator[list[str]]:
    """Within the block, llama.cpp's log lines go into the list yielded (not to stderr); afterwards
    llama-cpp-python's own log callback is back."""
    import llama_cpp
    from llama_cpp import _logger

    lines: list[str] = []

    def collect(level: int, text: bytes, user_data: Any) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    callback = llama_cpp.llama_log_callback(collect)  # referenced until the block ends: llama.cpp may call it
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def load_error(lines: list[str]) -> str | None:
    """The reason llama.cpp gave for refusing a model (``unknown model architecture: 'x'``), or None."""
    for line in lines:
        if _ERROR_MARK in line:
            return line.split(_ERROR_MARK, 1)[1].strip() or None
    return None
