"""Audio metadata for the audio generators: WAV and FLAC files that carry how they were made, and reading the
parameters back from them.

Writing:

* :func:`encode_wav` — 16-bit PCM WAV, written by hand: ``fmt``, a *short* ``LIST``/``INFO`` chunk (``INAM``: the
  prompt cut to :data:`TITLE_LIMIT` characters, ``ICMT``: a one-line summary, ``ISFT``: ``Studiolo``) that
  libsndfile, players and tag editors show, Studiolo's full metadata as JSON in a chunk of its own
  (:data:`WAV_CHUNK_ID`), then ``data``. INFO fields stay short on purpose: libsndfile silently drops *every* INFO
  field of a file whose comment is longer than ~2 KB, so the long prompt only lives in the JSON chunk.
* :func:`encode_flac` — FLAC (libsndfile through soundfile) with Vorbis comments written by mutagen: ``TITLE`` and
  ``DESCRIPTION`` (the whole prompt), ``COMMENT`` (the summary), ``SOFTWARE``/``ENCODER`` and ``STUDIOLO`` (the
  JSON).

Reading (:func:`read_reuse`, :func:`read_params`): the WAV chunk and the FLAC comment are read by
:func:`desktop.api.wav_chunk` and :func:`desktop.api.flac_comment`, defensively (sizes bounded, truncation and odd
sizes tolerated, a bounded number of chunks), and the JSON is fitted to :class:`SpeechParams` or
:class:`MusicParams` field by field (out of range: clamped; not fitting: the default).
Nothing is raised whatever the file holds.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, BinaryIO

import numpy as np

from desktop.api import (
    MAX_TAG_BLOCKS,
    MAX_TAG_BYTES,
    AudioOutput,
    EncodedOutput,
    fit_params,
    flac_comment,
    loose_number,
    wav_chunk,
)
from plugins.audio.params import MusicParams, SpeechParams

__all__ = ["Reuse", "FORMATS", "GENERATOR_PARAMS", "WAV_CHUNK_ID", "FLAC_KEY", "encode", "encode_wav",
           "encode_flac", "summary", "read_reuse", "read_params"]

FORMATS = ("flac", "wav")
WAV_CHUNK_ID = b"stdo"
"""The RIFF chunk holding Studiolo's JSON metadata in a WAV file."""
FLAC_KEY = "STUDIOLO"
"""The Vorbis comment holding Studiolo's JSON metadata in a FLAC file."""
TITLE_LIMIT = 200
"""INFO fields (and the FLAC ``COMMENT``) are cut to this many characters."""
MAX_SEED = 2**63 - 1
MAX_METADATA = MAX_TAG_BYTES
"""A metadata chunk or block larger than this is ignored."""
MAX_CHUNKS = MAX_TAG_BLOCKS
"""At most this many RIFF chunks or FLAC blocks are looked at (by :mod:`desktop.api.audio_tags`)."""

GENERATOR_PARAMS: dict[str, type] = {"audio.speech": SpeechParams, "audio.music": MusicParams}
"""The params type for each known audio generator id (others are guessed from the id and the params' keys)."""


@dataclass(frozen=True)
class Reuse:
    """What an audio file says about how it was made: the generator's id, the params to run again, the seed and
    the model."""

    generator: str | None
    params: SpeechParams | MusicParams
    seed: int | None
    model: str | None


# --------------------------------------------------------------------------------------------- writing


def encode(output: AudioOutput, metadata: Mapping[str, Any], format: str = "flac") -> EncodedOutput:
    """``output`` encoded as ``format`` (``"flac"`` or ``"wav"``) with ``metadata`` embedded."""
    if format == "flac":
        return encode_flac(output, metadata)
    if format == "wav":
        return encode_wav(output, metadata)
    raise ValueError(f"unknown audio format {format!r}: expected one of {', '.join(FORMATS)}")


def encode_wav(output: AudioOutput, metadata: Mapping[str, Any]) -> EncodedOutput:
    """16-bit PCM WAV bytes with a short ``LIST``/``INFO`` chunk and the full JSON in a ``stdo`` chunk."""
    pcm = _pcm16(output.samples)
    frames, channels = pcm.shape
    rate = _rate(output.sample_rate)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    info = b"INFO"
    for key, text in ((b"INAM", _short(_prompt(metadata))), (b"ICMT", summary(metadata)), (b"ISFT", "Studiolo")):
        if text:
            info += _chunk(key, text.encode("utf-8") + b"\0")
    body = b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"LIST", info) + _chunk(WAV_CHUNK_ID, _json_bytes(metadata))
    body += _chunk(b"data", pcm.astype("<i2", copy=False).tobytes())
    return EncodedOutput(b"RIFF" + struct.pack("<I", len(body)) + body, ".wav", embeds_metadata=True)


def encode_flac(output: AudioOutput, metadata: Mapping[str, Any]) -> EncodedOutput:
    """16-bit FLAC bytes with Vorbis comments: TITLE/DESCRIPTION (the prompt), COMMENT, SOFTWARE, ENCODER and
    STUDIOLO (the full JSON). An empty clip is written as one frame of silence."""
    import soundfile
    from mutagen.flac import FLAC

    pcm = _pcm16(output.samples)
    if len(pcm) == 0:  # libsndfile writes no FLAC stream at all for zero frames: one frame of silence instead
        pcm = np.zeros((1, pcm.shape[1]), dtype=np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, _rate(output.sample_rate), format="FLAC", subtype="PCM_16")
    buffer.seek(0)
    flac = FLAC(buffer)
    if flac.tags is None:
        flac.add_tags()
    tags = flac.tags
    prompt = _prompt(metadata)
    if prompt:
        tags["TITLE"] = prompt
        tags["DESCRIPTION"] = prompt
    tags["COMMENT"] = summary(metadata)
    tags["SOFTWARE"] = "Studiolo"
    tags["ENCODER"] = "Studiolo"
    tags[FLAC_KEY] = _json_bytes(metadata).decode("utf-8")
    buffer.seek(0)
    flac.save(buffer)
    return EncodedOutput(buffer.getvalue(), ".flac", embeds_metadata=True)


def summary(metadata: Mapping[str, Any]) -> str:
    """A one-line description for players: ``Studiolo audio.speech seed 5 model demo`` (short, never the
    prompt)."""
    parts = ["Studiolo"]
    generator = metadata.get("generator")
    if isinstance(generator, str) and generator:
        parts.append(generator)
    seed = _seed(metadata.get("seed"))
    if seed is not None:
        parts.append(f"seed {seed}")
    model = metadata.get("model")
    if isinstance(model, str) and model:
        parts.append(f"model {PurePath(model).name or model}")
    if metadata.get("partial") is True:
        parts.append("(partial)")
    return _short(" ".join(parts))


def _pcm16(samples: Any) -> np.ndarray:
    """``(frames, channels)`` int16 from float samples in [-1, 1] (NaN: silence; beyond ±1: clipped)."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"audio samples must have shape (frames,) or (frames, channels), not {array.shape}")
    array = np.clip(np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return np.round(array * 32767.0).astype(np.int16)


def _rate(sample_rate: Any) -> int:
    rate = int(sample_rate)
    if not 1 <= rate <= 655_350:
        raise ValueError(f"sample rate {sample_rate!r} out of range")
    return rate


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """A RIFF chunk: id, little-endian size, payload, a pad byte after an odd-sized payload."""
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _prompt(metadata: Mapping[str, Any]) -> str:
    prompt = metadata.get("prompt")
    return prompt.replace("\0", "") if isinstance(prompt, str) else ""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def _json_bytes(metadata: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --------------------------------------------------------------------------------------------- reading


def read_params(source: str | os.PathLike[str] | bytes) -> SpeechParams | MusicParams | None:
    """The params stored in a WAV or FLAC file (a path, or the file's bytes), or None. Never raises."""
    reuse = read_reuse(source)
    return reuse.params if reuse is not None else None


def read_reuse(source: str | os.PathLike[str] | bytes) -> Reuse | None:
    """Generator, params, seed and model from a WAV or FLAC file Studiolo wrote, or None when the file holds none
    (or is missing, unreadable, another format, damaged). ``source`` is a path or the file's bytes. Never
    raises."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            text = _metadata_text(io.BytesIO(bytes(source)))
        else:
            with open(source, "rb") as f:
                text = _metadata_text(f)
        return _from_json(text) if text is not None else None
    except Exception:  # missing, a directory, unreadable, nonsense of any kind: no parameters
        return None


def _metadata_text(f: BinaryIO) -> str | None:
    head = f.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        raw = wav_chunk(f, WAV_CHUNK_ID, max_bytes=MAX_METADATA)
    else:
        raw = flac_comment(f, FLAC_KEY, max_bytes=MAX_METADATA)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _from_json(text: str) -> Reuse | None:
    metadata = json.loads(text)  # NaN loads as a float and is dropped field by field; deep nesting raises
    if not isinstance(metadata, dict) or not isinstance(metadata.get("params"), dict):
        return None
    generator = metadata.get("generator")
    params_type = _params_type(generator, metadata["params"])
    if params_type is None:
        return None
    output = metadata.get("output")
    seed = _seed(output.get("seed")) if isinstance(output, dict) else None
    if seed is None:
        seed = _seed(metadata.get("seed"))
    return Reuse(_text(generator), fit_params(params_type, metadata["params"]), seed, _text(metadata.get("model")))


def _params_type(generator: Any, params: Mapping[str, Any]) -> type | None:
    """The params type of ``generator``: a known id, an audio id naming speech or music, or for another
    ``audio.*`` id (or none) the type whose prompt field the params hold. Not an audio generator: None."""
    if isinstance(generator, str):
        if generator in GENERATOR_PARAMS:
            return GENERATOR_PARAMS[generator]
        low = generator.lower()
        if not low.startswith("audio.") and "audio" not in low:
            return None
        if "music" in low:
            return MusicParams
        if any(word in low for word in ("speech", "tts", "vits", "voice")):
            return SpeechParams
    elif generator is not None:
        return None
    if "text" in params or "speaking_rate" in params:
        return SpeechParams
    if "prompt" in params or "duration" in params:
        return MusicParams
    return None


# --------------------------------------------------------------------------------------------- fitting


def _seed(value: Any) -> int | None:
    number = loose_number(value)
    if number is None or number != int(number):
        return None
    return int(number) if 0 <= number <= MAX_SEED else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value and "\0" not in value else None
