"""``studiolo generate --output PATH``: where the copies of a job's outputs go, and in which format.

The library keeps each output as its generator saved it; ``--output`` writes a copy in the format the extension
names, converting where the host can (text: ``.txt`` and ``.md``; images: PNG, JPEG and WebP with Pillow; audio:
WAV, FLAC and Ogg Vorbis with soundfile, from the audio extra, imported only when needed).

Every copy carries how it was made (the job's metadata), as the library's files do. A copy in the format it is
saved in is the same bytes, so what they embed goes with them, and so does the library's JSON sidecar when there is
one (text: ``story.txt`` and ``story.txt.json``). A converted copy embeds the metadata where its format can hold it
(PNG text chunk, JPEG comment, WAV ``stdo`` chunk and ``INFO`` tags, FLAC and Ogg Vorbis comments) and otherwise
gets a sidecar (text, WebP, a JPEG comment too large, FLAC or Ogg without mutagen). A sidecar is written before its
file, as the store does, and removed if the file cannot be written.

:func:`check_output` runs before the job (a place or a format that cannot be written is a usage error);
:func:`copy_outputs` after it, writing each copy atomically.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api.errors import StudioloError

__all__ = ["Copy", "OutputFormatError", "available_formats", "check_output", "copy_outputs"]

_KIND_OF = {".txt": "text", ".md": "text", ".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image",
            ".wav": "audio", ".flac": "audio", ".ogg": "audio"}
_AUDIO = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
_JPEG_COMMENT_MAX = 65_533  # bytes in one JPEG COM segment


class OutputFormatError(StudioloError):
    """``--output`` names a format the output cannot be written in (a usage error)."""


@dataclass(frozen=True)
class Copy:
    """A copy written: its path, and its JSON sidecar when the metadata is there rather than in the file."""

    path: Path
    sidecar: Path | None = None


def available_formats(kind: str) -> tuple[str, ...] | None:
    """The extensions an output of ``kind`` can be written as here; None for a kind the host does not know (its
    outputs are copied in the format they are saved in)."""
    if kind == "text":
        return (".txt", ".md")
    if kind == "image":
        from PIL import features

        return (".png", ".jpg", ".jpeg") + ((".webp",) if features.check("webp") else ())
    if kind == "audio":
        return (".wav", ".flac", ".ogg") if importlib.util.find_spec("soundfile") else (".wav",)
    return None


def check_output(target: Path, kind: str) -> None:
    """Before the job runs: raise :class:`~desktop.destinations.WriteError` when nothing can be written at
    ``target`` (a file on the way, a name too long, a device), and :class:`OutputFormatError` when its extension
    names a format an output of ``kind`` cannot be written in."""
    from desktop.destinations import check_destination

    target = Path(target).expanduser()
    check_destination(target, folder_ok=True)
    if target.is_dir() or not target.suffix:
        return
    formats = available_formats(kind)
    if formats is not None and target.suffix.lower() not in formats:
        raise _format_error(target, kind, formats)
    if kind == "text" or target.suffix.lower() == ".webp":  # copies that will have a sidecar: its name must fit too
        from desktop.library import sidecar_path

        check_destination(sidecar_path(target))


def copy_outputs(saved: Sequence[Path], metadata: Sequence[dict[str, Any] | None], target: Path) -> Iterator[Copy]:
    """Write a copy of each of the ``saved`` outputs (``metadata[i]``: what output ``i`` records) at ``target``:
    into it when it is a folder (same names), else at that name (numbered ``-1``, ``-2``… when there are
    several; the output's own extension when it has none), with its metadata (see the module's docstring). Yields
    each copy once written; raises :class:`OutputFormatError` for a format it cannot write and
    :class:`~desktop.destinations.WriteError` when writing fails (the copies yielded before are whole, nothing else
    is left)."""
    target = Path(target).expanduser()
    folder = target.is_dir()
    for index, source in enumerate(saved):
        dest = _destination(target, folder, index, len(saved), source)
        try:
            data, side = _encoded(source, dest, metadata[index] if index < len(metadata) else None)
        except StudioloError:
            raise
        except Exception as exc:  # a file Pillow or libsndfile cannot read back, an encoder failing
            raise StudioloError(f"Could not write {dest}: converting {source.name} failed ({type(exc).__name__}: "
                                f"{exc}).", hint="Ask for the format it is saved in, or a folder.") from exc
        yield Copy(dest, _write(dest, data, side or None))  # no metadata known ({}): no sidecar to write


def _write(dest: Path, data: bytes, side: dict[str, Any] | None) -> Path | None:
    """Write ``dest`` and, when ``side`` is not None, its sidecar holding ``side`` first; returns the sidecar's path.
    A sidecar left from a file ``dest`` replaces is removed (it would describe the file no more)."""
    from desktop.api.files import atomic_write_bytes
    from desktop.destinations import write_error
    from desktop.library import metadata_to_json, sidecar_path

    sidecar = sidecar_path(dest)
    path = sidecar
    try:
        if side is not None:
            atomic_write_bytes(sidecar, (metadata_to_json(side, indent=2) + "\n").encode("utf-8"))
        path = dest
        try:
            atomic_write_bytes(dest, data)
        except BaseException:
            if side is not None:
                sidecar.unlink(missing_ok=True)
            raise
        if side is None and sidecar.is_file():
            path = sidecar
            sidecar.unlink()
    except OSError as exc:
        raise write_error(exc, path) from exc
    return sidecar if side is not None else None


def _destination(target: Path, folder: bool, index: int, count: int, source: Path) -> Path:
    if folder:
        dest = target / source.name
    elif count == 1:
        dest = target
    else:
        dest = target.with_name(f"{target.stem}-{index + 1}{target.suffix or source.suffix}")
    return dest if dest.suffix else dest.with_suffix(source.suffix)


def _encoded(source: Path, dest: Path, metadata: dict[str, Any] | None) -> tuple[bytes, dict[str, Any] | None]:
    """The bytes of ``dest``, and the metadata for its sidecar when they do not embed it (None: no sidecar)."""
    from desktop.library import metadata_for, sidecar_path

    have, want = source.suffix.lower(), dest.suffix.lower()
    if _same_format(have, want):
        if not sidecar_path(source).is_file():
            return source.read_bytes(), None  # whatever the bytes embed goes with them
        return source.read_bytes(), metadata if metadata is not None else metadata_for(source)
    kind = _KIND_OF.get(have)
    formats = available_formats(kind) if kind else (have,)
    if kind is None or _KIND_OF.get(want) != kind or formats is None or want not in formats:
        raise _format_error(dest, kind or have, formats or (have,))
    if metadata is None:
        metadata = metadata_for(source) or {}
    if kind == "text":
        return source.read_bytes(), metadata
    if kind == "image":
        return _image(source, want, metadata)
    return _audio(source, want, metadata)


def _same_format(a: str, b: str) -> bool:
    jpeg = (".jpg", ".jpeg")
    return a == b or (a in jpeg and b in jpeg)


def _image(source: Path, suffix: str, metadata: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
    from PIL import Image

    from desktop.library import metadata_to_json
    from desktop.library.encoders import encode_image

    with Image.open(source) as opened:
        image = opened.copy()
    if suffix == ".png":
        return encode_image(image, metadata), None
    buffer = io.BytesIO()
    if suffix == ".webp":
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        image.save(buffer, format="WEBP", lossless=True)
        return buffer.getvalue(), metadata  # the WebP files written here hold no text: a sidecar
    comment = metadata_to_json(metadata).encode("utf-8") if metadata else b""
    _flattened(image).save(buffer, format="JPEG", quality=95, **({"comment": comment} if comment and len(
        comment) <= _JPEG_COMMENT_MAX else {}))
    return buffer.getvalue(), metadata if len(comment) > _JPEG_COMMENT_MAX else None  # too large: a sidecar


def _has_alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info


def _flattened(image: Any) -> Any:
    """``image`` as RGB or grey for JPEG: transparent parts on white."""
    from PIL import Image

    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def _audio(source: Path, suffix: str, metadata: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None]:
    import numpy as np
    import soundfile

    samples, rate = soundfile.read(str(source), dtype="int16", always_2d=True)
    if suffix == ".wav":  # the host's WAV writer: the metadata in its stdo chunk and INFO tags
        from desktop.library.encoders import encode_wav

        return encode_wav(samples, rate, metadata), None
    if len(samples) == 0:  # libsndfile writes no FLAC or Ogg stream for zero frames: one frame of silence
        samples = np.zeros((1, samples.shape[1]), dtype=np.int16)
    buffer = io.BytesIO()
    container, subtype = _AUDIO[suffix]
    soundfile.write(buffer, samples, rate, format=container, subtype=subtype)
    if importlib.util.find_spec("mutagen") is None:
        return buffer.getvalue(), metadata  # nothing here writes Vorbis comments: a sidecar
    return _vorbis_tagged(buffer, suffix, metadata), None


def _vorbis_tagged(buffer: io.BytesIO, suffix: str, metadata: dict[str, Any]) -> bytes:
    """The FLAC or Ogg Vorbis file in ``buffer`` with the metadata as Vorbis comments (the keys the audio
    generators write: ``STUDIOLO`` holds the JSON)."""
    from mutagen.flac import FLAC
    from mutagen.oggvorbis import OggVorbis

    from desktop.library import metadata_to_json
    from desktop.library.encoders import FLAC_KEY

    buffer.seek(0)
    audio = FLAC(buffer) if suffix == ".flac" else OggVorbis(buffer)
    if audio.tags is None:
        audio.add_tags()
    prompt = metadata.get("prompt")
    if isinstance(prompt, str) and prompt:
        audio.tags["TITLE"] = prompt
        audio.tags["DESCRIPTION"] = prompt
    audio.tags["SOFTWARE"] = "Studiolo"
    if metadata:
        audio.tags[FLAC_KEY] = metadata_to_json(metadata)
    buffer.seek(0)
    audio.save(buffer)
    return buffer.getvalue()


def _format_error(target: Path, kind: str, formats: Sequence[str]) -> OutputFormatError:
    return OutputFormatError(
        f"Cannot write {target}: {kind} outputs cannot be written as {target.suffix or 'a file without extension'}.",
        hint="Formats available: " + ", ".join(formats) + " (or give a folder, or a name without an extension).")
