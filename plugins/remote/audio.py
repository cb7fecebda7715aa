"""``remote.audio``: speech (or sound) made by a model on an OpenAI-compatible server.

``POST /audio/speech`` with the text as ``input``, the ``voice``, ``response_format: wav``, the job's ``seed`` and
``speed`` when it is not 1. The answer is the WAV file (256 MiB at most), decoded (:mod:`plugins.remote.media`:
soundfile, or the standard library's ``wave``) into an ``AudioOutput``. A Studiolo server's record embedded in the
file (its ``stdo`` chunk) is kept under ``remote`` in the output's metadata, beside ``server``, ``model_id``, ``seed``
and the seed the server says it used (``X-Studiolo-Seed``) as ``remote_seed``. A cancel closes the connection at once
(a Studiolo server then cancels its job).
"""

from __future__ import annotations

from typing import Any

from desktop.api import AudioOutput, JobCancelled, ParamError, RunContext, StudioloError
from plugins.remote.base import RemoteGenerator, RemoteHandle, server_metadata
from plugins.remote.cancel import CancelWatch
from plugins.remote.client import MAX_MEDIA_BYTES, RemoteClient, check_status, remote_error
from plugins.remote.image import MEDIA_READ_TIMEOUT_S
from plugins.remote.params import RemoteAudioParams

__all__ = ["RemoteAudioGenerator"]


class RemoteAudioGenerator(RemoteGenerator):
    """Speech or sound from a model on a configured server."""

    id = "remote.audio"
    name = "Remote audio"
    kind = "audio"
    description = "Read a text aloud (or make sound) with a model on one of your servers."
    Params = RemoteAudioParams

    def generate(self, handle: RemoteHandle, params: RemoteAudioParams, ctx: RunContext) -> list[AudioOutput]:
        """Ask the server for the sound of ``params.text``; see the module docstring."""
        if not params.text.strip():
            raise ParamError("text", params.text, "there is nothing to read", hint="Type the text to read aloud.")
        server = handle.configured()
        where = f"{server.name} ({server.url})"
        body: dict[str, Any] = {"model": handle.model_id, "input": params.text, "voice": params.voice,
                                "response_format": "wav", "seed": ctx.seed}
        if params.speed != 1.0:
            body["speed"] = params.speed
        with RemoteClient(server, read_timeout=MEDIA_READ_TIMEOUT_S, max_bytes=MAX_MEDIA_BYTES) as client, \
                CancelWatch(lambda: ctx.cancelled, client.abort):
            ctx.progress(0, None, f"Asking {server.name}…")
            try:
                response = client.http.post(client.url("audio/speech"), json=body)
                check_status(response)
                data, seed_header = response.content, response.headers.get("x-studiolo-seed")
            except StudioloError:
                raise
            except Exception as exc:
                if ctx.cancelled:
                    raise JobCancelled() from None
                raise remote_error(exc, server, model_id=handle.model_id, timeout=MEDIA_READ_TIMEOUT_S) from exc
        from plugins.remote.media import decode_audio

        samples, rate, record = decode_audio(data, where)
        metadata = {**server_metadata(server, handle.model_id), "seed": ctx.seed, "remote": record}
        if seed_header is not None and seed_header.strip().isdigit():
            metadata["remote_seed"] = int(seed_header)
        ctx.progress(1, 1)
        return [AudioOutput(samples=samples, sample_rate=rate, metadata=metadata)]
