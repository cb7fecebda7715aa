"""Reading back the metadata Studiolo embeds in the files it writes, without decoding them and never raising.

* PNG: the ``studiolo`` text chunk (the host's writer and the image generator), read by :func:`read_png_metadata`;
* WAV: the ``stdo`` RIFF chunk (the host's writer, :mod:`desktop.library.encoders`, and the audio generators,
  ``plugins/audio/metadata.py``);
* FLAC: the ``STUDIOLO`` Vorbis comment (the audio generators, and ``studiolo generate --output x.flac``).

Text has no such place: its metadata is in the JSON sidecar, which :func:`~desktop.library.store.metadata_for`
reads first.

The format is told by the file's first bytes, not its name. The chunks are read by :mod:`desktop.api.png` and
:mod:`desktop.api.audio_tags` (the readers plugins use too): sizes are bounded and a damaged or hostile file simply
has no metadata. Used to re-index an output the library lost (:mod:`desktop.library.reconciliation`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from desktop.api.audio_tags import flac_comment, wav_chunk
from desktop.api.png import PNG_SIGNATURE
from desktop.library.encoders import FLAC_KEY, WAV_CHUNK_ID, read_png_metadata

__all__ = ["FLAC_KEY", "WAV_CHUNK_ID", "read_embedded_metadata"]


def read_embedded_metadata(path: Path | str) -> dict[str, Any] | None:
    """The metadata embedded in the PNG, WAV or FLAC file at ``path``; None when there is none, the file is of
    another kind, damaged or unreadable. Never raises."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:8] == PNG_SIGNATURE:
                return read_png_metadata(path)
            is_wav = head[:4] == b"RIFF" and head[8:12] == b"WAVE"
            raw = wav_chunk(f, WAV_CHUNK_ID) if is_wav else flac_comment(f, FLAC_KEY)
        if raw is None:
            return None
        value = json.loads(raw.decode("utf-8"))
    except Exception:  # unreadable, not UTF-8, not JSON, absurdly nested: no metadata
        return None
    return value if isinstance(value, dict) else None

