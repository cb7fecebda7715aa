"""Reproduce exactly, with the image generator: a fresh output (signed, metadata and all) re-runs pixel for pixel;
after its model's weights change, the re-run differs and the report names the model hash.

The tiny SD model built offline, 64 px, 2 steps, through an in-process engine (the same loading code as users').
"""

from __future__ import annotations

import shutil

import pytest

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.library import metadata_for
from desktop.plugins import PluginManager
from desktop.provenance.c2pa_verify import VALID, verify_file
from desktop.provenance.reproduce import reproduce
from desktop.settings import Settings

WAIT = 120_000
PARAMS = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2}


@pytest.fixture
def model(tiny_sd, tmp_path):
    return shutil.copytree(tiny_sd, tmp_path / "tiny-sd")  # its weights are changed by a test


@pytest.fixture
def engine():
    plugins = PluginManager(Settings(idle_unload_minutes=0)).load(third_party=False)
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)
    yield engine
    assert engine.shutdown(timeout=60)


def test_an_image_reproduces_identically_then_differs_naming_the_hash_when_the_weights_change(engine, qtbot, model):
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit("image.diffusers", PARAMS, model=str(model), seed=5)
    (item_id,), (path,) = job.item_ids, job.saved
    assert verify_file(path).state == VALID  # signed, and the re-run still compares the pixels
    recorded = metadata_for(path)
    assert recorded["output"]["dtype"] == "float32" and recorded["reproduce"]["model_sha256"]

    report = reproduce(item_id, engine)
    assert report.identical and report.difference == 0 and report.changes == (), report.summary()

    from safetensors.torch import load_file, save_file

    weights = next((model / "unet").glob("*.safetensors"))
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.01  # a slightly different model at the same path
    save_file(tensors, weights)
    fresh = Engine(engine.plugins, engine.settings, cache=ModelCache(), store=None, library=None, in_process=True)
    try:  # a new engine: the first holds the old weights in its model cache
        changed = reproduce(item_id, fresh, engine.library)
    finally:
        assert fresh.shutdown(timeout=60)
    assert [c.what for c in changed.changes] == ["model file's hash"]
    assert changed.changes[0].recorded == recorded["reproduce"]["model_sha256"]
    assert "the model file's hash changed" in changed.summary()
