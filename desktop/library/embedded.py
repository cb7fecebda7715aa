"""Reading back the metadata Studiolo embeds in the files it writes, without decoding them and never raising.

* PNG: the ``studiolo`` text chunk (the host's writer and the image generator), read by :func:`read_png_metadata`;
* WAV: the ``stdo`` RIFF chunk (the audio generators, ``plugins/audio/metadata.py``);
* FLAC: the ``STUDIOLO`` Vorbis comment (the same).

The format is told by the file's first bytes, not its name. Sizes are bounded and a damaged or hostile file simply
has no metadata. Used to re-index an output the library lost (:mod:`desktop.library.reconciliation`).
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any, BinaryIO

from desktop.api.png import PNG_SIGNATURE
from desktop.library.encoders import read_png_metadata

__all__ = ["FLAC_KEY", "WAV_CHUNK_ID", "read_embedded_metadata"]

WAV_CHUNK_ID = b"stdo"
"""The RIFF chunk holding Studiolo's JSON metadata in a WAV file."""
FLAC_KEY = "STUDIOLO"
"""The Vorbis comment holding Studiolo's JSON metadata in a FLAC file."""
_MAX_METADATA = 16 * 1024 * 1024  # a larger chunk or comment block is not metadata Studiolo wrote
_MAX_BLOCKS = 4096  # at most this many RIFF chunks or FLAC metadata blocks are looked at


def read_embedded_metadata(path: Path | str) -> dict[str, Any] | None:
    """The metadata embedded in the PNG, WAV or FLAC file at ``path``; None when there is none, the file is of
    another kind, damaged or unreadable. Never raises."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:8] == PNG_SIGNATURE:
                return read_png_metadata(path)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                raw = _riff_chunk(f, WAV_CHUNK_ID)
            else:
                f.seek(0)
                raw = _flac_comment(f, FLAC_KEY)
        if raw is None:
            return None
        value = json.loads(raw.decode("utf-8"))
    except Exception:  # unreadable, not UTF-8, not JSON, absurdly nested: no metadata
        return None
    return value if isinstance(value, dict) else None


def _riff_chunk(f: BinaryIO, wanted: bytes) -> bytes | None:
    """The payload of the first ``wanted`` chunk of a RIFF file (chunks padded to an even size)."""
    pos = 12
    for _ in range(_MAX_BLOCKS):
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return None
        kind, size = struct.unpack("<4sI", header)
        if kind == wanted:
            if size > _MAX_METADATA:
                return None
            payload = f.read(size)
            return payload if len(payload) == size else None
        pos += 8 + size + (size & 1)
    return None


def _flac_comment(f: BinaryIO, key: str) -> bytes | None:
    """The value of Vorbis comment ``key`` in a FLAC stream (an ID3v2 tag before it is skipped), or None."""
    start = 0
    head = f.read(10)
    if head[:3] == b"ID3" and len(head) == 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        start = 10 + size + (10 if head[5] & 0x10 else 0)
    f.seek(start)
    if f.read(4) != b"fLaC":
        return None
    for _ in range(_MAX_BLOCKS):
        header = f.read(4)
        if len(header) < 4:
            return None
        last, kind, size = header[0] & 0x80, header[0] & 0x7F, int.from_bytes(header[1:], "big")
        if kind == 4:  # VORBIS_COMMENT
            if size > _MAX_METADATA:
                return None
            block = f.read(size)
            return _vorbis_value(block, key) if len(block) == size else None
        if last or kind == 127:
            return None
        f.seek(size, io.SEEK_CUR)
    return None


def _vorbis_value(block: bytes, key: str) -> bytes | None:
    """``key``'s value in a Vorbis comment block (names compare without regard to case)."""
    wanted = key.upper().encode("ascii") + b"="
    pos = 4 + int.from_bytes(block[0:4], "little")  # past the vendor string
    if len(block) < pos + 4:
        return None
    count = int.from_bytes(block[pos:pos + 4], "little")
    pos += 4
    for _ in range(min(count, _MAX_BLOCKS)):
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
