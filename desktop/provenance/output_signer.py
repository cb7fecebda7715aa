"""Content Credentials for every output the host saves: :class:`OutputSigner`, used by the engine's saving path.

The worker encodes an output with all its metadata (PNG text chunks, WAV/FLAC tags), then hands the bytes to
:meth:`OutputSigner.sign`, and only then writes the file — so nothing is added after the manifest (which would make
it read as tampered), and the library's SHA-256 of the file is that of the signed bytes.

Formats c2pa cannot embed into (plain text with its JSON sidecar) are saved as they are: their record is the
sidecar. When signing is on and an output of a signable format cannot be signed (the user's certificate cannot be
read, c2pa refuses the bytes), the output is still saved — nothing is lost — and the job carries a warning saying
it is unsigned and why: never silently unsigned. The keys are read (or made) once, on the first signed output; a
key that had to be made anew (:mod:`desktop.provenance.keys`) is reported once, with that first output's job.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop.api import EncodedOutput, StudioloError

log = logging.getLogger(__name__)

_CLAIM_KEYS = ("generator", "generator_version", "model", "seed", "job_id", "created")


class OutputSigner:
    """Signs encoded outputs with the app's key (made on first use in ``key_folder``, default the config folder's
    ``c2pa``) or the user's own ``certificate`` + ``private_key``. ``include_prompt``: record the prompts. Safe to
    share between the engine's worker threads."""

    def __init__(self, *, include_prompt: bool = True, certificate: str | Path | None = None,
                 private_key: str | Path | None = None, key_folder: Path | None = None) -> None:
        self.include_prompt = include_prompt
        self.certificate = certificate
        self.private_key = private_key
        self.key_folder = key_folder
        self._lock = threading.Lock()
        self._keys: Any = None
        self._pending_warnings: list[str] = []

    @classmethod
    def from_settings(cls, settings: Any) -> OutputSigner | None:
        """The signer the ``sign_*`` settings ask for, or None when signing is off."""
        if not getattr(settings, "sign_outputs", True):
            return None
        return cls(include_prompt=getattr(settings, "sign_include_prompt", True),
                   certificate=getattr(settings, "signing_certificate", None),
                   private_key=getattr(settings, "signing_key", None))

    def sign(self, encoded: EncodedOutput, metadata: dict[str, Any], *,
             warn: Callable[[str], None]) -> EncodedOutput:
        """``encoded`` with a signed manifest embedded, or ``encoded`` itself when its format carries none (text)
        or when signing failed — then ``warn`` is told why (the output is saved unsigned, never lost)."""
        from desktop.provenance.c2pa_sign import SIGNABLE, sign_bytes

        if encoded.suffix.lower() not in SIGNABLE:
            return encoded
        try:
            keys = self._load_keys()
        except StudioloError as exc:
            warn(f"Saved WITHOUT Content Credentials: {exc.message} {exc.hint or ''}".rstrip())
            return encoded
        except OSError as exc:  # the app's new key could not be written (a full disk, a read-only config folder)
            warn(f"Saved WITHOUT Content Credentials: the signing key could not be written to {key_folder_of(self)} "
                 f"({exc.strerror or exc}). Free some space or check that folder's permissions; the next output "
                 "tries again.")
            return encoded
        for message in self._take_warnings():
            warn(message)
        try:
            data = sign_bytes(encoded.data, encoded.suffix, claims=claims_of(metadata),
                              include_prompt=self.include_prompt, keys=keys,
                              title=f"{metadata.get('job_id', 'output')}{encoded.suffix}")
        except StudioloError as exc:
            log.warning("output of job %s saved unsigned: %s", metadata.get("job_id"), exc)
            warn(f"Saved WITHOUT Content Credentials: {exc.message}")
            return encoded
        except Exception as exc:  # c2pa's own failure of another kind: the output is kept all the same
            log.exception("output of job %s saved unsigned", metadata.get("job_id"))
            warn(f"Saved WITHOUT Content Credentials: signing failed ({type(exc).__name__}: {exc}); see the log.")
            return encoded
        return dataclasses.replace(encoded, data=data)

    def _load_keys(self) -> Any:
        from desktop.provenance.keys import load_signing_keys

        with self._lock:
            if self._keys is None:
                keys = load_signing_keys(self.certificate, self.private_key, folder=self.key_folder)
                self._pending_warnings = list(keys.warnings)
                self._keys = keys
            return self._keys

    def _take_warnings(self) -> list[str]:
        with self._lock:
            taken, self._pending_warnings = self._pending_warnings, []
        return taken


def key_folder_of(signer: OutputSigner) -> Path:
    from desktop.provenance.keys import key_dir

    return signer.key_folder or key_dir()


def claims_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """What an output's manifest records, from the metadata the host wrote for it: generator (and version), model,
    the weights' hash, seed, job, time, the prompts, and how it was watermarked (when it was)."""
    claims: dict[str, Any] = {key: metadata.get(key) for key in _CLAIM_KEYS}
    record = metadata.get("reproduce")
    claims["weights_sha256"] = record.get("model_sha256") if isinstance(record, dict) else None
    params = metadata.get("params") if isinstance(metadata.get("params"), dict) else {}
    claims["prompt"] = metadata.get("prompt")
    negative = params.get("negative_prompt")
    claims["negative_prompt"] = negative if isinstance(negative, str) and negative else None
    output = metadata.get("output") if isinstance(metadata.get("output"), dict) else {}
    claims["watermark"] = output.get("watermark")
    return {key: value for key, value in claims.items() if value is not None}
