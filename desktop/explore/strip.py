"""An interpolation's frames as one file: an animated WebP (lossless) or GIF, or a strip PNG (frames in a row).

Each file records the interpolation (:func:`interpolation_record`: the generator, the model and every frame's params
and seed, so each frame can be made again): the WebP in its EXIF ``ImageDescription``, the GIF in its comment, the
PNG in its ``studiolo-interpolation`` text chunk — as JSON. Frames with no image (failed or cancelled) are grey,
each with its number (Pillow merges identical neighbouring frames of an animation into one longer frame, which would
leave the file with fewer frames than its record).
"""

from __future__ import annotations

import io
import json
from typing import Any

from desktop.explore.grid import GridCell

__all__ = ["FORMATS", "RECORD_CHUNK", "FRAME_MS", "interpolation_record", "strip_bytes", "read_record"]

FORMATS = (".webp", ".gif", ".png")
"""The file types an interpolation is written as: animated WebP or GIF, or a strip PNG."""
RECORD_CHUNK = "studiolo-interpolation"
"""The PNG text chunk holding the record (the WebP and the GIF hold the same JSON where they can)."""
FRAME_MS = 120
"""How long an animation shows each frame (about 8 frames a second; GIF counts in hundredths of a second)."""
_DESCRIPTION = 0x010E  # EXIF ImageDescription
_MISSING, _BACKGROUND, _INK, _PAD = (160, 160, 160), (255, 255, 255), (0, 0, 0), 4


def interpolation_record(generator_id: str, cells: list[GridCell]) -> dict[str, Any]:
    """What made the frames: the generator, the model, and each frame's params (JSON) and seed, first to last."""
    model = cells[0].model if cells else None
    return {"generator": generator_id, "model": model,
            "frames": [{"params": dict(c.params), "seed": c.seed} for c in cells]}


def strip_bytes(suffix: str, generator_id: str, cells: list[GridCell], images: dict[int, Any]) -> bytes:
    """The file for ``suffix`` (one of :data:`FORMATS`); ``images`` maps a frame's number (from 0) to its PIL
    image (missing: a grey frame)."""
    from PIL import Image

    suffix = suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"an interpolation is written as {', '.join(FORMATS)}, not {suffix}")
    sizes = [im.size for im in images.values()] or [(64, 64)]
    size = (max(s[0] for s in sizes), max(s[1] for s in sizes))
    frames = [images[k].convert("RGB") if k in images else _missing_frame(size, k) for k in range(len(cells))]
    record = json.dumps(interpolation_record(generator_id, cells), ensure_ascii=False)
    buffer = io.BytesIO()
    if suffix == ".png":
        _strip_png(frames, size, record, buffer)
    elif suffix == ".webp":
        exif = Image.Exif()
        exif[_DESCRIPTION] = record
        frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                       lossless=True, exif=exif.tobytes())
    else:
        frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                       comment=record.encode("utf-8"), disposal=1)
    return buffer.getvalue()


def _missing_frame(size: tuple[int, int], index: int) -> Any:
    """A grey frame numbered ``index + 1``: the place of a frame that was not made."""
    from PIL import Image, ImageDraw

    frame = Image.new("RGB", size, _MISSING)
    ImageDraw.Draw(frame).text((_PAD, _PAD), str(index + 1), fill=_INK)
    return frame


def _strip_png(frames: list[Any], size: tuple[int, int], record: str, buffer: io.BytesIO) -> None:
    """The frames side by side, each under its number."""
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    box = draw.textbbox((0, 0), "Ag 0123456789")
    top = int(box[3] - box[1]) + 2 * _PAD
    strip = Image.new("RGB", (size[0] * len(frames), size[1] + top), _BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for k, frame in enumerate(frames):
        draw.text((k * size[0] + _PAD, _PAD), str(k + 1), fill=_INK)
        strip.paste(frame, (k * size[0], top))
    info = PngInfo()
    info.add_itxt(RECORD_CHUNK, record)
    strip.save(buffer, "PNG", pnginfo=info)


def read_record(image: Any) -> dict[str, Any] | None:
    """The record in an opened PIL image written by :func:`strip_bytes`, or None."""
    text: Any = image.info.get(RECORD_CHUNK) or image.info.get("comment")
    if text is None and image.format == "WEBP":
        text = image.getexif().get(_DESCRIPTION)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        record = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
