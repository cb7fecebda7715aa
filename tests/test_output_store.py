"""The host's encoders and the output store: PNG metadata round trip, text and WAV, sidecars, atomic saves."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import wave
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from desktop import paths
from desktop.api import AudioOutput, EncodedOutput, ImageOutput, Output, StudioloError, TextOutput
from desktop.api import files as fileio
from desktop.api.errors import DiskFullError
from desktop.library import OutputStore, default_encode, metadata_for, read_png_metadata, sidecar_path
from desktop.library.encoders import encode_wav

PROMPT = "Ein Kätzchen — 日本の猫, кот, 🐈 café"
WHEN = datetime(2024, 5, 17, 13, 4, 5)


def meta(**extra: object) -> dict[str, object]:
    return {"generator": "demo.image", "prompt": PROMPT, "seed": 42, "params": {"steps": 4, "cfg": 7.5}, **extra}


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden temporaries included), relative."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- encoders ----------------------------------------------------------------------------------------------------


def test_png_carries_metadata_readable_by_pillow_including_non_latin1_text(tmp_path: Path):
    image = Image.fromarray(np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3))
    encoded = default_encode(ImageOutput(image=image), meta())
    assert encoded.suffix == ".png" and encoded.embeds_metadata
    path = tmp_path / "out.png"
    path.write_bytes(encoded.data)

    with Image.open(path) as back:
        assert back.format == "PNG"
        assert np.array_equal(np.asarray(back), np.asarray(image))
        assert json.loads(back.info["studiolo"]) == meta()
        assert back.info["Description"] == PROMPT
        assert back.info["Software"] == "Studiolo"
    assert read_png_metadata(path) == meta()
    assert metadata_for(path) == meta()


def test_png_metadata_is_compact_json_and_keeps_values_json_cannot_hold(tmp_path: Path):
    encoded = default_encode(ImageOutput(image=Image.new("RGB", (2, 2))), {"model": Path("/m/x"), "n": np.int64(3)})
    with Image.open(io.BytesIO(encoded.data)) as back:
        assert back.info["studiolo"] == '{"model":"/m/x","n":3}'
        assert "Description" not in back.info  # no prompt, no description


@pytest.mark.parametrize(("mode", "expected"), [("CMYK", "RGB"), ("RGBa", "RGBA"), ("F", "L"), ("I", "I;16"),
                                                 ("LA", "LA"), ("P", "P"), ("1", "1"), ("LAB", "RGB")])
def test_png_converts_modes_it_cannot_store(mode: str, expected: str):
    encoded = default_encode(ImageOutput(image=Image.new(mode, (3, 2))), {"prompt": "x"})
    with Image.open(io.BytesIO(encoded.data)) as back:
        assert back.mode == expected
        assert back.size == (3, 2)
        assert json.loads(back.info["studiolo"]) == {"prompt": "x"}


def test_cmyk_converts_colours_sensibly():
    red = Image.new("RGB", (1, 1), (255, 0, 0)).convert("CMYK")
    with Image.open(io.BytesIO(default_encode(ImageOutput(image=red), {}).data)) as back:
        assert back.getpixel((0, 0)) == (255, 0, 0)


def test_text_encodes_as_utf8_without_embedded_metadata():
    encoded = default_encode(TextOutput(text=PROMPT + "\nline two"), meta())
    assert encoded == EncodedOutput((PROMPT + "\nline two").encode("utf-8"), ".txt", embeds_metadata=False)


@pytest.mark.parametrize("channels", [None, 1, 2])
def test_wav_encodes_16_bit_pcm_with_clipping(tmp_path: Path, channels: int | None):
    frames = 1000
    wave_1d = np.sin(np.linspace(0, 20, frames)) * 1.5  # exceeds [-1, 1]: must be clipped, not wrapped
    samples = wave_1d if channels is None else np.stack([wave_1d * (c + 1) / channels for c in range(channels)], 1)
    encoded = default_encode(AudioOutput(samples=samples, sample_rate=22050), meta())
    assert encoded.suffix == ".wav" and encoded.embeds_metadata  # in its stdo chunk (tests/test_output_provenance.py)

    with wave.open(io.BytesIO(encoded.data), "rb") as wav:
        assert wav.getnchannels() == (channels or 1)
        assert wav.getframerate() == 22050
        assert wav.getsampwidth() == 2
        assert wav.getnframes() == frames
        pcm = np.frombuffer(wav.readframes(frames), dtype="<i2").reshape(frames, -1)
    expected = np.rint(np.clip(samples.reshape(frames, -1), -1, 1) * 32767)
    assert np.array_equal(pcm, expected)
    assert pcm.max() == 32767 and pcm.min() == -32767


def test_wav_refuses_bad_shapes_and_rates():
    with pytest.raises(StudioloError, match="shape"):
        encode_wav(np.zeros((2, 2, 2)), 16000)
    with pytest.raises(StudioloError, match="sample rate"):
        encode_wav(np.zeros(4), 0)


def test_unknown_output_type_asks_the_generator_to_encode_it():
    class Mesh(Output):
        pass

    with pytest.raises(StudioloError, match="Mesh") as info:
        default_encode(Mesh(), {})
    assert "encode_output" in str(info.value)


def png_with_chunk(kind: bytes, data: bytes, *, crc_ok: bool = True) -> bytes:
    base = io.BytesIO()
    Image.new("L", (1, 1)).save(base, format="PNG")
    raw = base.getvalue()
    crc = zlib.crc32(kind + data) ^ (0 if crc_ok else 1)
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    return raw[:33] + chunk + raw[33:]  # after the 8-byte signature and the 25-byte IHDR


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a png at all",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n\xff\xff\xff\xff",
        png_with_chunk(b"tEXt", b"studiolo\0{not json"),
        png_with_chunk(b"tEXt", b'studiolo\0["a list"]'),
        png_with_chunk(b"tEXt", b"studiolo\0" + b"[" * 100_000),
        png_with_chunk(b"tEXt", b'studiolo\0{"a": 1}', crc_ok=False),
        png_with_chunk(b"zTXt", b"studiolo\0\0" + b"garbage, not zlib"),
        png_with_chunk(b"iTXt", b"studiolo\0\x01\x00\0\0" + zlib.compress(b" " * 40_000_000)),
        png_with_chunk(b"iTXt", b"studiolo\0\x00\x00\0\0\xff\xfe not utf-8"),
        png_with_chunk(b"iTXt", b"studiolo"),
    ],
)
def test_read_png_metadata_returns_none_for_hostile_files(tmp_path: Path, content: bytes):
    path = tmp_path / "hostile.png"
    path.write_bytes(content)
    assert read_png_metadata(path) is None
    assert metadata_for(path) is None


def test_read_png_metadata_finds_other_chunk_kinds_and_missing_paths(tmp_path: Path):
    path = tmp_path / "z.png"
    path.write_bytes(png_with_chunk(b"zTXt", b"studiolo\0\0" + zlib.compress(b'{"a": 1}')))
    assert read_png_metadata(path) == {"a": 1}
    info = PngImagePlugin.PngInfo()
    info.add_itxt("studiolo", '{"b": "ü"}', zip=True)
    Image.new("L", (1, 1)).save(path, pnginfo=info)
    assert read_png_metadata(path) == {"b": "ü"}
    assert read_png_metadata(tmp_path / "missing.png") is None
    assert read_png_metadata(tmp_path) is None  # a folder


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=80))
def test_read_png_metadata_never_raises(tmp_path_factory: pytest.TempPathFactory, noise: bytes, cut: int):
    good = default_encode(ImageOutput(image=Image.new("RGB", (2, 2))), {"k": "v"}).data
    path = tmp_path_factory.mktemp("fuzz") / "f.png"
    path.write_bytes(good[:cut] + noise + good[cut + len(noise):])
    result = read_png_metadata(path)
    assert result is None or isinstance(result, dict)


# -- the store ---------------------------------------------------------------------------------------------------


def image_encoded() -> EncodedOutput:
    return default_encode(ImageOutput(image=Image.new("RGB", (2, 2), (1, 2, 3))), meta())


def test_default_root_is_in_the_data_dir():
    assert OutputStore().root == paths.data_dir() / "outputs"


def test_save_uses_the_dated_layout(tmp_path: Path):
    store = OutputStore(tmp_path)
    path = store.save(image_encoded(), meta(), generator_id="demo.image", job_id="j1", index=2, created=WHEN)
    assert path == tmp_path / "2024-05-17" / "demo.image" / "130405-j1-2.png"
    assert files_in(tmp_path) == ["2024-05-17/demo.image/130405-j1-2.png"]  # no sidecar: the PNG embeds it
    assert metadata_for(path) == meta()


def test_save_keeps_ids_inside_the_root(tmp_path: Path):
    store = OutputStore(tmp_path / "out")
    path = store.save(image_encoded(), meta(), generator_id="../../evil", job_id="a/../b", created=WHEN)
    assert path.resolve().is_relative_to((tmp_path / "out").resolve())
    assert len(path.relative_to(tmp_path / "out").parts) == 3
    with pytest.raises(StudioloError, match="extension"):
        store.save(EncodedOutput(b"x", "/../x"), {}, generator_id="g", job_id="j", created=WHEN)


def test_save_never_overwrites(tmp_path: Path):
    store = OutputStore(tmp_path)
    first = store.save(EncodedOutput(b"first", ".bin"), {}, generator_id="g", job_id="j", created=WHEN)
    second = store.save(EncodedOutput(b"second", ".bin"), {}, generator_id="g", job_id="j", created=WHEN)
    third = store.save(EncodedOutput(b"third", ".bin"), {}, generator_id="g", job_id="j", created=WHEN)
    assert len({first, second, third}) == 3
    assert second.name == "130405-j-0-2.bin" and third.name == "130405-j-0-3.bin"
    assert (first.read_bytes(), second.read_bytes(), third.read_bytes()) == (b"first", b"second", b"third")


def test_save_writes_a_sidecar_for_files_without_embedded_metadata(tmp_path: Path):
    store = OutputStore(tmp_path)
    encoded = default_encode(TextOutput(text=PROMPT), meta())
    path = store.save(encoded, meta(), generator_id="demo.text", job_id="j", created=WHEN)
    assert path.read_text(encoding="utf-8") == PROMPT
    assert sidecar_path(path).name == "130405-j-0.txt.json"
    assert json.loads(sidecar_path(path).read_text(encoding="utf-8")) == meta()
    assert metadata_for(path) == meta()
    # A second save must not take the name whose sidecar is already there.
    (tmp_path / "2024-05-17" / "demo.text" / "130405-j-1.txt.json").write_text("{}")
    other = store.save(encoded, meta(), generator_id="demo.text", job_id="j", index=1, created=WHEN)
    assert other.name == "130405-j-1-2.txt"


def test_sidecar_is_written_before_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    written: list[tuple[str, bool]] = []
    real = fileio.atomic_write_bytes

    def spy(path: Path, data: bytes) -> None:
        written.append((path.name, sidecar_path(path).exists() or path.name.endswith(".json")))
        real(path, data)

    monkeypatch.setattr(fileio, "atomic_write_bytes", spy)
    path = OutputStore(tmp_path).save(default_encode(TextOutput(text="hi"), {}), {}, generator_id="g", job_id="j")
    assert [name for name, _ in written] == [path.name + ".json", path.name]
    assert all(ready for _, ready in written)  # when the main file was written its sidecar already existed


def test_failed_sidecar_leaves_no_main_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def boom(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(DiskFullError):
        OutputStore(tmp_path).save(default_encode(TextOutput(text="hi"), {}), {}, generator_id="g", job_id="j")
    assert files_in(tmp_path) == []


def replace_failing_for_main_files(error: OSError):
    real = os.replace

    def replace(src: str, dst: str) -> None:
        if str(dst).endswith(".json"):
            return real(src, dst)
        raise error

    return replace


@pytest.mark.parametrize("embeds", [True, False])
def test_disk_full_at_replace_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embeds: bool):
    monkeypatch.setattr(os, "replace", replace_failing_for_main_files(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(DiskFullError) as info:
        OutputStore(tmp_path).save(EncodedOutput(b"x" * 1000, ".bin", embeds), {"a": 1}, generator_id="g",
                                   job_id="j", created=WHEN)
    assert "Not enough disk space" in info.value.message and str(tmp_path / "2024-05-17" / "g") in info.value.message
    assert "Settings" in (info.value.hint or "")
    assert files_in(tmp_path) == []  # neither the file, its sidecar, nor a temporary


@pytest.mark.skipif(not hasattr(errno, "EDQUOT"), reason="no EDQUOT on this platform")
def test_quota_exceeded_is_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "replace", replace_failing_for_main_files(OSError(errno.EDQUOT, "Quota exceeded")))
    with pytest.raises(DiskFullError):
        OutputStore(tmp_path).save(EncodedOutput(b"x", ".bin"), {}, generator_id="g", job_id="j")
    assert files_in(tmp_path) == []


def test_disk_full_halfway_through_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes half the bytes, then the disk is full."""

        def __init__(self, fd: int, *args: object, **kwargs: object) -> None:
            self.file = real_fdopen(fd, *args, **kwargs)

        def write(self, data: bytes) -> int:
            self.file.write(data[: len(data) // 2])
            self.file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(self.file, name)

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    monkeypatch.setattr(os, "fdopen", HalfWriter)
    encoded = default_encode(TextOutput(text="hello " * 1000), {"a": 1})
    with pytest.raises(DiskFullError):
        OutputStore(tmp_path).save(encoded, {"a": 1}, generator_id="g", job_id="j", created=WHEN)
    assert files_in(tmp_path) == []


def test_other_write_errors_name_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StudioloError) as info:
        OutputStore(tmp_path).save(EncodedOutput(b"x", ".bin"), {}, generator_id="g", job_id="j", created=WHEN)
    assert not isinstance(info.value, DiskFullError)
    assert str(tmp_path / "2024-05-17" / "g" / "130405-j-0.bin") in info.value.message
    assert "Input/output error" in info.value.message
    assert files_in(tmp_path) == []


def test_an_unwritable_root_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"I am a file, not a folder")
    with pytest.raises(StudioloError, match="Could not save"):
        OutputStore(blocker).save(EncodedOutput(b"x", ".bin"), {}, generator_id="g", job_id="j")
    assert blocker.read_bytes() == b"I am a file, not a folder"


def test_metadata_for_tolerates_bad_sidecars(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    assert metadata_for(path) is None
    sidecar_path(path).write_text("{broken")
    assert metadata_for(path) is None
    sidecar_path(path).write_bytes(b"\xff\xfe")
    assert metadata_for(path) is None
    sidecar_path(path).write_text('{"ok": true}')
    assert metadata_for(path) == {"ok": True}


def test_write_file_writes_whole_files_and_names_the_file_when_it_cannot(tmp_path, monkeypatch):
    from desktop.destinations import write_file

    target = tmp_path / "grid.png"
    assert write_file(target, b"one") == target and target.read_bytes() == b"one"
    (tmp_path / "taken").mkdir()  # a folder where the file should go: refused before writing
    with pytest.raises(StudioloError, match="taken"):
        write_file(tmp_path / "taken", b"two")
    monkeypatch.setattr(fileio.os, "replace", lambda *_a, **_k: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    with pytest.raises(DiskFullError, match="grid.png"):
        write_file(target, b"three")
    assert target.read_bytes() == b"one"  # the old file is whole, no temporary file left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "taken"]
