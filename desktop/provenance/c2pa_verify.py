"""Read and check the C2PA Content Credentials of a file: :func:`verify_file` → :class:`Verdict`.

States: ``valid`` (signed by this installation's certificate — or the user's own, when one is set — and unchanged
since), ``tampered`` (a manifest is there but the file or the manifest changed after signing), ``unsigned`` (no
manifest: never signed, or its metadata was stripped), ``other_signer`` (a sound manifest signed by another
certificate: another installation, another C2PA tool, a camera) and ``corrupt`` (a manifest that cannot be read,
or a file that cannot be read). Nothing is fetched from the network. :func:`verify_file` never raises for a bad file.
"""

from __future__ import annotations

import io
import json
import mimetypes
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from desktop.provenance.c2pa_sign import GENERATION_ASSERTION, reader_settings
from desktop.provenance.keys import SigningKeys

VALID, TAMPERED, UNSIGNED, OTHER_SIGNER, CORRUPT = "valid", "tampered", "unsigned", "other_signer", "corrupt"
STATES = (VALID, TAMPERED, UNSIGNED, OTHER_SIGNER, CORRUPT)

_SUMMARIES = {
    VALID: "Content Credentials valid: signed by this Studiolo and unchanged since",
    TAMPERED: "Content Credentials do not match: the file or its manifest changed after signing",
    UNSIGNED: "No Content Credentials (never signed, or its metadata was stripped)",
    OTHER_SIGNER: "Content Credentials intact, signed by another certificate",
    CORRUPT: "Content Credentials unreadable",
}


@dataclass
class Verdict:
    """What :func:`verify_file` found. ``claims``: ``generator``, ``model``, ``weights_sha256``, ``prompt``,
    ``digital_source_type``, ``claim_generator`` and ``signer`` where the manifest has them. ``reasons``: the
    validation failures (c2pa's codes and explanations) or why the file could not be read."""

    path: str
    state: str
    claims: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.state == VALID

    @property
    def summary(self) -> str:
        """One line a person can read."""
        text = _SUMMARIES[self.state]
        signer = self.claims.get("signer")
        if signer and self.state in (OTHER_SIGNER, TAMPERED):
            text += f" ({signer})"
        if self.reasons and self.state in (TAMPERED, CORRUPT):
            text += ": " + "; ".join(self.reasons[:3])
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


def own_keys() -> SigningKeys | None:
    """This installation's signing keys if they exist (none are made here: verifying never creates a key)."""
    from desktop.provenance.keys import CHAIN_FILE, KEY_FILE, _read_keys, key_dir

    folder = key_dir()
    try:
        return _read_keys(folder / CHAIN_FILE, folder / KEY_FILE, own=True)
    except Exception:  # missing or unusable: nothing of ours can verify as valid
        return None


def verify_file(path: str | Path, *, keys: SigningKeys | None = None) -> Verdict:
    """Check the Content Credentials of ``path`` against ``keys`` (default: this installation's, see
    :func:`own_keys`): a manifest signed under their certificate chain is ``valid``, any other sound one
    ``other_signer``."""
    import c2pa

    path = Path(path)
    keys = keys if keys is not None else own_keys()
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Verdict(str(path), CORRUPT, reasons=[f"the file cannot be read: {exc.strerror or exc}"])
    try:
        context = c2pa.Context(settings=c2pa.Settings.from_dict(reader_settings(_anchor(keys))))
        mime = mimetypes.guess_type(path.name)[0] or ""
        with c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        text = str(exc)
        if type(exc).__name__ in ("_C2paManifestNotFound",) or "ManifestNotFound" in text or "JUMBF" in text:
            return Verdict(str(path), UNSIGNED)
        if type(exc).__name__ == "_C2paNotSupported" or text.startswith("NotSupported"):
            return Verdict(str(path), UNSIGNED, reasons=[f"this file format cannot carry Content Credentials ({text})"])
        return Verdict(str(path), CORRUPT, reasons=[f"the manifest cannot be read: {text}"])
    except (ValueError, OSError) as exc:
        return Verdict(str(path), CORRUPT, reasons=[f"the manifest cannot be read: {exc}"])
    return _judge(str(path), store)


def _anchor(keys: SigningKeys | None) -> str | None:
    if keys is None:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        root = x509.load_pem_x509_certificates(keys.chain_pem)[-1]
    except ValueError:
        return None
    return root.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _judge(path: str, store: dict[str, Any]) -> Verdict:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "")
    state = store.get("validation_state")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = results.get("failure") or [s for s in store.get("validation_status") or []]
    if not isinstance(active, dict):
        return Verdict(path, CORRUPT, reasons=["the manifest store has no active manifest"])
    claims = _claims(active)
    reasons = [f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in failures
               if f.get("code") != "signingCredential.untrusted"]
    if state == "Trusted":
        return Verdict(path, VALID, claims)
    codes = {str(f.get("code", "")) for f in failures}
    if state == "Valid" or not (codes - {"signingCredential.untrusted"}):
        return Verdict(path, OTHER_SIGNER, claims, reasons)
    if all(code.startswith("signingCredential.") for code in codes):  # an expired or revoked certificate, intact
        return Verdict(path, OTHER_SIGNER, claims, reasons)
    return Verdict(path, TAMPERED, claims, reasons)


def _claims(manifest: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    assertions = {a.get("label"): a.get("data") for a in manifest.get("assertions") or [] if isinstance(a, dict)}
    ours = assertions.get(GENERATION_ASSERTION)
    if isinstance(ours, dict):
        claims.update({k: v for k, v in ours.items() if isinstance(k, str)})
    for label, data in assertions.items():
        if not (isinstance(label, str) and label.startswith("c2pa.actions") and isinstance(data, dict)):
            continue
        for action in data.get("actions") or []:
            if isinstance(action, dict) and action.get("digitalSourceType"):
                claims.setdefault("digital_source_type", action["digitalSourceType"])
    generator_info = manifest.get("claim_generator_info") or []
    if generator_info and isinstance(generator_info[0], dict):
        info = generator_info[0]
        claims["claim_generator"] = " ".join(str(info[k]) for k in ("name", "version") if info.get(k))
    elif manifest.get("claim_generator"):
        claims["claim_generator"] = str(manifest["claim_generator"])
    signature = manifest.get("signature_info") or {}
    signer = ", ".join(str(signature[k]) for k in ("common_name", "issuer") if signature.get(k))
    if signer:
        claims["signer"] = signer
    return claims
