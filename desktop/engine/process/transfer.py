"""How messages cross between the GUI process and a worker process.

Messages are pickles sent over a :class:`multiprocessing.connection.Connection`. A pickle of a preview image is
megabytes, so large NumPy arrays and PIL images (:data:`SHARED_MIN_BYTES` and more) do not go into it: their bytes
are written once into a shared-memory segment, the pickle carries the segment's name, and the receiver copies
them out and removes the segment. The sender never keeps a segment: once it is sent, it belongs to the receiver.

Unpickling runs code named by the pickle, so the GUI process (:func:`loads` with ``host=True``) refuses anything
from torch, diffusers, transformers and the like: an output that holds a tensor fails its job with a clear message
instead of importing torch into the window's process.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import sys
from multiprocessing import resource_tracker, shared_memory
from typing import Any

SHARED_MIN_BYTES = 64 * 1024
"""Arrays and images of at least this many bytes cross through shared memory; smaller ones are pickled inline."""

HOST_REFUSED_MODULES = ("torch", "diffusers", "transformers", "accelerate", "safetensors", "peft", "tensorflow",
                        "jax", "llama_cpp")
"""Top-level packages the GUI process never imports, whatever a pickle from a worker names."""

SEGMENT_PREFIX = "stl"
_counter = itertools.count()
_IMAGE_MODES = {"1", "L", "LA", "I", "F", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I;16"}


class RefusedObject(pickle.UnpicklingError):
    """A pickle from a worker named a module the GUI process must not import."""


def segment_prefix(pid: int) -> str:
    """The names of the segments process ``pid`` creates start with this (a dead worker's leftovers are found
    by it)."""
    return f"{SEGMENT_PREFIX}{pid}_"


def _new_segment(data: memoryview) -> str:
    name = f"{segment_prefix(os.getpid())}{next(_counter)}"
    segment = shared_memory.SharedMemory(name=name, create=True, size=max(1, data.nbytes))
    try:
        segment.buf[: data.nbytes] = data
    finally:
        segment.close()
    # The receiver removes it. Python 3.11 registers every segment with this process's resource tracker, which
    # would remove it (and warn) when this process ends before the receiver has read it: it is the receiver's now.
    resource_tracker.unregister(segment._name, "shared_memory")  # the name the tracker was given (with its slash)
    return name


def _take_segment(name: str, nbytes: int) -> bytes:
    """The first ``nbytes`` of segment ``name``, copied out; the segment is removed."""
    segment = shared_memory.SharedMemory(name=name)
    try:
        return bytes(segment.buf[:nbytes])
    finally:
        segment.close()
        segment.unlink()


def _array_from_segment(name: str, nbytes: int, dtype: str, shape: tuple[int, ...]) -> Any:
    import numpy as np

    return np.frombuffer(bytearray(_take_segment(name, nbytes)), dtype=np.dtype(dtype)).reshape(shape)


def _image_from_segment(name: str, nbytes: int, mode: str, size: tuple[int, int], info: dict) -> Any:
    from PIL import Image

    image = Image.frombytes(mode, size, _take_segment(name, nbytes))
    image.info.update(info)
    return image


def _remove_segment(name: str) -> None:
    try:
        shared_memory.SharedMemory(name=name).unlink()
    except OSError:
        pass


class _SharingPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.segments: list[str] = []

    def reducer_override(self, obj: Any) -> Any:
        numpy = sys.modules.get("numpy")
        if numpy is not None and type(obj) is numpy.ndarray and obj.dtype.hasobject is False \
                and obj.nbytes >= SHARED_MIN_BYTES:
            array = numpy.ascontiguousarray(obj)
            name = _new_segment(memoryview(array).cast("B"))
            self.segments.append(name)
            return _array_from_segment, (name, array.nbytes, array.dtype.str, array.shape)
        image_module = sys.modules.get("PIL.Image")
        if image_module is not None and isinstance(obj, image_module.Image) and obj.mode in _IMAGE_MODES:
            width, height = obj.size
            if width * height * len(obj.getbands()) >= SHARED_MIN_BYTES:
                data = obj.tobytes()
                info = {k: v for k, v in obj.info.items() if isinstance(v, (str, int, float, bytes, tuple))}
                self.segments.append(_new_segment(memoryview(data)))
                return _image_from_segment, (self.segments[-1], len(data), obj.mode, obj.size, info)
        return NotImplemented


class _GuardedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in HOST_REFUSED_MODULES:
            raise RefusedObject(f"it holds a {module}.{name} object, which the window's process does not load")
        return super().find_class(module, name)


def dumps(obj: Any) -> bytes:
    """``obj`` pickled, its large arrays and images put in shared memory (see the module's docstring)."""
    buffer = io.BytesIO()
    pickler = _SharingPickler(buffer)
    try:
        pickler.dump(obj)
    except BaseException:  # nothing will receive the segments already written
        for name in pickler.segments:
            _remove_segment(name)
        raise
    return buffer.getvalue()


def loads(data: bytes, *, host: bool = False) -> Any:
    """The object :func:`dumps` pickled. ``host``: refuse :data:`HOST_REFUSED_MODULES` (the GUI process)."""
    unpickler = _GuardedUnpickler(io.BytesIO(data)) if host else pickle.Unpickler(io.BytesIO(data))
    return unpickler.load()


def pack(kind: str, request: int, payload: Any) -> bytes:
    """One message on the wire: ``(kind, request id, payload)``. The payload is pickled on its own (:func:`dumps`),
    so that a receiver that cannot unpickle it still knows which request it answered."""
    return pickle.dumps((kind, request, dumps(payload)), protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> tuple[str, int, bytes]:
    """The kind, the request id and the still pickled payload of a message :func:`pack` made."""
    kind, request, payload = pickle.loads(data)
    return kind, request, payload


def remove_leftover_segments(pid: int) -> int:
    """Remove the segments a dead worker ``pid`` created that nobody received (Linux; elsewhere nothing is
    found). Returns how many were removed."""
    removed = 0
    folder = "/dev/shm"
    try:
        names = [n for n in os.listdir(folder) if n.startswith(segment_prefix(pid))]
    except OSError:
        return 0
    for name in names:
        try:
            os.unlink(os.path.join(folder, name))
            removed += 1
        except OSError:
            pass
    return removed
