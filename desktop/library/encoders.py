"""The host's writer: encodes an output as a file when its generator does not (``Generator.encode_output``).

* images → PNG with the metadata in an iTXt chunk named ``studiolo`` (compact JSON, UTF-8), plus ``Software``
  and, when there is a prompt, ``Description``;
* text → UTF-8 ``.txt`` (the store writes a JSON sidecar);
* audio → 16-bit PCM ``.wav`` (sidecar too).

:func:`read_png_metadata` reads the ``studiolo`` chunk back by walking the PNG's chunks itself: no image
decoding, no decompression-bomb limits, and it never raises, whatever the file holds.
"""

from __future__ import annotations

import io
import json
import wave
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
    "METADATA_KEY",
    "default_encode",
    "encode_image",
    "encode_text",
    "encode_wav",
    "metadata_to_json",
    "output_kind",
    "read_png_metadata",
]

METADATA_KEY = "studiolo"
"""The PNG text chunk keyword holding Studiolo's metadata as JSON."""

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
        return EncodedOutput(encode_text(output.text), ".txt", embeds_metadata=False)
    if isinstance(output, AudioOutput):
        return EncodedOutput(encode_wav(output.samples, output.sample_rate), ".wav", embeds_metadata=False)
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


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes of float ``samples`` (clipped to [-1, 1]; NaN as silence), shape ``(frames,)`` or
    ``(frames, channels)``. ``int16`` samples are written as they are."""
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
    if rate <= 0 or rate != sample_rate:
        raise StudioloError(
            f"Invalid audio sample rate {sample_rate!r}: it must be a positive whole number of Hz.",
            hint="This is a bug in the generator plugin; report it to its author.",
        )
    if array.dtype != np.int16:
        floats = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        array = np.rint(np.clip(floats, -1.0, 1.0) * 32767.0).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(array.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.ascontiguousarray(array, dtype="<i2").tobytes())
    return buffer.getvalue()


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
