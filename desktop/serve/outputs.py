"""A finished job's outputs as response bodies: the files the library saved, read as they are (their embedded
metadata and Content Credentials included), and Studiolo's job object of ``/v1/studiolo/jobs``.

Files are read in a worker thread (never on the event loop). Audio asked for in another format than the file the
generator saved (``wav`` from a generator that saves FLAC) is encoded by the host's own writer from the job's output,
with the same metadata, and signed as the saved file was.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from desktop.serve.jobs import JobRecord, OutputInfo
from desktop.serve.openai_shapes import bad_request, server_error

MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg",
               ".txt": "text/plain", ".md": "text/markdown"}


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def saved_files(record: JobRecord, kind: str) -> list[Path]:
    """The saved files of the job's outputs of ``kind``; a 500 when one was not saved (the engine fails a job whose
    outputs cannot all be saved, so this is a generator returning something unexpected)."""
    outputs = [o for o in record.outputs if o.kind == kind]
    if not outputs or any(o.path is None for o in outputs):
        raise server_error(f"The job {record.id} made no saved {kind} output.")
    return [o.path for o in outputs if o.path is not None]


async def read_bytes(path: Path) -> bytes:
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise server_error(f"The output file {path.name} could not be read: {exc.strerror or exc}.") from exc


async def b64_of(path: Path) -> str:
    return base64.b64encode(await read_bytes(path)).decode("ascii")


async def audio_body(record: JobRecord, fmt: str, signer: Any) -> tuple[bytes, str]:
    """The job's first audio output as ``fmt`` (``wav`` or ``flac``): the saved file when it is one, else the host's
    WAV of the output with the saved file's metadata, signed like it (``signer``: the engine's, or None)."""
    (path, *_rest) = saved_files(record, "audio")
    if path.suffix.lower() == f".{fmt}":
        return await read_bytes(path), media_type(path)
    info = next(o for o in record.outputs if o.kind == "audio")
    if fmt != "wav" or info.audio is None:
        raise bad_request(f"This generator saves {path.suffix.lstrip('.').upper()} files; ask for "
                          f"response_format {path.suffix.lstrip('.')!r}.", param="response_format",
                          code="unsupported_value")
    return await asyncio.to_thread(_encode_wav, info, signer), "audio/wav"


def _encode_wav(info: OutputInfo, signer: Any) -> bytes:
    from desktop.library import default_encode

    metadata = dict(info.saved_metadata or {})
    encoded = default_encode(info.audio, metadata)
    if signer is not None:
        encoded = signer.sign(encoded, metadata, warn=lambda _message: None)  # the saved file's warning was shown
    return encoded.data


async def output_json(info: OutputInfo) -> dict[str, Any]:
    """One output in a job object: text as text, files as base64."""
    if info.kind == "text" and info.text is not None:
        return {"kind": "text", "text": info.text, "partial": info.partial}
    if info.path is None:
        return {"kind": info.kind, "filename": None, "media_type": None, "b64": None, "partial": info.partial}
    return {"kind": info.kind, "filename": info.path.name, "media_type": media_type(info.path),
            "b64": await b64_of(info.path), "partial": info.partial}


async def job_json(record: JobRecord) -> dict[str, Any]:
    """Studiolo's job object (``GET /v1/studiolo/jobs/{id}``): the outputs once the job has ended."""
    done, total, message = record.progress
    return {"id": record.id, "object": "studiolo.job", "model": record.model_id, "state": record.state,
            "progress": {"done": done, "total": total, "message": message}, "error": record.error,
            "seed": record.seed, "created": int(record.created), "gallery_ids": list(record.item_ids),
            "outputs": [await output_json(o) for o in record.outputs] if record.finished else []}
