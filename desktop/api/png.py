"""Reading the text chunks of a PNG safely — the metadata Studiolo, AUTOMATIC1111, ComfyUI and others store.

Pillow refuses text chunks over 1 MiB and raises on many damaged files; this reader walks the chunks itself:
CRC-checked, size-limited, stopping quietly at the first broken chunk, never raising for a file's content.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Collection
from typing import BinaryIO

__all__ = ["png_text_chunks"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_CHUNK = 16 * 1024 * 1024
"""Text chunks larger than this (stored or decompressed) are skipped."""


def png_text_chunks(f: BinaryIO, keywords: Collection[str] | None = None) -> dict[str, str]:
    """The first ``tEXt``/``zTXt``/``iTXt`` chunk of each keyword (of ``keywords``, or all), decoded.

    ``f`` is a binary file positioned at the start. A file that is not a PNG gives ``{}``; a truncated or damaged
    file gives what was read before the damage; chunks with a bad CRC, bad UTF-8 or an oversized zlib stream are
    skipped. Only I/O errors of ``f`` itself propagate.
    """
    wanted = None if keywords is None else {k.encode("latin-1") for k in keywords}
    texts: dict[str, str] = {}
    if f.read(8) != PNG_SIGNATURE:
        return texts
    while True:
        header = f.read(8)
        if len(header) < 8:
            return texts
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND" or length > 0x7FFFFFFF:
            return texts
        if kind not in (b"tEXt", b"zTXt", b"iTXt") or length > MAX_TEXT_CHUNK:
            f.seek(length + 4, io.SEEK_CUR)
            continue
        data, crc = f.read(length), f.read(4)
        if len(data) < length or len(crc) < 4:
            return texts
        if zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
            continue
        name, sep, rest = data.partition(b"\0")
        if not sep or (wanted is not None and name not in wanted):
            continue
        key = name.decode("latin-1")
        if key in texts:
            continue
        try:
            text = _decode(kind, rest)
        except (ValueError, UnicodeDecodeError, zlib.error):
            continue
        if text is not None:
            texts[key] = text


def _decode(kind: bytes, rest: bytes) -> str | None:
    if kind == b"tEXt":
        try:  # Latin-1 by the standard, but some tools write UTF-8 here
            return rest.decode("utf-8")
        except UnicodeDecodeError:
            return rest.decode("latin-1")
    if kind == b"zTXt":
        return _inflate(rest[1:]).decode("latin-1") if rest[:1] == b"\0" else None
    if len(rest) < 2:
        return None
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        if method != 0:
            return None
        text = _inflate(text)
    return text.decode("utf-8")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_CHUNK)
    if inflater.unconsumed_tail:
        raise ValueError("text chunk too large")
    return out
