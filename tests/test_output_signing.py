"""Content Credentials on every saved output: the engine's saving path signs each image and audio file after all
its other metadata (so it verifies as valid, with the job's claims), as the settings say (on by default, prompts in
or out, the user's own certificate); a key that cannot be read is made anew with a warning, a certificate that
cannot be used saves the output unsigned with a warning — never silently, never losing the output.

Through a third-party plugin installed by entry point, in an in-process engine.
"""

from __future__ import annotations

import hashlib

import pytest

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.library import metadata_for, sidecar_path
from desktop.plugins import PluginManager
from desktop.provenance.c2pa_verify import OTHER_SIGNER, UNSIGNED, VALID, own_keys, verify_file
from desktop.provenance.keys import KEY_FILE, create_signing_keys, key_dir
from desktop.settings import Settings

WAIT = 60_000

PLUGIN = '''
from dataclasses import dataclass

from desktop.api import AudioOutput, Generator, ImageOutput, TextOutput, hookimpl, param


@dataclass(frozen=True)
class Params:
    prompt: str = param("a blue tile", prompt=True)
    negative_prompt: str = param("")


class Tile(Generator):
    id, name, kind, Params, default_model = "image.signtile", "Tile", "image", Params, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        from PIL import Image

        return [ImageOutput(image=Image.new("RGB", (16, 16), (20, 40, ctx.seed % 256)))]


class Hum(Generator):
    id, name, kind, Params, default_model = "audio.signhum", "Hum", "audio", Params, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        import numpy as np

        return [AudioOutput(samples=0.3 * np.sin(np.arange(1600) / 8.0), sample_rate=8000)]


class Note(Generator):
    id, name, kind, Params, default_model = "text.signnote", "Note", "text", Params, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.prompt + ", signed")]


@hookimpl
def register_generators(register):
    for generator in (Tile(), Hum(), Note()):
        register(generator)
'''


@pytest.fixture
def plugins(studiolo_site):
    studiolo_site.install("studiolo-signing", modules={"studiolo_signing": PLUGIN},
                          entry_points={"signing": "studiolo_signing"})
    return PluginManager(Settings(idle_unload_minutes=0)).load()


def make_engine(plugins, **settings) -> Engine:
    for name, value in settings.items():
        setattr(plugins.settings, name, value)
    return Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)


def run(engine: Engine, qtbot, generator: str, **params):
    warnings: list[str] = []
    engine.job_warned.connect(lambda _job_id, message: warnings.append(message))
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit(generator, params, seed=7)
    (path,) = job.saved
    return job, path, warnings


@pytest.fixture
def engine(plugins):
    engine = make_engine(plugins)
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.mark.parametrize("generator", ["image.signtile", "audio.signhum"])
def test_every_image_and_audio_output_is_signed_after_its_metadata(engine, qtbot, generator):
    job, path, warnings = run(engine, qtbot, generator, prompt="a tile at dusk", negative_prompt="blur")
    verdict = verify_file(path)
    assert verdict.state == VALID, verdict.reasons
    claims = verdict.claims
    assert claims["generator"] == generator and claims["seed"] == 7 and claims["job_id"] == job.id
    assert claims["prompt"] == "a tile at dusk" and claims["negative_prompt"] == "blur"
    assert claims["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert metadata_for(path)["prompt"] == "a tile at dusk"  # the other metadata is still there, read as before
    item = engine.library.get(job.item_ids[0])
    assert item.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # the row has the signed file's hash
    assert not warnings and (key_dir() / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_text_outputs_keep_their_sidecar_and_carry_no_manifest(engine, qtbot):
    _job, path, warnings = run(engine, qtbot, "text.signnote", prompt="a note")
    assert path.read_text(encoding="utf-8") == "a note, signed" and sidecar_path(path).exists()
    assert verify_file(path).state == UNSIGNED and not warnings


def test_the_prompts_are_left_out_when_the_user_says_so(plugins, qtbot):
    engine = make_engine(plugins, sign_include_prompt=False)
    try:
        _job, path, _warnings = run(engine, qtbot, "image.signtile", prompt="a private idea", negative_prompt="x")
    finally:
        assert engine.shutdown(timeout=30)
    verdict = verify_file(path)
    assert verdict.state == VALID and "prompt" not in verdict.claims and "negative_prompt" not in verdict.claims
    assert metadata_for(path)["prompt"] == "a private idea"  # the file's own metadata is the user's to strip


def test_signing_off_saves_unsigned_files(plugins, qtbot):
    engine = make_engine(plugins, sign_outputs=False)
    try:
        _job, path, warnings = run(engine, qtbot, "image.signtile")
    finally:
        assert engine.shutdown(timeout=30)
    assert verify_file(path).state == UNSIGNED and not warnings and own_keys() is None  # no key made either


def test_the_users_own_certificate_signs(plugins, qtbot, tmp_path):
    create_signing_keys(tmp_path / "mine")
    engine = make_engine(plugins, signing_certificate=str(tmp_path / "mine" / "signing-chain.pem"),
                         signing_key=str(tmp_path / "mine" / KEY_FILE))
    try:
        _job, path, warnings = run(engine, qtbot, "image.signtile")
    finally:
        assert engine.shutdown(timeout=30)
    assert not warnings and own_keys() is None  # no app key was made
    assert verify_file(path).state == OTHER_SIGNER  # against the app's keys: someone else
    from desktop.provenance.keys import load_signing_keys

    mine = load_signing_keys(tmp_path / "mine" / "signing-chain.pem", tmp_path / "mine" / KEY_FILE)
    assert verify_file(path, keys=mine).state == VALID


def test_a_certificate_that_cannot_be_read_saves_the_output_unsigned_with_a_warning(plugins, qtbot, tmp_path):
    engine = make_engine(plugins, signing_certificate=str(tmp_path / "gone.pem"), signing_key=str(tmp_path / "k.pem"))
    try:
        job, path, warnings = run(engine, qtbot, "image.signtile", prompt="kept")
    finally:
        assert engine.shutdown(timeout=30)
    assert job.state.value == "done" and metadata_for(path)["prompt"] == "kept"  # nothing lost
    assert verify_file(path).state == UNSIGNED
    (warning,) = warnings
    assert "WITHOUT Content Credentials" in warning and "gone.pem" in warning


def test_a_corrupt_app_key_is_made_anew_and_the_first_job_says_so(plugins, qtbot):
    create_signing_keys(key_dir())
    (key_dir() / KEY_FILE).write_bytes(b"not a key")
    engine = make_engine(plugins)
    try:
        _job, path, warnings = run(engine, qtbot, "image.signtile")
        _job2, path2, warnings2 = run(engine, qtbot, "image.signtile")
    finally:
        assert engine.shutdown(timeout=30)
    assert verify_file(path).state == VALID and verify_file(path2).state == VALID
    assert len(warnings) == 1 and "a new key" in warnings[0] and not warnings2  # told once, with the first job
    assert (key_dir() / (KEY_FILE + ".corrupt")).read_bytes() == b"not a key"  # the old one kept aside


def test_a_key_that_cannot_be_written_saves_the_output_unsigned_with_a_warning(plugins, qtbot, monkeypatch):
    import errno

    from desktop.provenance import keys

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keys, "_write_private", disk_full)
    engine = make_engine(plugins)
    try:
        job, path, warnings = run(engine, qtbot, "image.signtile", prompt="kept")
    finally:
        assert engine.shutdown(timeout=30)
    assert job.state.value == "done" and metadata_for(path)["prompt"] == "kept" and verify_file(path).state == UNSIGNED
    (warning,) = warnings
    assert "WITHOUT Content Credentials" in warning and "could not be written" in warning and "No space" in warning
