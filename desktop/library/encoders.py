"""The host's writer: encodes an output as a file when its generator does not (``Generator.encode_output``).

Every file it writes carries the job's metadata (generator, version, model, params, seed, device, timings), for a
third-party generator exactly as for a built-in one:

* images → PNG with the metadata in an iTXt chunk named ``studiolo`` (compact JSON, UTF-8), plus ``Software``
  and, when there is a prompt, ``Description``;
* audio → 16-bit PCM ``.wav`` with the metadata in a RIFF chunk of its own, ``stdo`` (compact JSON, UTF-8), and a
  short ``LIST``/``INFO`` chunk players and tag editors show (``INAM``: the prompt cut to :data:`INFO_LIMIT`
  characters, ``ICMT``: a one-line summary, ``ISFT``: ``Studiolo``) — the layout of the built-in audio
  generators' files;
* text → UTF-8 ``.txt`` exactly as generated, with the metadata in a JSON sidecar (``<file>.txt.json``, written by
  the store). Not front matter: the file stays the text itself (a copy, a diff, a word count or another program
  reading it sees no header), ``.txt`` has no front-matter convention, and reading the text back would have to
  tell a header from a story that begins with ``---``.

:func:`read_png_metadata` reads the ``studiolo`` chunk back by walking the PNG's chunks itself: no image
decoding, no decompression-bomb limits, and it never raises, whatever the file holds. The WAV chunk is read back by
:func:`desktop.api.wav_chunk` (:mod:`desktop.library.embedded`).
"""

from __future__ import annotations

import io
import json
import struct
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from desktop.api.errors import StudioloError
from desktop.api.outputs import AudioOutput, EncodedOutput, ImageOutput, Output, TextOutput
from desktop.api.png import png_text_chunks

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

__all__ = [
    "FLAC_KEY",
    "INFO_LIMIT",
    "METADATA_KEY",
    "WAV_CHUNK_ID",
    "default_encode",
    "encode_image",
    "encode_text",
    "encode_wav",
    "metadata_to_json",
    "output_kind",
    "read_png_metadata",
    "summary",
]

METADATA_KEY = "studiolo"
"""The PNG text chunk keyword holding Studiolo's metadata as JSON."""
WAV_CHUNK_ID = b"stdo"
"""The RIFF chunk holding Studiolo's JSON metadata in a WAV file."""
FLAC_KEY = "STUDIOLO"
"""The Vorbis comment holding Studiolo's JSON metadata in a FLAC or Ogg Vorbis file."""
INFO_LIMIT = 200
"""WAV ``INFO`` fields are cut to this many characters: libsndfile drops every INFO field of a file whose comment
is longer than about 2 KB, so the whole prompt lives only in the JSON."""

_PNG_MODES = {"1", "L", "LA", "I;16", "I;16B", "P", "RGB", "RGBA"}


def output_kind(output: Output) -> str:
    """``"image"``, ``"text"``, ``"audio"``, or the lower-cased class name for another output type."""
    for cls, kind in ((ImageOutput, "image"), (TextOutput, "text"), (AudioOutput, "audio")):
        if isinstance(output, cls):
            return kind
    return type(output).__name__.lower()


def metadata_to_json(metadata: dict[str, Any], *, indent: int | None = None) -> str:
    """``metadata`` as JSON (compact unless ``indent``), non-ASCII kept as is.

    Values JSON cannot hold are written sensibly rather than refused: paths and dates as strings, numpy scalars
    and arrays as numbers and lists, anything else as ``str(value)``. Raises :class:`StudioloError` only for what
    cannot be written at all (a cycle, keys that are not strings or numbers).
    """
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        return json.dumps(metadata, ensure_ascii=False, indent=indent, separators=separators, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StudioloError(
            f"The output's metadata cannot be written as JSON ({exc}).",
            hint="This is a bug in the generator plugin; report it to its author.",
        ) from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy scalar or array, without importing numpy
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def default_encode(output: Output, metadata: dict[str, Any]) -> EncodedOutput:
    """Encode ``output`` with the host's writer; ``metadata`` is what the file (or its sidecar) records.

    Raises :class:`StudioloError` for an output type the host cannot write.
    """
    if isinstance(output, ImageOutput):
        return EncodedOutput(encode_image(output.image, metadata), ".png", embeds_metadata=True)
    if isinstance(output, TextOutput):
        return EncodedOutput(encode_text(output.text), ".txt", embeds_metadata=False)  # the store's sidecar
    if isinstance(output, AudioOutput):
        return EncodedOutput(encode_wav(output.samples, output.sample_rate, metadata), ".wav", embeds_metadata=True)
    raise StudioloError(
        f"Studiolo cannot save a {type(output).__name__} by itself.",
        hint="The generator must encode this kind of output itself (Generator.encode_output).",
    )


def encode_image(image: Image.Image, metadata: dict[str, Any]) -> bytes:
    """PNG bytes of ``image`` with ``metadata`` in the ``studiolo`` iTXt chunk.

    Modes PNG cannot store are converted: 32-bit integer to 16-bit grey (clipped to 0…65535), floating point to
    8-bit grey (clipped to 0…255, as Pillow converts ``F`` to ``L``), with an alpha band to LA or RGBA, the rest
    (CMYK, YCbCr, LAB, HSV, RGBX…) to RGB.
    """
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "Studiolo")
    prompt = metadata.get("prompt")
    if isinstance(prompt, str) and prompt:
        info.add_itxt("Description", prompt)
    info.add_itxt(METADATA_KEY, metadata_to_json(metadata))
    buffer = io.BytesIO()
    _png_ready(image).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _png_ready(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _PNG_MODES:
        return image
    if mode == "F" or mode == "I" or mode.startswith("I;16"):
        # Integers to 16-bit grey (clipped to 0…65535); floats on the 8-bit scale Pillow uses for "F" → "L".
        import numpy as np
        from PIL import Image as PILImage

        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        if mode == "F":
            return PILImage.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
        return PILImage.fromarray(np.clip(values, 0, 65535).astype(np.uint16))
    if mode == "La":
        return image.convert("LA")
    if mode.endswith(("A", "a")):  # PA, RGBa (LAB's "A" is a colour band, not alpha)
        return image.convert("RGBA")
    return image.convert("RGB")


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text`` (a lone surrogate, which UTF-8 cannot hold, becomes U+FFFD)."""
    return text.encode("utf-8", errors="replace")


def encode_wav(samples: np.ndarray, sample_rate: int, metadata: dict[str, Any] | None = None) -> bytes:
    """16-bit PCM WAV bytes of float ``samples`` (clipped to [-1, 1]; NaN as silence), shape ``(frames,)`` or
    ``(frames, channels)``. ``int16`` samples are written as they are.

    With ``metadata`` the file carries it: the JSON in a :data:`WAV_CHUNK_ID` chunk and a short ``LIST``/``INFO``
    chunk (title, summary, software), both before the ``data`` chunk.
    """
    import numpy as np

    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] < 1:
        raise StudioloError(
            f"Audio samples must have shape (frames,) or (frames, channels), not {array.shape}.",
            hint="This is a bug in the generator plugin; report it to its author.",
        )
    rate = int(sample_rate)
    if rate <= 0 or rate != sample_rate or rate > 0xFFFFFFFF // (2 * array.shape[1]):
        raise StudioloError(
            f"Invalid audio sample rate {sample_rate!r}: it must be a positive whole number of Hz.",
            hint="This is a bug in the generator plugin; report it to its author.",
        )
    if array.dtype != np.int16:
        floats = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        array = np.rint(np.clip(floats, -1.0, 1.0) * 32767.0).astype(np.int16)
    channels = array.shape[1]
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    body = b"WAVE" + _riff_chunk(b"fmt ", fmt)
    if metadata is not None:
        body += _riff_chunk(b"LIST", _wav_info(metadata))
        body += _riff_chunk(WAV_CHUNK_ID, metadata_to_json(metadata).encode("utf-8"))
    body += _riff_chunk(b"data", np.ascontiguousarray(array, dtype="<i2").tobytes())
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    """A RIFF chunk: id, little-endian size, payload, and a pad byte after an odd-sized payload."""
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _wav_info(metadata: dict[str, Any]) -> bytes:
    """A ``LIST``/``INFO`` payload: ``INAM`` the prompt, ``ICMT`` a summary, ``ISFT`` Studiolo (each short)."""
    info = b"INFO"
    prompt = metadata.get("prompt")
    for key, text in ((b"INAM", prompt if isinstance(prompt, str) else ""), (b"ICMT", summary(metadata)),
                      (b"ISFT", "Studiolo")):
        text = " ".join(text.replace("\0", "").split())
        if text:
            text = text if len(text) <= INFO_LIMIT else text[: INFO_LIMIT - 1] + "…"
            info += _riff_chunk(key, text.encode("utf-8") + b"\0")
    return info


def summary(metadata: dict[str, Any]) -> str:
    """A one-line description of how an output was made, for players' comment fields:
    ``Studiolo text.markov seed 5 model demo`` (never the prompt)."""
    parts = ["Studiolo"]
    generator, seed, model = metadata.get("generator"), metadata.get("seed"), metadata.get("model")
    if isinstance(generator, str) and generator:
        parts.append(generator)
    if isinstance(seed, int) and not isinstance(seed, bool):
        parts.append(f"seed {seed}")
    if isinstance(model, str) and model:
        parts.append(f"model {PurePath(model).name or model}")
    if metadata.get("partial") is True:
        parts.append("(partial)")
    return " ".join(parts)


def read_png_metadata(path: Path | str) -> dict[str, Any] | None:
    """The metadata in the ``studiolo`` chunk of the PNG at ``path``, or None when there is none or the file is
    not a readable PNG. Never raises."""
    try:
        with open(path, "rb") as f:
            text = png_text_chunks(f, (METADATA_KEY,)).get(METADATA_KEY)
        if text is None:
            return None
        value = json.loads(text)
    except Exception:  # hostile or corrupt files, unreadable paths, absurdly nested JSON: all mean "no metadata"
        return None
    return value if isinstance(value, dict) else None
