"""Add C2PA Content Credentials to a saved output, in place.

:func:`sign_file` embeds a manifest, signed with :mod:`desktop.provenance.keys`, that says the content was made by
a trained model (``c2pa.actions`` with the IPTC digital source type ``trainedAlgorithmicMedia``), by which
generator and model (and the weights' hash), and with which prompt unless the user turned that off. No timestamp
authority is asked (offline): the signature carries no trusted time.

Call it AFTER every other piece of metadata is written: the manifest hashes the whole file, so a chunk added
afterwards makes it verify as tampered. Formats (what c2pa-python 0.38 / c2pa-rs 0.91 can embed into): PNG, JPEG,
WebP, WAV, FLAC and MP3 (:data:`SIGNABLE`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from desktop.api.errors import StudioloError
from desktop.api.files import atomic_path
from desktop.provenance.keys import SigningKeys

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "org.studiolo.generation"
"""The label of Studiolo's own assertion: the claims given to :func:`sign_file` (generator, model, weights' hash,
prompt...)."""

SIGNABLE = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
            ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg"}
"""File suffix → MIME type of the formats :func:`sign_file` signs."""

_PROMPT_KEYS = ("prompt", "negative_prompt")


class ProvenanceError(StudioloError):
    """Content Credentials could not be added to a file (the file is left as it was)."""


def reader_settings(anchor_pem: str | None = None) -> dict[str, Any]:
    """c2pa settings for Studiolo: nothing fetched from the network, no thumbnail copied into the manifest, and
    ``anchor_pem`` (a PEM CA certificate) trusted, so that a manifest signed under it reads as ``Trusted``."""
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                                "builder": {"thumbnail": {"enabled": False}}}
    if anchor_pem:
        settings["trust"] = {"user_anchors": anchor_pem}
    return settings


def sign_bytes(data: bytes, suffix: str, *, claims: dict[str, Any], include_prompt: bool, keys: SigningKeys,
               title: str = "") -> bytes:
    """``data`` (a whole file of the format ``suffix``, e.g. ``".png"``) with a signed C2PA manifest embedded:
    what the host's saving path writes (so the file's hash and the library's row match what is on disk). Raises
    :class:`ProvenanceError` for a format c2pa cannot embed into, a key c2pa refuses or bytes it cannot parse.
    ``title``: the manifest's title (the file's name)."""
    import io

    import c2pa

    mime = _mime(suffix, title)
    recorded = {k: v for k, v in claims.items() if v is not None and (include_prompt or k not in _PROMPT_KEYS)}
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(keys.alg.encode(), keys.chain_pem, keys.key_pem, None))
        context = c2pa.Context(settings=c2pa.Settings.from_dict(reader_settings()))
        dest = io.BytesIO()
        with c2pa.Builder(_manifest(title or f"output{suffix}", recorded), context=context) as builder:
            builder.sign(signer, mime, io.BytesIO(data), dest)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"Content Credentials could not be added to {title or 'the output'}: {exc}",
                              hint="Check the signing certificate and key in Settings → Provenance, or that the "
                                   "file is a complete image or audio file.") from exc
    return dest.getvalue()


def sign_file(path: str | Path, *, claims: dict[str, Any], include_prompt: bool, keys: SigningKeys) -> None:
    """Embed a signed C2PA manifest into the file at ``path`` (see :func:`sign_bytes`), replacing it atomically: on
    any error the file is left as it was and :class:`ProvenanceError` says why."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode & 0o777
        signed = sign_bytes(path.read_bytes(), path.suffix, claims=claims, include_prompt=include_prompt, keys=keys,
                            title=path.name)
        with atomic_path(path, mode=mode) as tmp:
            Path(tmp).write_bytes(signed)
    except ProvenanceError as exc:
        raise ProvenanceError(exc.message, hint="The file was kept unsigned. " + (exc.hint or "")) from exc
    except OSError as exc:
        raise ProvenanceError(f"Content Credentials could not be added to {path}: {exc.strerror or exc}",
                              hint="The file was kept as it was. Check that its folder is writable and not full.") \
            from exc


def _mime(suffix: str, title: str) -> str:
    mime = SIGNABLE.get(suffix.lower())
    if mime is None:
        raise ProvenanceError(f"Content Credentials cannot be added to {title or 'a ' + suffix + ' file'}: the "
                              f"{suffix or 'suffix-less'} format is not one c2pa embeds into here.",
                              hint="Signed formats: " + ", ".join(sorted({s.lstrip('.') for s in SIGNABLE})) + ".")
    return mime


def _manifest(title: str, claims: dict[str, Any]) -> dict[str, Any]:
    from desktop import __version__

    agent: dict[str, Any] = {"name": "Studiolo", "version": __version__}
    parameters = {k: claims[k] for k in ("generator", "model", "weights_sha256") if k in claims}
    action: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                              "softwareAgent": agent}
    if parameters:
        action["parameters"] = parameters
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [action]}},
            {"label": GENERATION_ASSERTION, "data": claims},
        ],
    }
