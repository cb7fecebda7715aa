"""``remote.image``: images made by a model on an OpenAI-compatible server.

* Any server: ``POST /images/generations`` with the prompt, ``n``, ``size`` (``WxH``), ``response_format:
  b64_json``, the job's ``seed`` and the fields OpenAI does not have, named as Studiolo's image generator names
  them (``negative_prompt``, ``steps``, ``guidance_scale``): a Studiolo server's generator takes them as its own,
  others may ignore them. The answer comes when the images are made (no progress meanwhile; a cancel closes the
  connection at once).
* A Studiolo server (its ``/models`` entries carry a ``studiolo`` object): the job goes through its job endpoint
  instead (:mod:`plugins.remote.jobs`), for live progress and a cancel that stops the job there.

Each PNG is decoded (:mod:`plugins.remote.media`: 256 MiB and 64 megapixels at most) into an ``ImageOutput``; the
record a Studiolo server embedded in it (its generator, model, params, seed…) is kept in the output's metadata under
``remote``, beside ``server``, ``model_id`` and ``seed``; the server's answer about the job under ``remote_job``.
"""

from __future__ import annotations

from typing import Any

from desktop.api import GenerationError, ImageOutput, JobCancelled, RunContext, StudioloError
from plugins.remote.base import RemoteGenerator, RemoteHandle, server_metadata
from plugins.remote.cancel import CancelWatch
from plugins.remote.client import MAX_MEDIA_BYTES, RemoteClient, remote_error
from plugins.remote.params import RemoteImageParams

__all__ = ["RemoteImageGenerator", "MEDIA_READ_TIMEOUT_S"]

MEDIA_READ_TIMEOUT_S = 900.0
"""Seconds to wait for a server that makes images (or sound) without saying how far it is: a big batch on a slow
GPU takes minutes. A cancel does not wait for it."""


class RemoteImageGenerator(RemoteGenerator):
    """Images from a model on a configured server."""

    id = "remote.image"
    name = "Remote image"
    kind = "image"
    description = "Make images with a model on one of your servers (another Studiolo, LocalAI…)."
    Params = RemoteImageParams

    def generate(self, handle: RemoteHandle, params: RemoteImageParams, ctx: RunContext) -> list[ImageOutput]:
        """Ask the server for ``params.n`` images; see the module docstring."""
        server = handle.configured()
        where = f"{server.name} ({server.url})"
        with RemoteClient(server, read_timeout=MEDIA_READ_TIMEOUT_S, max_bytes=MAX_MEDIA_BYTES) as client, \
                CancelWatch(lambda: ctx.cancelled, client.abort):
            ctx.progress(0, None, f"Asking {server.name}…")
            try:
                if _is_studiolo(client, handle.model_id):
                    files, job = _by_job(client, handle.model_id, params, ctx)
                else:
                    files, job = _by_images_api(client, handle.model_id, params, ctx.seed, where)
            except StudioloError:
                raise
            except Exception as exc:
                if ctx.cancelled:
                    raise JobCancelled() from None
                raise remote_error(exc, server, model_id=handle.model_id, timeout=MEDIA_READ_TIMEOUT_S) from exc
        from plugins.remote.media import decode_image

        outputs = []
        for index, data in enumerate(files):
            image, record = decode_image(data, where)
            metadata = {**server_metadata(server, handle.model_id), "seed": ctx.seed, "index": index,
                        "remote": record, "remote_job": job}
            outputs.append(ImageOutput(image=image, metadata=metadata))
        if not outputs:
            raise GenerationError(f"{where} sent no image.", hint="The server's own log may say more.")
        ctx.progress(1, 1)
        return outputs


def _is_studiolo(client: RemoteClient, model_id: str) -> bool:
    """Whether the server is a Studiolo that lists this model (its entry carries a ``studiolo`` object). A server
    without a usable model list is taken as a plain OpenAI-compatible one."""
    from plugins.remote.listing import listed_models, studiolo_entry

    return studiolo_entry(listed_models(client), model_id) is not None


def _by_images_api(client: RemoteClient, model_id: str, params: RemoteImageParams, seed: int,
                   where: str) -> tuple[list[bytes], Any]:
    """``POST /images/generations``: the PNG files and the answer's ``studiolo`` object (or None)."""
    from plugins.remote.media import decode_b64

    body = {"model": model_id, "prompt": params.prompt, "n": params.n, "size": f"{params.width}x{params.height}",
            "response_format": "b64_json", "seed": seed, "negative_prompt": params.negative_prompt,
            "steps": params.steps, "guidance_scale": params.guidance_scale}
    answer = client.request_json("POST", "images/generations", body)
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise ValueError("an images answer without a data list")
    files = []
    for item in data:
        if isinstance(item, dict) and "b64_json" not in item and "url" in item:
            raise GenerationError(f"{where} sent a link to the image instead of the image itself.",
                                  hint="Use a server that answers with b64_json (Studiolo fetches nothing from "
                                       "links).")
        files.append(decode_b64(item.get("b64_json") if isinstance(item, dict) else None, where))
    extra = answer.get("studiolo")
    return files, extra if isinstance(extra, dict) else None


def _by_job(client: RemoteClient, model_id: str, params: RemoteImageParams,
            ctx: RunContext) -> tuple[list[bytes], Any]:
    """A Studiolo server's job: the PNG files of its image outputs and the job (without them)."""
    from plugins.remote.jobs import run_job
    from plugins.remote.media import decode_b64

    where = f"{client.server.name} ({client.server.url})"
    job_params = {"prompt": params.prompt, "negative_prompt": params.negative_prompt, "width": params.width,
                  "height": params.height, "steps": params.steps, "guidance_scale": params.guidance_scale,
                  "batch_size": params.n}
    final = run_job(client, model_id, job_params, ctx)
    outputs = final.get("outputs")
    if not isinstance(outputs, list):
        raise ValueError("a finished job without outputs")
    files = [decode_b64(o.get("b64"), where) for o in outputs if isinstance(o, dict) and o.get("kind") == "image"]
    job = {k: final.get(k) for k in ("id", "seed", "state") if k in final}
    return files, job
