"""Reading a GGUF file's header — architecture, context length, quantisation, shape, chat template — without loading
its weights; finding the one ``.gguf`` file of a model folder; estimating the KV cache a context needs.

The header is read with the ``gguf`` package's :class:`gguf.GGUFReader` (memory-mapped: only the header's pages are
touched), made strict and fast by a small subclass: a read that runs past the end of the file is an error (the
stock reader returns short arrays, and a nonsense count could make it loop for ever), counts that cannot fit in the
file are refused before looping, and arrays are taken whole instead of element by element (the stock reader needs
~20 s for a 150k-token vocabulary; this ~0.1 s). Arrays of strings (the vocabulary, the merges) are skipped, not
kept. Anything wrong — not GGUF, truncated anywhere, corrupt — is a :class:`~desktop.api.ModelFormatError` naming
the file, never another exception.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import ModelFormatError, ModelNotFoundError

__all__ = ["GGUFInfo", "read_header", "resolve_gguf", "kv_cache_bytes", "GGUF_MAGIC"]

GGUF_MAGIC = b"GGUF"
"""The first four bytes of every GGUF file."""

_MAX_COUNT = 10_000_000  # more tensors, keys or array items than any real model has: the header is corrupt
_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF file's header says about the model. Counts the header does not give are 0."""

    path: Path
    architecture: str
    name: str
    context_length: int
    quantisation: str
    """llama.cpp's file type (``"Q4_K_M"``, ``"Q8_0"``, ``"F16"``), or the most common matrix type when unset."""
    parameter_count: int
    block_count: int
    head_count: int
    head_count_kv: int
    embedding_length: int
    key_length: int
    """Width of one attention head's keys (the header's ``attention.key_length``, else embedding / heads)."""
    value_length: int
    has_chat_template: bool
    chat_template: str | None
    file_size: int


def read_header(path: Path) -> GGUFInfo:
    """Read the header of the GGUF file ``path``. Raises :class:`ModelFormatError` naming the file when it is not
    a GGUF file, is truncated or corrupt (or is a folder, or not a regular file); :class:`ModelNotFoundError` when
    there is nothing at ``path``."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"There is no file {path}.", hint="Check the path, or import the model again.")
    if not path.is_file():  # a folder, a FIFO (opening it would wait for a writer), a device
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise ModelFormatError(f"{path} is {kind}, not a GGUF model file.", hint="Choose a .gguf file.")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelFormatError(f"Cannot read {path}: {exc.strerror or exc}.",
                               hint="Check that the file is readable.") from exc
    if magic != GGUF_MAGIC:
        raise ModelFormatError(f"{path} is not a GGUF model file (it does not start with 'GGUF').",
                               hint="Choose a .gguf file; transformers models (safetensors) load in the Text "
                                    "generator.")
    try:
        reader = _HeaderReader(path)
        info = _info(path, reader)
    except ModelFormatError:
        raise
    except Exception as exc:  # the reader fails in many ways on damaged bytes (ValueError, IndexError, KeyError...)
        raise ModelFormatError(f"{path} is a damaged GGUF file: {_reason(exc)}.",
                               hint="It may be incomplete: download or copy it again.") from exc
    return info


def resolve_gguf(path: Path) -> Path:
    """The GGUF file ``path`` names: ``path`` itself when it is a file; in a folder, its one ``.gguf`` file (or the
    first part of one model split into ``-00001-of-0000N.gguf`` parts). None or several →
    :class:`ModelFormatError` naming the folder (and listing the files)."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"There is no file or folder {path}.", hint="Check the path, or import it again.")
    if not path.is_dir():
        return path
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and not p.name.startswith(".")
                   and p.is_file())
    if len(files) > 1:
        first_parts = [p for p in files if (m := _SPLIT_PART.search(p.name)) and int(m.group(1)) == 1]
        prefixes = {_SPLIT_PART.sub("", p.name) for p in files}
        if len(first_parts) == 1 and len(prefixes) == 1 and all(_SPLIT_PART.search(p.name) for p in files):
            return first_parts[0]
    if len(files) == 1:
        return files[0]
    if not files:
        raise ModelFormatError(f"{path} holds no .gguf file.", hint="Choose a folder holding one GGUF model file, "
                                                                    "or the .gguf file itself.")
    names = ", ".join(p.name for p in files)
    raise ModelFormatError(f"{path} holds {len(files)} GGUF files ({names}); which one is the model?",
                           hint="Choose one of the .gguf files itself.")


def kv_cache_bytes(info: GGUFInfo, n_ctx: int, bytes_per_value: int = 2) -> int:
    """The memory llama.cpp's key/value cache takes for ``n_ctx`` tokens of context (F16 cache: 2 bytes a value)."""
    per_token = info.block_count * info.head_count_kv * (info.key_length + info.value_length)
    return max(0, int(n_ctx)) * per_token * bytes_per_value


# ---- reading ---------------------------------------------------------------------------------------------------


def _info(path: Path, reader: Any) -> GGUFInfo:
    arch = _string(reader, "general.architecture")
    if not arch:
        raise ModelFormatError(f"{path} has no architecture in its header.",
                               hint="It is not a complete GGUF model file: download or copy it again.")
    width = _count(reader, f"{arch}.embedding_length")
    heads = _count(reader, f"{arch}.attention.head_count")
    head_width = width // heads if heads else 0
    template = _string(reader, "tokenizer.chat_template")
    return GGUFInfo(
        path=path, architecture=arch, name=_string(reader, "general.name") or "",
        context_length=_count(reader, f"{arch}.context_length"), quantisation=_quantisation(reader),
        parameter_count=sum(int(t.n_elements) for t in reader.tensors),
        block_count=_count(reader, f"{arch}.block_count"), head_count=heads,
        head_count_kv=_count(reader, f"{arch}.attention.head_count_kv") or heads, embedding_length=width,
        key_length=_count(reader, f"{arch}.attention.key_length") or head_width,
        value_length=_count(reader, f"{arch}.attention.value_length") or head_width,
        has_chat_template=bool(template), chat_template=template or None, file_size=path.stat().st_size)


def _string(reader: Any, key: str) -> str | None:
    import gguf

    field = reader.fields.get(key)
    if field is None:
        return None
    if field.types != [gguf.GGUFValueType.STRING]:
        raise ModelFormatError(f"{reader.path}: the header's {key} is not text.",
                               hint="The file is damaged or not made for llama.cpp.")
    return field.contents()


def _count(reader: Any, key: str) -> int:
    """A non-negative whole number of the header (the largest, for a per-layer array); 0 when absent."""
    field = reader.fields.get(key)
    if field is None:
        return 0
    value = field.contents()
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**40 for v in values):
        raise ModelFormatError(f"{reader.path}: the header's {key} is not a sensible count ({_short(value)}).",
                               hint="The file is damaged: download or copy it again.")
    return max(values)


def _quantisation(reader: Any) -> str:
    import gguf

    field = reader.fields.get("general.file_type")
    if field is not None:
        try:
            name = gguf.LlamaFileType(field.contents()).name
        except (ValueError, TypeError):
            name = ""
        if name and name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    types = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) >= 2)
    return types.most_common(1)[0][0] if types else "unknown"


def _reason(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".")
    return text if text else type(exc).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Truncated(ValueError):
    pass


def _ends_early(size: int) -> str:
    return f"it ends after {size} bytes, before the end of what its header describes"


def _header_reader_class() -> type:
    """:class:`gguf.GGUFReader`, strict about the end of the file and fast on arrays (built on first use: the
    ``gguf`` import stays lazy)."""
    import gguf
    import numpy as np

    scalar = gguf.GGUFReader.gguf_scalar_to_np

    class HeaderReader(gguf.GGUFReader):
        def __init__(self, path: Path) -> None:
            self.path = path
            super().__init__(path, "r")

        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            if int(offset) + np.dtype(dtype).itemsize * int(count) > len(self.data):
                raise _Truncated(_ends_early(len(self.data)))
            return super()._get(offset, dtype, count, override_order)

        def _build_fields(self, offs: int, count: int) -> int:
            self._check_count(offs, count, 13, "metadata keys")  # a key's length, its type and a 1-byte value
            return super()._build_fields(offs, count)

        def _build_tensor_info(self, offs: int, count: int) -> Any:
            self._check_count(offs, count, 24, "tensors")  # name length, dims count, type, offset
            return super()._build_tensor_info(offs, count)

        def _check_count(self, offs: int, count: int, least_bytes: int, what: str) -> None:
            count = int(count)
            if count > _MAX_COUNT or count * least_bytes > len(self.data) - offs:
                raise _Truncated(f"it claims {count} {what}, more than the file can hold")

        def _get_field_parts(self, orig_offs: int, raw_type: int) -> Any:
            if gguf.GGUFValueType(raw_type) != gguf.GGUFValueType.ARRAY:
                return super()._get_field_parts(orig_offs, raw_type)
            raw_itype = self._get(orig_offs, np.uint32)
            length = self._get(orig_offs + 4, np.uint64)
            itype, count, start = gguf.GGUFValueType(int(raw_itype[0])), int(length[0]), orig_offs + 12
            types = [gguf.GGUFValueType.ARRAY, itype]
            if itype in scalar:
                self._check_count(start, count, np.dtype(scalar[itype]).itemsize, "array items")
                values = self._get(start, scalar[itype], count)
                return 12 + int(values.nbytes), [raw_itype, length, values], [2], types
            if itype == gguf.GGUFValueType.STRING:  # the vocabulary, the merges: walk the lengths, keep nothing
                self._check_count(start, count, 8, "array items")
                return 12 + self._skip_strings(start, count), [raw_itype, length], [], types
            return super()._get_field_parts(orig_offs, raw_type)  # nested arrays: rare, the reader's own way

        def _skip_strings(self, start: int, count: int) -> int:
            end, offs = len(self.data), start
            unpack = struct.Struct("<Q" if (self.byte_order == "I") == np.little_endian else ">Q").unpack_from
            with memoryview(self.data) as view:
                for _ in range(count):
                    if offs + 8 > end:
                        raise _Truncated(_ends_early(end))
                    offs += 8 + unpack(view, offs)[0]
            if offs > end:
                raise _Truncated(_ends_early(end))
            return offs - start

    return HeaderReader


_reader_class: type | None = None


def _HeaderReader(path: Path) -> Any:  # noqa: N802 - used like a class
    global _reader_class
    if _reader_class is None:
        _reader_class = _header_reader_class()
    return _reader_class(path)
