"""Images and sound a server sent, decoded with their limits checked, and the Studiolo metadata they carry.

A Studiolo server sends the very file it saved: a PNG with its ``studiolo`` text chunk, a WAV with its ``stdo``
chunk. That record (the server's generator, model, params, seed…) is read back safely (``desktop.api``'s chunk
readers: sizes bounded, never raising on content) for the output's metadata. Anything that cannot be decoded is a
:class:`~desktop.api.GenerationError` naming the server.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

from desktop.api import GenerationError, png_text_chunks, wav_chunk

__all__ = ["MAX_PIXELS", "decode_b64", "decode_image", "decode_audio"]

MAX_PIXELS = 64 * 1024 * 1024
"""The most pixels an image from a server may have (8192 × 8192): checked from its header, before it is decoded."""


def decode_b64(text: Any, where: str) -> bytes:
    """The bytes of a base64 field of an answer (a :class:`GenerationError` for anything else)."""
    if not isinstance(text, str):
        raise GenerationError(f"{where} sent no image data (b64_json) in its answer.",
                              hint="Check that the server makes images and answers with b64_json.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GenerationError(f"{where} sent image data that is not base64: {exc}.",
                              hint="The server's own log may say more.") from exc


def decode_image(data: bytes, where: str) -> tuple[Any, dict[str, Any] | None]:
    """The PIL image in ``data`` (loaded) and the Studiolo record of its ``studiolo`` PNG chunk (or None)."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise GenerationError(f"{where} sent an image of {width} × {height} pixels, more than Studiolo takes "
                                  f"({MAX_PIXELS:,} pixels): refused.",
                                  hint="Ask for a smaller size.")
        image.load()
    except GenerationError:
        raise
    except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, DecompressionBombError…)
        raise GenerationError(f"{where} sent an image that cannot be read: {exc}",
                              hint="The server's own log may say more.") from exc
    return image, _json(png_text_chunks(io.BytesIO(data), ["studiolo"]).get("studiolo"))


def decode_audio(data: bytes, where: str) -> tuple[Any, int, dict[str, Any] | None]:
    """The float32 samples (``(frames,)`` or ``(frames, channels)``), the sample rate and the Studiolo record of
    the ``stdo`` chunk of the WAV file in ``data`` (soundfile where it is installed, else the standard library's
    ``wave`` for PCM)."""
    try:
        samples, rate = _read_audio(data)
    except Exception as exc:
        raise GenerationError(f"{where} sent audio that cannot be read as WAV: {exc}",
                              hint="Check that the server makes speech or sound and answers with WAV.") from exc
    if rate <= 0 or len(samples) == 0:
        raise GenerationError(f"{where} sent no sound (an empty or rate-less WAV file).",
                              hint="The server's own log may say more.")
    chunk = wav_chunk(io.BytesIO(data), b"stdo")
    return samples, rate, _json(chunk.decode("utf-8", errors="replace") if chunk else None)


def _read_audio(data: bytes) -> tuple[Any, int]:
    try:
        import soundfile
    except ImportError:  # the audio extra is not installed: plain PCM WAV is enough for a server's answer
        return _read_wave(data)
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return samples, int(rate)


def _read_wave(data: bytes) -> tuple[Any, int]:
    import wave

    import numpy as np

    with wave.open(io.BytesIO(data)) as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit: widened to 32 bits, little-endian
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((len(triples), 4), dtype=np.uint8)
        wide[:, 1:] = triples
        samples = wide.view("<i4").reshape(-1).astype(np.float32) / 2**31
    elif width in (2, 4):
        kind = "<i2" if width == 2 else "<i4"
        samples = np.frombuffer(raw, dtype=kind).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"{8 * width}-bit samples")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
    return samples, rate


def _json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
