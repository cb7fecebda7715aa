"""``POST /v1/images/generations``, ``POST /v1/images/edits`` and ``POST /v1/audio/speech``.

Answers carry the files the library saved, byte for byte (PNG with Studiolo's metadata and Content Credentials;
the audio generator's own file, or the host's WAV of the same output when WAV was asked of a generator that saves
FLAC). A client that disconnects before the job ends cancels it.

Uploads of ``/v1/images/edits`` are checked to be images, saved as PNG into the data folder's ``serve-inputs``
(they are the inputs the outputs' metadata names, as a file a person starts from is) and handed to the generator
through its own ``params_for_input``.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response

from desktop.serve import mapping, outputs
from desktop.serve.handling import extra as studiolo_extra
from desktop.serve.handling import flag, json_body, raise_unless_done, resolve, run_to_end, services_of, submit
from desktop.serve.openai_shapes import bad_request

MAX_UPLOAD_PIXELS = 4096 * 4096
"""The largest upload accepted (more is refused before it is decoded: no decompression bombs)."""


async def _run(request: Any, generator: Any, ref: str | None, params: Any, seed: int | None, *,
               keep_audio: bool = False) -> Any:
    """Submit and wait for the end; None when the client left first (the job is cancelled)."""
    record, events = await submit(request, generator, ref, params, seed, keep_audio=keep_audio)
    record.detach(events)
    if not await run_to_end(request, record):
        return None
    raise_unless_done(record)
    return record


async def _images_response(record: Any) -> Response:
    data = [{"b64_json": await outputs.b64_of(path), "revised_prompt": None}
            for path in outputs.saved_files(record, "image")]
    return JSONResponse({"created": int(time.time()), "data": data,
                         "studiolo": {**studiolo_extra(record), "gallery_ids": list(record.item_ids)}})


async def image_generations(request: Any) -> Response:
    body = await json_body(request)
    generator, ref = await resolve(request, body.get("model"), ("image",))
    params = mapping.image_params(generator, body)
    if flag(body, "stream"):
        raise bad_request("Streaming images is not served; ask without 'stream'.", param="stream",
                          code="unsupported_parameter")
    record = await _run(request, generator, ref, params, mapping.seed_of(body.get("seed")))
    return Response(status_code=204) if record is None else await _images_response(record)


async def image_edits(request: Any) -> Response:
    async with request.form(max_files=2, max_fields=64) as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        image = form.get("image") or form.get("image[]")
        mask = form.get("mask")
        if image is None or isinstance(image, str):
            raise bad_request("Send the image to start from as a file field named 'image'.", param="image",
                              code="missing_image")
        image_bytes = await image.read()
        mask_bytes = await mask.read() if mask is not None and not isinstance(mask, str) else None
    if fields.get("stream", "false").strip().lower() not in ("false", "0", ""):
        raise bad_request("Streaming images is not served; ask without 'stream'.", param="stream",
                          code="unsupported_parameter")
    generator, ref = await resolve(request, fields.get("model"), ("image",))
    folder = _inputs_folder()
    image_path = await asyncio.to_thread(_save_upload, image_bytes, folder, "image", "RGB")
    mask_path = (await asyncio.to_thread(_save_upload, mask_bytes, folder, "mask", "L")
                 if mask_bytes is not None else None)
    params = mapping.edit_params(generator, fields, image_path, mask_path)
    record = await _run(request, generator, ref, params, mapping.seed_of(fields.get("seed")))
    return Response(status_code=204) if record is None else await _images_response(record)


def _inputs_folder() -> Path:
    from desktop import paths

    return paths.data_dir() / "serve-inputs"


def _save_upload(data: bytes, folder: Path, field: str, mode: str) -> Path:
    """Check that ``data`` is an image of a sane size and save it as a PNG (``mode``: RGB for the image, L for the
    mask) under a new name in ``folder``; a 400 naming ``field`` otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_UPLOAD_PIXELS:
                raise bad_request(f"The {field} is {image.width}x{image.height} pixels; at most "
                                  f"{MAX_UPLOAD_PIXELS} pixels are accepted.", param=field, code="image_too_large")
            picture = image.convert(mode)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise bad_request(f"The {field} is not an image Studiolo can read (PNG, JPEG, WebP…).", param=field,
                          code="invalid_image") from None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}-{field}.png"
    picture.save(path, format="PNG")
    return path


async def speech(request: Any) -> Response:
    body = await json_body(request)
    generator, ref = await resolve(request, body.get("model"), ("audio",))
    fmt = mapping.speech_format(body)
    params = mapping.speech_params(generator, body)
    record = await _run(request, generator, ref, params, mapping.seed_of(body.get("seed")), keep_audio=True)
    if record is None:
        return Response(status_code=204)
    try:
        data, media_type = await outputs.audio_body(record, fmt, services_of(request).signer)
    finally:
        record.release_audio()
    return Response(data, media_type=media_type, headers={"X-Studiolo-Seed": str(record.seed),
                                                          "X-Studiolo-Job-Id": record.id})
