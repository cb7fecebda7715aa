"""The audio generators' file metadata (plugins/audio/metadata.py): WAV and FLAC files that carry the full
parameters, short tags other tools show, and reading the parameters back — without ever raising."""

from __future__ import annotations

import io
import json
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from mutagen.flac import FLAC

from desktop.api import AudioOutput, EncodedOutput, flac_comment, to_json, validate, wav_chunk
from plugins.audio import metadata as meta
from plugins.audio.metadata import Reuse, encode, encode_flac, encode_wav, read_params, read_reuse
from plugins.audio.params import MusicParams, SpeechParams

RATE = 16000
LONG_TEXT = "".join(f"Sentence {i}: the quick brown fox — naïve café ✓. " for i in range(220))[:10_240]
SPEECH = SpeechParams(text=LONG_TEXT, speaking_rate=1.35, noise_scale=0.4, sample_rate=22050)
MUSIC = MusicParams(prompt="calm piano with rain, " * 5, duration=12.5, guidance_scale=4.5, sample_rate=32000)


# ---------------------------------------------------------------------------------------------- helpers


def host_metadata(params: Any, *, generator: str = "audio.speech", seed: Any = 5, model: Any = "demo",
                  output: Any = None) -> dict[str, Any]:
    """What the engine passes to ``encode_output`` (see ``Worker.metadata``)."""
    data = to_json(params)
    return {
        "studiolo_version": "0.1.0",
        "generator": generator,
        "generator_version": "0.1.0",
        "kind": "audio",
        "model": model,
        "params": data,
        "prompt": data.get("text", data.get("prompt")),
        "seed": seed,
        "device": "cpu",
        "job_id": "job-1",
        "created": "2024-05-01T12:00:00+0000",
        "timings": {"load": 0.5, "generate": 1.25},
        "partial": False,
        "output": {} if output is None else output,
    }


def tone(frames: int = 4000, channels: int = 1) -> np.ndarray:
    t = np.arange(frames, dtype=np.float32) / RATE
    mono = 0.6 * np.sin(2 * np.pi * 440 * t) * np.linspace(0, 1, frames, dtype=np.float32)
    return mono if channels == 1 else np.stack([mono * (1 - 0.3 * c) for c in range(channels)], axis=1)


def clip(channels: int = 1, frames: int = 4000) -> AudioOutput:
    return AudioOutput(samples=tone(frames, channels), sample_rate=RATE)


def wav(params: Any = SPEECH, **kwargs: Any) -> bytes:
    return encode_wav(clip(), host_metadata(params, **kwargs)).data


def flac(params: Any = SPEECH, **kwargs: Any) -> bytes:
    return encode_flac(clip(), host_metadata(params, **kwargs)).data


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The top-level chunks of a well-formed RIFF/WAVE file (id, payload)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, pos = [], 12
    while pos < len(data):
        kind, size = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


def riff(*chunks: tuple[bytes, bytes], pad: bool = True) -> bytes:
    body = b"WAVE" + b"".join(kind + struct.pack("<I", len(p)) + p + (b"\0" if pad and len(p) % 2 else b"")
                              for kind, p in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def with_studiolo_json(base: bytes, payload: bytes) -> bytes:
    """``base`` (a WAV) with its ``stdo`` chunk replaced by ``payload``."""
    return riff(*[(k, payload if k == meta.WAV_CHUNK_ID else p) for k, p in riff_chunks(base)])


def flac_with_comment(value: str, *, key: str = "STUDIOLO") -> bytes:
    data = flac()
    f = FLAC(io.BytesIO(data))
    buffer = io.BytesIO(data)
    f.tags[key] = value
    f.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["wav", "flac"])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_with_a_10_kb_prompt(tmp_path: Path, fmt: str, channels: int) -> None:
    assert len(LONG_TEXT) == 10_240
    samples = tone(6000, channels)
    encoded = encode(AudioOutput(samples=samples, sample_rate=RATE), host_metadata(SPEECH, seed=2**63 - 1), fmt)
    assert isinstance(encoded, EncodedOutput) and encoded.suffix == f".{fmt}" and encoded.embeds_metadata
    path = tmp_path / f"clip{encoded.suffix}"
    path.write_bytes(encoded.data)

    for source in (path, str(path), encoded.data):
        assert read_reuse(source) == Reuse("audio.speech", SPEECH, 2**63 - 1, "demo")
    assert read_params(path) == SPEECH

    # the audio itself, as any reader sees it
    decoded, rate = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == RATE and decoded.shape == (6000, channels)
    np.testing.assert_allclose(decoded, samples.reshape(6000, channels), atol=2 / 32768)  # 16-bit: within two steps
    info = soundfile.info(path)
    assert info.subtype == "PCM_16" and info.format == fmt.upper()


def test_music_params_come_back_as_music_params() -> None:
    for data in (encode_wav(clip(), host_metadata(MUSIC, generator="audio.music", seed=None)).data,
                 encode_flac(clip(), host_metadata(MUSIC, generator="audio.music", seed=None)).data):
        assert read_reuse(data) == Reuse("audio.music", MUSIC, None, "demo")


def test_the_outputs_own_seed_wins_and_the_generator_picks_the_params_type() -> None:
    assert read_reuse(wav(output={"seed": 77})).seed == 77  # type: ignore[union-attr]
    # other ids are fitted by what they name, or by the params they hold
    for generator, expected in (("audio.musicgen", MusicParams), ("acme.audio.tts", SpeechParams),
                                ("audio.other", SpeechParams)):
        reuse = read_reuse(wav(SPEECH if expected is SpeechParams else MUSIC, generator=generator))
        assert reuse is not None and type(reuse.params) is expected and reuse.generator == generator
    assert read_reuse(wav(generator="image.diffusers")) is None  # not an audio generator's file
    assert read_reuse(wav(generator=5)) is None


def test_wav_layout_and_short_info_fields_libsndfile_reads() -> None:
    data = wav()
    chunks = riff_chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds == [b"fmt ", b"LIST", meta.WAV_CHUNK_ID, b"data"]
    fmt = dict(chunks)[b"fmt "]
    assert struct.unpack("<HHIIHH", fmt) == (1, 1, RATE, RATE * 2, 2, 16)
    info = dict(chunks)[b"LIST"]
    assert info[:4] == b"INFO" and len(info) < 1024  # short: long INFO fields make libsndfile drop them all
    assert json.loads(dict(chunks)[meta.WAV_CHUNK_ID]) == host_metadata(SPEECH)
    with soundfile.SoundFile(io.BytesIO(data)) as f:
        assert f.title == LONG_TEXT[: meta.TITLE_LIMIT - 1] + "…"
        assert f.comment == "Studiolo audio.speech seed 5 model demo"
        assert f.software == "Studiolo"
        assert f.frames == 4000


def test_odd_sizes_are_padded() -> None:
    params = SpeechParams(text="odd")
    metadata = host_metadata(params)
    odd_seen = False
    for extra in ("", "x"):  # one of the two makes the JSON an odd number of bytes
        metadata["device"] = "cpu" + extra
        data = encode_wav(AudioOutput(samples=tone(3), sample_rate=RATE), metadata).data
        chunks = dict(riff_chunks(data))  # checks the RIFF size and the pad bytes
        odd_seen |= len(chunks[meta.WAV_CHUNK_ID]) % 2 == 1 and len(chunks[b"data"]) % 2 == 0
        assert read_params(data) == params
        assert soundfile.info(io.BytesIO(data)).frames == 3
    assert odd_seen
    odd_json = json.dumps(host_metadata(params)) + (" " if len(json.dumps(host_metadata(params))) % 2 == 0 else "")
    assert len(odd_json) % 2 == 1
    data = with_studiolo_json(wav(), odd_json.encode())
    assert read_params(data) == params
    # a writer that forgot the pad byte after an odd-sized chunk
    unpadded = riff((b"fmt ", riff_chunks(data)[0][1]), (b"junk", b"abc"), (meta.WAV_CHUNK_ID, odd_json.encode()),
                    pad=False)
    assert read_params(unpadded) == params


def test_flac_vorbis_comments_mutagen_and_libsndfile_read() -> None:
    data = flac()
    tags = FLAC(io.BytesIO(data)).tags
    assert tags["TITLE"] == [LONG_TEXT] and tags["DESCRIPTION"] == [LONG_TEXT]
    assert tags["COMMENT"] == ["Studiolo audio.speech seed 5 model demo"]
    assert tags["SOFTWARE"] == ["Studiolo"]
    assert json.loads(tags["STUDIOLO"][0]) == host_metadata(SPEECH)
    with soundfile.SoundFile(io.BytesIO(data)) as f:
        assert f.title == LONG_TEXT and f.software == "Studiolo" and f.frames == 4000


def test_clipping_nan_and_empty_clips() -> None:
    loud = AudioOutput(samples=np.array([2.0, -3.0, np.nan, 0.5], np.float32), sample_rate=RATE)
    for fmt in ("wav", "flac"):
        decoded, _ = soundfile.read(io.BytesIO(encode(loud, {}, fmt).data), dtype="float32")
        np.testing.assert_allclose(decoded, [1.0, -1.0, 0.0, 0.5], atol=1e-4)
        empty = encode(AudioOutput(samples=np.zeros(0, np.float32), sample_rate=RATE), host_metadata(SPEECH), fmt)
        assert read_params(empty.data) == SPEECH
    with pytest.raises(ValueError):
        encode(loud, {}, "mp3")
    with pytest.raises(ValueError):
        encode(AudioOutput(samples=np.zeros((2, 2, 2), np.float32), sample_rate=RATE), {}, "wav")


# ------------------------------------------------------------------------------------------ hostile input


def test_truncation_at_many_offsets() -> None:
    for data in (wav(), flac()):
        full = read_reuse(data)
        assert full is not None
        seen = set()
        for end in list(range(0, 200)) + list(range(200, len(data) + 1, 37)) + [len(data) - 1, len(data)]:
            result = read_reuse(data[:end])
            assert result in (None, full), end
            seen.add(result is None)
        assert seen == {True, False}


def test_huge_chunk_and_block_sizes() -> None:
    base = wav()
    fmt = riff_chunks(base)[0][1]
    json_payload = json.dumps(host_metadata(SPEECH)).encode()
    huge = (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"LIST" + struct.pack("<I", 0xFFFFFFF0) + b"INFO")
    assert read_reuse(huge) is None
    claims_too_much = b"RIFF\0\0\0\0WAVE" + meta.WAV_CHUNK_ID + struct.pack("<I", 0xFFFFFFFF) + json_payload
    assert read_reuse(claims_too_much) is None
    assert read_reuse(riff((b"junk", b"x" * 10), (meta.WAV_CHUNK_ID, json_payload))) is not None
    many = riff(*[(b"junk", b"")] * (meta.MAX_CHUNKS + 5), (meta.WAV_CHUNK_ID, json_payload))
    assert read_reuse(many) is None  # the walk is bounded
    # FLAC: a metadata block claiming 16 MB, and a Vorbis comment count of four billion
    assert read_reuse(b"fLaC" + bytes([0x04, 0xFF, 0xFF, 0xFF]) + b"\0" * 64) is None
    comment = struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0xFFFFFFFF) + struct.pack("<I", 0xFFFFFFF0) + b"x"
    assert read_reuse(b"fLaC" + bytes([0x84]) + len(comment).to_bytes(3, "big") + comment) is None
    vendor_lie = struct.pack("<I", 0xFFFFFFFF) + b"v"
    assert read_reuse(b"fLaC" + bytes([0x84]) + len(vendor_lie).to_bytes(3, "big") + vendor_lie) is None


def test_metadata_over_the_size_limit_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, flac_data = wav(), flac()
    monkeypatch.setattr(meta, "MAX_METADATA", 4096)  # the JSON of a 10 KB prompt is over it now
    path = tmp_path / "big.wav"
    path.write_bytes(data)
    assert read_reuse(path) is None and read_reuse(data) is None
    assert read_reuse(flac_data) is None
    assert read_reuse(wav(SpeechParams(text="short"))) is not None
    assert read_reuse(flac(SpeechParams(text="short"))) is not None


def test_nan_deep_nesting_and_wrong_types() -> None:
    base = wav()
    nan = (b'{"generator": "audio.speech", "params": {"text": "p", "speaking_rate": NaN, "noise_scale": Infinity,'
           b' "sample_rate": -Infinity}, "seed": NaN, "output": {"seed": Infinity}, "model": NaN}')
    assert read_reuse(with_studiolo_json(base, nan)) == Reuse("audio.speech", SpeechParams(text="p"), None, None)
    deep = b"[" * 100_000 + b"]" * 100_000
    for payload in (deep, b'{"generator": "audio.speech", "params": {"text": ' + deep + b"}}",
                    b'{"params": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}"):
        result = read_reuse(with_studiolo_json(base, payload))
        assert result is None or result.params == SpeechParams()
        assert read_reuse(flac_with_comment(payload.decode())) in (None, Reuse(None, SpeechParams(), None, None))
    params = {"text": ["a"], "speaking_rate": "2.5", "noise_scale": 99, "sample_rate": 12345, "unknown": {"x": 1}}
    wrong = json.dumps({"generator": "audio.speech", "params": params, "seed": "-3", "model": ["m"],
                        "output": {"seed": 1.5}}).encode()
    assert read_reuse(with_studiolo_json(base, wrong)) == Reuse(
        "audio.speech", SpeechParams(speaking_rate=2.5, noise_scale=2.0), None, None)
    text = json.dumps({"generator": "audio.speech", "params": {"text": "a\0b", "sample_rate": "48000"},
                       "seed": "12"}).encode()
    assert read_reuse(with_studiolo_json(base, text)) == Reuse(
        "audio.speech", SpeechParams(text="ab", sample_rate=48000), 12, None)
    for value in ([1, 2], "text", 5, None, {"params": [1]}, {"params": None}, {"generator": "audio.speech"},
                  {"params": {"nothing": 1}}):
        assert read_reuse(with_studiolo_json(base, json.dumps(value).encode())) is None
    huge_int = b'{"generator": "audio.speech", "params": {"text": "x"}, "seed": ' + b"9" * 5000 + b"}"
    assert read_reuse(with_studiolo_json(base, huge_int)) is None


def test_non_utf8_and_files_that_are_not_audio(tmp_path: Path) -> None:
    bad = b"\xff\xfe\xc3(" * 10
    assert read_reuse(with_studiolo_json(wav(), bad)) is None
    data = flac()
    f = FLAC(io.BytesIO(data))
    buffer = io.BytesIO(data)
    f.tags["STUDIOLO"] = "x"
    f.save(buffer)
    patched = buffer.getvalue().replace(b"STUDIOLO=x", b"STUDIOLO=\xff")
    assert read_reuse(patched) is None

    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4s", 13, b"IHDR") + b"\0" * 17 + struct.pack(">I4s", 0, b"IEND")
    files = {"a.png": png, "empty.wav": b"", "riff.wav": b"RIFF", "flac.flac": b"fLaC",
             "noise.wav": random.Random(1).randbytes(5000), "text.flac": "hello".encode()}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "dir.wav").mkdir()
    for name in [*files, "dir.wav", "missing.wav"]:
        assert read_reuse(tmp_path / name) is None, name
        assert read_params(tmp_path / name) is None, name
    assert read_reuse(tmp_path) is None
    assert read_reuse(b"") is None
    # plain audio with no Studiolo metadata
    plain = io.BytesIO()
    soundfile.write(plain, tone(), RATE, format="WAV")
    assert read_reuse(plain.getvalue()) is None
    plain = io.BytesIO()
    soundfile.write(plain, tone(), RATE, format="FLAC")
    assert read_reuse(plain.getvalue()) is None


def test_the_public_readers_read_any_chunk_or_comment_from_the_start_of_the_file() -> None:
    """``desktop.api.wav_chunk``/``flac_comment``, which the library's re-indexing uses too: any chunk or comment,
    read from the file's start whatever its position, None for the other format, the size limit applied."""
    wav_file, flac_file = io.BytesIO(wav()), io.BytesIO(flac())
    wav_file.seek(100)
    assert wav_chunk(wav_file, b"fmt ") == riff_chunks(wav_file.getvalue())[0][1]
    assert json.loads(wav_chunk(wav_file, meta.WAV_CHUNK_ID) or b"") == host_metadata(SPEECH)
    assert wav_chunk(wav_file, b"none") is None and wav_chunk(flac_file, b"fmt ") is None
    assert wav_chunk(wav_file, meta.WAV_CHUNK_ID, max_bytes=1000) is None
    flac_file.seek(50)
    assert flac_comment(flac_file, "title") == LONG_TEXT.encode()  # names compare without regard to case
    assert flac_comment(io.BytesIO(flac_with_comment("v", key="Lower")), "LOWER") == b"v"
    assert flac_comment(flac_file, "NONE") is None and flac_comment(wav_file, "TITLE") is None
    assert flac_comment(flac_file, "TITLE", max_bytes=1000) is None
    with pytest.raises(ValueError):
        wav_chunk(wav_file, b"fmt")
    with pytest.raises(ValueError):
        flac_comment(flac_file, "A=B")


def test_an_id3_tag_before_the_flac_stream_is_skipped() -> None:
    data = flac()
    tag = b"TIT2" + struct.pack(">I", 4) + b"\0\0" + b"\0abc"
    id3 = b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(tag)]) + tag
    assert read_params(id3 + data) == SPEECH


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random mutations: bit flips, byte inserts or deletes, a size field rewritten, or bytes of the
    JSON metadata changed (so that the JSON parser, not just the chunk walker, meets the damage)."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0 and buffer:
            i = rng.randrange(len(buffer))
            buffer[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            i = rng.randrange(len(buffer) + 1)
            buffer[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and buffer:
            i = rng.randrange(len(buffer))
            del buffer[i:i + rng.randint(1, 8)]
        elif op == 3 and len(buffer) > 8:
            i = rng.randrange(min(len(buffer) - 4, 400))  # the headers live near the start
            buffer[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", rng.randbytes(4),
                                          struct.pack("<I", rng.randrange(1 << 20))])
        else:
            start = buffer.find(b'{"')
            if start < 0:
                continue
            for _ in range(rng.randint(1, 4)):
                j = start + rng.randrange(min(2000, len(buffer) - start))
                buffer[j] = rng.choice(b'{}[]",:0123456789 \n\x00\xffNaN-e.') if rng.random() < 0.7 \
                    else rng.randrange(256)
    return bytes(buffer)


def test_ten_thousand_seeded_mutations_never_raise() -> None:
    short = host_metadata(SpeechParams(text="hello there"))
    bases = [
        encode_wav(clip(frames=400), short).data,
        encode_flac(clip(frames=400), short).data,
        encode_wav(clip(channels=2, frames=300), host_metadata(MUSIC, generator="audio.music")).data,
        encode_flac(clip(channels=2, frames=300), host_metadata(MUSIC, generator="audio.music")).data,
    ]
    rng = random.Random(20240501)
    outcomes = {"none": 0, "speech": 0, "music": 0}
    for n in range(10_000):
        result = read_reuse(mutate(bases[n % len(bases)], rng))
        if result is None:
            outcomes["none"] += 1
            continue
        outcomes["speech" if isinstance(result.params, SpeechParams) else "music"] += 1
        assert validate(result.params) == result.params
        assert result.seed is None or 0 <= result.seed <= meta.MAX_SEED
        assert result.model is None or isinstance(result.model, str)
        assert result.generator is None or isinstance(result.generator, str)
    assert all(outcomes.values()), outcomes  # damaged files were refused, and others still read
