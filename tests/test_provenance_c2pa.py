"""C2PA Content Credentials: signing outputs in place, verifying them, the app's key, ``studiolo verify``."""

from __future__ import annotations

import io
import json
import stat
import struct
import wave
import zlib
from pathlib import Path

import pytest
from PIL import Image

from desktop.cli import main
from desktop.provenance import keys as keys_mod
from desktop.provenance.c2pa_sign import SIGNABLE, TRAINED_ALGORITHMIC_MEDIA, ProvenanceError, sign_file
from desktop.provenance.c2pa_verify import verify_file
from desktop.provenance.keys import load_signing_keys

CLAIMS = {"generator": "image.diffusers", "model": "tiny-sd", "weights_sha256": "ab" * 32, "prompt": "a red fox",
          "seed": 7}


def _png(path: Path) -> Path:
    Image.new("RGB", (8, 8), (200, 30, 10)).save(path)
    return path


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<80h", *range(-40, 40)))
    return path


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = 8, []
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((data[pos + 4:pos + 8], data[pos:pos + 12 + size]))
        pos += 12 + size
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.fixture
def signed_png(tmp_path: Path) -> Path:
    path = _png(tmp_path / "out.png")
    sign_file(path, claims=CLAIMS, include_prompt=True, keys=load_signing_keys())
    return path


def test_signed_png_verifies_valid_with_its_claims(signed_png: Path) -> None:
    verdict = verify_file(signed_png)
    assert verdict.state == "valid", verdict.reasons
    assert verdict.claims["generator"] == "image.diffusers"
    assert verdict.claims["model"] == "tiny-sd"
    assert verdict.claims["weights_sha256"] == "ab" * 32
    assert verdict.claims["prompt"] == "a red fox"
    assert verdict.claims["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert "Studiolo Content Credentials" in verdict.claims["signer"]
    assert Image.open(signed_png).getpixel((0, 0)) == (200, 30, 10)  # still the same picture


def test_formats_sign_and_verify_and_the_prompt_can_be_left_out(tmp_path: Path) -> None:
    import soundfile

    keys = load_signing_keys()
    files = [_wav(tmp_path / "a.wav")]
    for suffix in (".jpg", ".webp"):
        Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / f"i{suffix}")
        files.append(tmp_path / f"i{suffix}")
    for suffix in (".flac", ".mp3"):
        soundfile.write(tmp_path / f"a{suffix}", [0.0, 0.1, -0.1] * 800, 8000)
        files.append(tmp_path / f"a{suffix}")
    assert {f.suffix for f in files} <= set(SIGNABLE)
    for path in files:
        sign_file(path, claims=CLAIMS, include_prompt=False, keys=keys)
        verdict = verify_file(path)
        assert verdict.state == "valid", (path.name, verdict.reasons)
        assert verdict.claims["model"] == "tiny-sd" and "prompt" not in verdict.claims


def test_changed_pixels_are_tampered(signed_png: Path) -> None:
    data = signed_png.read_bytes()
    buffer = io.BytesIO()
    image = Image.open(signed_png).convert("RGB")
    image.putpixel((3, 3), (201, 30, 10))
    image.save(buffer, "PNG")
    new_idat = b"".join(c for kind, c in _chunks(buffer.getvalue()) if kind == b"IDAT")
    kept = [new_idat if kind == b"IDAT" else c for kind, c in _chunks(data)]  # the manifest chunk stays
    signed_png.write_bytes(data[:8] + b"".join(kept))
    verdict = verify_file(signed_png)
    assert verdict.state == "tampered"
    assert any("mismatch" in reason for reason in verdict.reasons)


def test_a_text_chunk_added_after_signing_is_tampered(signed_png: Path) -> None:
    data = signed_png.read_bytes()
    end = data.rindex(b"IEND") - 4
    signed_png.write_bytes(data[:end] + _chunk(b"tEXt", b"parameters\x00added later") + data[end:])
    assert verify_file(signed_png).state == "tampered"


def test_stripped_metadata_is_unsigned(signed_png: Path) -> None:
    Image.open(signed_png).save(signed_png)  # re-saved from the pixels only
    verdict = verify_file(signed_png)
    assert verdict.state == "unsigned" and verdict.claims == {}


def test_a_corrupt_manifest_is_reported_not_raised(signed_png: Path) -> None:
    data = bytearray(signed_png.read_bytes())
    start = data.index(b"caBX") + 4
    data[start + 40:start + 90] = b"\x00" * 50
    signed_png.write_bytes(bytes(data))
    verdict = verify_file(signed_png)
    assert verdict.state == "corrupt" and verdict.reasons
    assert verify_file(signed_png.with_name("missing.png")).state == "corrupt"


def test_another_key_pair_is_another_signer_and_a_users_own_certificate_signs(tmp_path: Path) -> None:
    keys_mod.create_signing_keys(tmp_path / "theirs")
    theirs = load_signing_keys(tmp_path / "theirs" / keys_mod.CHAIN_FILE, tmp_path / "theirs" / keys_mod.KEY_FILE)
    assert not theirs.own
    path = _png(tmp_path / "x.png")
    sign_file(path, claims=CLAIMS, include_prompt=True, keys=theirs)
    load_signing_keys()  # this installation's own key exists
    verdict = verify_file(path)
    assert verdict.state == "other_signer" and verdict.claims["prompt"] == "a red fox"
    assert verify_file(path, keys=theirs).state == "valid"
    with pytest.raises(keys_mod.SigningKeyError, match="cannot be used"):
        load_signing_keys(tmp_path / "theirs" / keys_mod.CHAIN_FILE, tmp_path / "nope.pem")


def test_a_manifest_made_by_another_tool_verifies_as_intact_from_another_signer() -> None:
    """The c2pa-python project's own test fixture (tests/fixtures/README.md), signed by c2pa-rs's test certificate."""
    verdict = verify_file(Path(__file__).parent / "fixtures" / "c2pa-C.jpg")
    assert verdict.state == "other_signer", verdict.reasons
    assert "C2PA Test Signing Cert" in verdict.claims["signer"]
    assert verdict.claims["digital_source_type"].endswith("/algorithmicMedia")


def test_a_byte_changed_in_another_tools_picture_is_tampered(tmp_path: Path) -> None:
    altered = bytearray((Path(__file__).parent / "fixtures" / "c2pa-C.jpg").read_bytes())
    altered[-2000] ^= 0xFF  # inside the JPEG's image data, near its end
    (tmp_path / "C.jpg").write_bytes(bytes(altered))
    assert verify_file(tmp_path / "C.jpg").state == "tampered"


def test_the_app_key_is_private_and_a_corrupt_one_is_made_anew_with_a_warning() -> None:
    first = load_signing_keys()
    folder = keys_mod.key_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in (keys_mod.KEY_FILE, keys_mod.CHAIN_FILE, keys_mod.CA_KEY_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert first.warnings == [] and load_signing_keys().serial == first.serial  # kept, not remade
    (folder / keys_mod.KEY_FILE).write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    again = load_signing_keys()
    assert again.serial != first.serial
    assert len(again.warnings) == 1 and "could not be used" in again.warnings[0]
    assert (folder / (keys_mod.KEY_FILE + ".corrupt")).exists()  # kept aside, nothing lost


def test_unsupported_format_raises_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("once")
    with pytest.raises(ProvenanceError, match="cannot be added"):
        sign_file(path, claims=CLAIMS, include_prompt=True, keys=load_signing_keys())
    assert path.read_text() == "once"


def test_verify_command_exit_codes_and_json(signed_png: Path, tmp_path: Path, capsys) -> None:
    assert main(["verify", str(signed_png)]) == 0
    out = capsys.readouterr().out
    assert f"{signed_png}: valid" in out and "prompt: a red fox" in out
    plain = _png(tmp_path / "plain.png")
    assert main(["verify", "--json", str(signed_png), str(plain)]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in rows] == ["valid", "unsigned"]
    assert rows[0]["claims"]["model"] == "tiny-sd" and rows[1]["summary"].startswith("No Content Credentials")
