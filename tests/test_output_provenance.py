"""Every output kind carries how it was made, for a third-party generator as for a built-in one: the host's
default writers embed the job's metadata (PNG text chunk, WAV ``stdo`` chunk and INFO tags; text in a JSON
sidecar), `studiolo generate --output` copies carry it, and the library indexes a lost output again from it.

Read back only with the public readers a plugin author has (`desktop.api.png_text_chunks`, `desktop.api.wav_chunk`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from disk import fill
from helpers import run_cli

from desktop.api import AudioOutput, TextOutput, png_text_chunks, wav_chunk
from desktop.library import Library, OutputStore, default_encode, metadata_for, sidecar_path

PLUGIN = '''
from dataclasses import dataclass

from desktop.api import AudioOutput, Generator, ImageOutput, TextOutput, hookimpl, param


@dataclass(frozen=True)
class HumParams:
    prompt: str = param("a low hum", prompt=True)
    hertz: float = param(220.0, min=20.0, max=2000.0)


class Hum(Generator):
    id, name, kind, Params, default_model = "audio.hum", "Hum", "audio", HumParams, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        import numpy as np

        t = np.arange(800) / 8000.0
        return [AudioOutput(samples=0.5 * np.sin(2 * np.pi * params.hertz * t), sample_rate=8000)]


@dataclass(frozen=True)
class TileParams:
    prompt: str = param("a blue tile", prompt=True)


class Tile(Generator):
    id, name, kind, Params, default_model = "image.tile", "Tile", "image", TileParams, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        from PIL import Image

        return [ImageOutput(image=Image.new("RGB", (8, 8), (20, 40, 200)))]


@dataclass(frozen=True)
class EchoParams:
    prompt: str = param("once upon a time", prompt=True)


class Echo(Generator):
    id, name, kind, Params, default_model = "text.echo", "Echo", "text", EchoParams, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.prompt + " there was a sea")]


@hookimpl
def register_generators(register):
    for generator in (Hum(), Tile(), Echo()):
        register(generator)
'''


@pytest.fixture
def env(studiolo_site):
    studiolo_site.install("studiolo-provenance", modules={"studiolo_provenance": PLUGIN},
                          entry_points={"provenance": "studiolo_provenance"})
    return studiolo_site.env()


def generate(env, *args: str) -> Path:
    """Run `studiolo generate ARGS`; the path of the output the library saved."""
    result = run_cli("generate", *args, env=env)
    assert result.returncode == 0, result.stderr
    return Path(next(line.removeprefix("saved ") for line in result.stderr.splitlines() if line.startswith("saved ")))


def wav_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        return json.loads(wav_chunk(f, b"stdo"))


def png_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        return json.loads(png_text_chunks(f, ["studiolo"])["studiolo"])


def assert_made_by(metadata: dict, generator: str, seed: int, prompt: str) -> None:
    assert metadata["generator"] == generator and metadata["generator_version"] == "0.1.0"
    assert metadata["seed"] == seed and metadata["prompt"] == prompt and metadata["params"]["prompt"] == prompt


def test_a_third_party_audio_generators_wav_and_its_copy_carry_the_jobs_metadata(env, tmp_path):
    import soundfile

    out = tmp_path / "hum.wav"
    saved = generate(env, "audio.hum", "-p", "prompt=a hum at dusk", "-p", "hertz=330", "--seed", "5",
                     "--output", str(out))
    assert saved.suffix == ".wav" and not sidecar_path(saved).exists()  # in the file, not beside it
    for path in (saved, out):
        metadata = wav_metadata(path)
        assert_made_by(metadata, "audio.hum", 5, "a hum at dusk")
        assert metadata["params"]["hertz"] == 330.0
        tags = soundfile.SoundFile(path).copy_metadata()  # what players show: the INFO chunk
        assert tags["title"] == "a hum at dusk" and tags["software"] == "Studiolo"
        assert tags["comment"] == "Studiolo audio.hum seed 5"
        samples, rate = soundfile.read(path)
        assert rate == 8000 and len(samples) == 800
    assert not sidecar_path(out).exists()


def test_a_third_party_image_generators_png_and_its_copy_carry_the_jobs_metadata(env, tmp_path):
    out = tmp_path / "tile.png"
    saved = generate(env, "image.tile", "-p", "prompt=a tile for the hall", "--seed", "9", "--output", str(out))
    for path in (saved, out):
        assert_made_by(png_metadata(path), "image.tile", 9, "a tile for the hall")
    assert not sidecar_path(saved).exists() and not sidecar_path(out).exists()


def test_a_third_party_text_generators_text_and_its_copies_carry_the_jobs_metadata_beside_them(env, tmp_path):
    story = tmp_path / "story.txt"
    saved = generate(env, "text.echo", "-p", "prompt=long ago", "--seed", "3", "--output", str(story))
    assert story.read_text(encoding="utf-8") == "long ago there was a sea"  # the text itself, no front matter
    for path in (saved, story):
        assert_made_by(json.loads(sidecar_path(path).read_text(encoding="utf-8")), "text.echo", 3, "long ago")

    markdown = tmp_path / "story.md"  # converted: the sidecar goes with it too
    result = run_cli("generate", "text.echo", "--seed", "4", "--output", str(markdown), env=env)
    assert result.returncode == 0, result.stderr
    assert f"copied to {markdown} (how it was made: {sidecar_path(markdown)})" in result.stderr
    assert markdown.read_text(encoding="utf-8") == "once upon a time there was a sea"
    assert_made_by(json.loads(sidecar_path(markdown).read_text(encoding="utf-8")), "text.echo", 4,
                   "once upon a time")


def test_a_flac_copied_as_wav_embeds_the_metadata(tmp_path):
    from desktop.cli.output_copy import copy_outputs
    from plugins.audio.metadata import encode_flac

    meta = {"generator": "audio.music", "seed": 7, "prompt": "rain", "params": {"prompt": "rain"}}
    source = tmp_path / "rain.flac"
    source.write_bytes(encode_flac(AudioOutput(samples=np.zeros(400, dtype=np.float32), sample_rate=8000),
                                   meta).data)
    out = tmp_path / "rain.wav"
    sidecar_path(out).write_text('{"generator": "an old copy"}')  # left by the file this copy replaces
    (copy,) = copy_outputs([source], [None], out)
    assert copy.path == out and copy.sidecar is None
    assert wav_metadata(out) == meta and not sidecar_path(out).exists()


def test_a_webp_copy_gets_its_metadata_in_a_sidecar(tmp_path):
    from PIL import Image

    from desktop.api import ImageOutput
    from desktop.cli.output_copy import copy_outputs

    meta = {"generator": "image.tile", "seed": 1, "prompt": "blue"}
    source = tmp_path / "tile.png"
    source.write_bytes(default_encode(ImageOutput(image=Image.new("RGB", (4, 4))), meta).data)
    (copy,) = copy_outputs([source], [meta], tmp_path / "tile.webp")
    assert copy.sidecar == sidecar_path(tmp_path / "tile.webp")
    assert json.loads(copy.sidecar.read_text(encoding="utf-8")) == meta
    with Image.open(copy.path) as image:
        assert image.format == "WEBP"


def test_a_copy_that_does_not_fit_leaves_neither_file_nor_sidecar(tmp_path, small_disk):
    from desktop.cli.output_copy import copy_outputs
    from desktop.destinations import WriteError

    source = tmp_path / "story.txt"
    source.write_bytes(default_encode(TextOutput(text="word " * 20_000), {}).data)  # 100 KB
    sidecar_path(source).write_text(json.dumps({"generator": "text.echo", "seed": 2}))
    disk = small_disk(256)
    fill(disk, leave_bytes=48 * 1024)  # room for the sidecar, not for the text
    with pytest.raises(WriteError, match=f"Not enough disk space to write {disk / 'story.txt'};"):
        list(copy_outputs([source], [None], disk / "story.txt"))
    assert sorted(p.name for p in disk.iterdir()) == [".filler"]


def test_the_library_indexes_a_lost_wav_again_from_its_embedded_metadata(tmp_path):
    from desktop.library.reconciliation import reconcile

    meta = {"generator": "audio.hum", "generator_version": "0.1.0", "seed": 12, "prompt": "a hum at dusk",
            "job_id": "job42", "kind": "audio", "params": {"prompt": "a hum at dusk", "hertz": 330.0}}
    store = OutputStore(tmp_path / "outputs")
    encoded = default_encode(AudioOutput(samples=np.zeros(80), sample_rate=8000), meta)
    path = store.save(encoded, meta, generator_id="audio.hum", job_id="job42")  # saved, never indexed
    assert not sidecar_path(path).exists()
    with Library(tmp_path / "library.db") as library:
        report = reconcile(library, store.root)
        (item,) = library.list_items()
        assert report.recovered == [item.id] and item.path == path
    assert (item.generator_id, item.seed, item.prompt, item.job_id) == ("audio.hum", 12, "a hum at dusk", "job42")
    assert item.metadata == meta


def test_the_default_audio_writer_embeds_what_the_wav_chunk_reader_reads(tmp_path):
    meta = {"generator": "audio.hum", "seed": 1, "prompt": "é" * 300, "model": "/models/hum/weights"}
    encoded = default_encode(AudioOutput(samples=np.zeros((10, 2)), sample_rate=8000), meta)
    assert encoded.suffix == ".wav" and encoded.embeds_metadata
    assert json.loads(wav_chunk(io.BytesIO(encoded.data), b"stdo")) == meta
    info = wav_chunk(io.BytesIO(encoded.data), b"LIST")
    assert info.startswith(b"INFO") and b"Studiolo audio.hum seed 1 model weights" in info
    assert ("é" * 199 + "…").encode() in info and ("é" * 200).encode() not in info  # the title is cut short
    path = tmp_path / "x.wav"
    path.write_bytes(encoded.data)
    assert metadata_for(path) == meta
