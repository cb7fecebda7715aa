"""Reading one tag from a WAV or FLAC file safely — where Studiolo (and a plugin) keeps an audio file's metadata.

* :func:`wav_chunk`: the payload of a RIFF chunk of a WAV file (Studiolo's audio generators write their JSON
  metadata in a ``stdo`` chunk);
* :func:`flac_comment`: the value of a Vorbis comment of a FLAC file (``STUDIOLO``), an ID3v2 tag before the
  stream skipped.

The files are walked by hand, without decoding the audio: sizes are bounded (:data:`MAX_TAG_BYTES`), so is the
number of chunks, blocks and comments looked at (:data:`MAX_TAG_BLOCKS`); a truncated, damaged or hostile file
simply has no such tag (None). Only I/O errors of the file itself propagate.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

__all__ = ["MAX_TAG_BYTES", "MAX_TAG_BLOCKS", "wav_chunk", "flac_comment"]

MAX_TAG_BYTES = 16 * 1024 * 1024
"""A chunk or comment block larger than this is not read: the tag in it counts as absent."""
MAX_TAG_BLOCKS = 4096
"""At most this many RIFF chunks, FLAC metadata blocks or Vorbis comments are looked at."""


def wav_chunk(f: BinaryIO, chunk_id: bytes, *, max_bytes: int = MAX_TAG_BYTES) -> bytes | None:
    """The payload of the first ``chunk_id`` chunk (4 bytes, e.g. ``b"stdo"``) of the WAV file ``f``, or None.

    ``f`` is a seekable binary file, read from its start. None when it is not a RIFF/WAVE file, has no such chunk,
    the chunk is cut short or larger than ``max_bytes``. Chunks are walked by their sizes; a writer that left out
    the pad byte after an odd-sized chunk is tolerated (the next id is looked for at both places).
    """
    if len(chunk_id) != 4:
        raise ValueError(f"a RIFF chunk id is 4 bytes, not {chunk_id!r}")
    f.seek(0)
    head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    for _ in range(MAX_TAG_BLOCKS):
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return None
        kind, size = struct.unpack("<4sI", header)
        if kind == chunk_id:
            if size > max_bytes:
                return None
            payload = f.read(size)
            return payload if len(payload) == size else None
        end = pos + 8 + size
        if size % 2:
            f.seek(end + 1)
            padded = f.read(4)
            f.seek(end)
            unpadded = f.read(4)
            if _plausible_id(padded) or not _plausible_id(unpadded):
                end += 1
        pos = end
    return None


def flac_comment(f: BinaryIO, key: str, *, max_bytes: int = MAX_TAG_BYTES) -> bytes | None:
    """The value of the first Vorbis comment ``key`` (e.g. ``"STUDIOLO"``; names compare without regard to case)
    in the FLAC file ``f``, as bytes (UTF-8 by the standard), or None.

    ``f`` is a seekable binary file, read from its start; an ID3v2 tag before the FLAC stream is skipped. None when
    it is not a FLAC file, has no such comment, or its comment block is cut short or larger than ``max_bytes``.
    """
    if not key or "=" in key or not key.isascii():
        raise ValueError(f"a Vorbis comment name is ASCII without '=', not {key!r}")
    f.seek(0)
    start = 0
    head = f.read(10)
    if head[:3] == b"ID3" and len(head) == 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        start = 10 + size + (10 if head[5] & 0x10 else 0)  # the footer flag: 10 bytes more
    f.seek(start)
    if f.read(4) != b"fLaC":
        return None
    for _ in range(MAX_TAG_BLOCKS):
        header = f.read(4)
        if len(header) < 4:
            return None
        last, kind, size = header[0] & 0x80, header[0] & 0x7F, int.from_bytes(header[1:], "big")
        if kind == 4:  # VORBIS_COMMENT
            if size > max_bytes:
                return None
            block = f.read(size)
            return _vorbis_value(block, key) if len(block) == size else None
        if last or kind == 127:
            return None
        f.seek(size, io.SEEK_CUR)
    return None


def _plausible_id(kind: bytes) -> bool:
    """Whether ``kind`` looks like a RIFF chunk id: four printable ASCII characters."""
    return len(kind) == 4 and all(32 <= b < 127 for b in kind)


def _vorbis_value(block: bytes, key: str) -> bytes | None:
    """``key``'s value in a Vorbis comment block (field names compare without regard to case)."""
    wanted = key.upper().encode("ascii") + b"="
    pos = 4 + int.from_bytes(block[0:4], "little")  # past the vendor string
    if len(block) < pos + 4:
        return None
    count = int.from_bytes(block[pos:pos + 4], "little")
    pos += 4
    for _ in range(min(count, MAX_TAG_BLOCKS)):
        if len(block) < pos + 4:
            return None
        length = int.from_bytes(block[pos:pos + 4], "little")
        entry = block[pos + 4:pos + 4 + length]
        if len(entry) < length:
            return None
        pos += 4 + length
        if entry[: len(wanted)].upper() == wanted:
            return entry[len(wanted):]
    return None
