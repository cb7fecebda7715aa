"""The key and certificate chain that sign Content Credentials (C2PA manifests).

On first use Studiolo makes a small certificate chain of its own with ``cryptography``, offline: a CA certificate
("Studiolo local CA") and a signing certificate issued by it, with what the C2PA specification asks of a signing
certificate (X.509 v3, not a CA, key usage ``digitalSignature`` marked critical, extended key usage
``emailProtection`` and ``documentSigning``, ECDSA P-256 / ES256). They live in ``<config>/c2pa/`` (folder 0700,
files 0600). A self-signed chain proves continuity (the same installation signed these files), not identity.

A person can sign with a certificate of their own instead: :func:`load_signing_keys` takes the paths of a PEM
certificate chain (signing certificate first) and its PEM private key. A missing, unreadable or corrupt app key is
made anew, and the reason comes back in :attr:`SigningKeys.warnings` for the caller to show — signing never silently
stops. A user's own key that cannot be read is an error (it is not ours to replace).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from desktop import paths
from desktop.api.errors import StudioloError

log = logging.getLogger(__name__)

KEY_DIR = "c2pa"
KEY_FILE = "signing-key.pem"
CHAIN_FILE = "signing-chain.pem"
CA_KEY_FILE = "ca-key.pem"
SIGNER_NAME = "Studiolo Content Credentials"
CA_NAME = "Studiolo local CA"
_VALID_YEARS = 20
_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"  # id-kp-documentSigning (RFC 9336)


class SigningKeyError(StudioloError):
    """A certificate or key the user chose cannot be used to sign."""


@dataclass
class SigningKeys:
    """A PEM private key and its PEM certificate chain (signing certificate first), ready for c2pa's signer.

    ``alg`` is the C2PA algorithm name (``es256``, ``es384``, ``es512``, ``ps256``, ``ed25519``...).
    ``serial`` and ``issuer``: the signing certificate's serial number and its issuer's name.
    ``own``: True when the key is the app's own. ``warnings``: what went wrong on the way (a key made anew).
    """

    key_pem: bytes
    chain_pem: bytes
    alg: str
    serial: int
    issuer: str
    own: bool = True
    warnings: list[str] = field(default_factory=list)


def key_dir() -> Path:
    """Where the app's own signing key and certificate chain are kept."""
    return paths.config_dir() / KEY_DIR


def load_signing_keys(certificate: str | Path | None = None, private_key: str | Path | None = None, *,
                      folder: Path | None = None) -> SigningKeys:
    """The keys to sign with: the user's own ``certificate`` + ``private_key`` (PEM files) when given, else the app's
    own, made in ``folder`` (default :func:`key_dir`) on first use and made anew, with a warning, when unusable."""
    if certificate or private_key:
        if not (certificate and private_key):
            raise SigningKeyError("A signing certificate needs its private key (and the key its certificate).",
                                  hint="Set both the certificate file and the private key file, or neither.")
        return _load_user_keys(Path(certificate), Path(private_key))
    folder = folder or key_dir()
    warnings: list[str] = []
    if (folder / KEY_FILE).exists() or (folder / CHAIN_FILE).exists():
        try:
            return _read_keys(folder / CHAIN_FILE, folder / KEY_FILE, own=True)
        except (OSError, ValueError, SigningKeyError) as exc:
            message = (f"The Content Credentials signing key in {folder} could not be used ({_reason(exc)}); a new "
                       "key and certificate were made. Files signed before verify as signed by another certificate.")
            log.warning(message)
            warnings.append(message)
            _set_aside(folder)
    keys = create_signing_keys(folder)
    keys.warnings[:0] = warnings
    return keys


def create_signing_keys(folder: Path) -> SigningKeys:
    """Make a new CA + signing certificate chain and key in ``folder`` (0700; files 0600) and return them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=365 * _VALID_YEARS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Studiolo")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIGNER_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Studiolo")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                              x509.ObjectIdentifier(_DOCUMENT_SIGNING)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    ca_key_pem = ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    chain_pem = cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for file_name, data in ((CA_KEY_FILE, ca_key_pem), (KEY_FILE, key_pem), (CHAIN_FILE, chain_pem)):
        _write_private(folder / file_name, data)
    return SigningKeys(key_pem=key_pem, chain_pem=chain_pem, alg="es256", serial=cert.serial_number,
                       issuer=ca_name.rfc4514_string())


def _load_user_keys(certificate: Path, private_key: Path) -> SigningKeys:
    try:
        return _read_keys(certificate, private_key, own=False)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"Your signing certificate {certificate} or key {private_key} cannot be used: "
                              f"{_reason(exc)}.",
                              hint="Point to a PEM certificate chain (signing certificate first) and its PEM "
                                   "private key, or clear both settings to sign with Studiolo's own key.") from exc


def _read_keys(chain_path: Path, key_path: Path, *, own: bool) -> SigningKeys:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    chain_pem = chain_path.read_bytes()
    key_pem = key_path.read_bytes()
    certs = x509.load_pem_x509_certificates(chain_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    leaf = certs[0]
    public = leaf.public_key()
    if public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise SigningKeyError("the private key does not belong to the first certificate of the chain")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(key.curve.name)
        if alg is None:
            raise SigningKeyError(f"the elliptic curve {key.curve.name} is not one C2PA signs with")
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        alg = "ps256"
    else:
        raise SigningKeyError(f"a {type(key).__name__} key is not one C2PA signs with")
    return SigningKeys(key_pem=key_pem, chain_pem=chain_pem, alg=alg, serial=leaf.serial_number,
                       issuer=leaf.issuer.rfc4514_string(), own=own)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _set_aside(folder: Path) -> None:
    """Keep an unusable key's files as ``*.corrupt`` (nothing lost) before new ones are made."""
    for file_name in (KEY_FILE, CHAIN_FILE, CA_KEY_FILE):
        path = folder / file_name
        try:
            path.replace(path.with_name(file_name + ".corrupt"))
        except OSError:
            pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, StudioloError):
        return exc.message
    if isinstance(exc, FileNotFoundError):
        return f"{Path(exc.filename or '').name or 'a file'} is missing"
    if isinstance(exc, PermissionError):
        return f"{Path(exc.filename or '').name or 'a file'} cannot be read (permission denied)"
    return str(exc) or type(exc).__name__
