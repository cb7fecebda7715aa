"""Tests for studiolo-tinyvae.

They use the fixtures of the pytest plugin Studiolo ships: `studiolo_project` (this package's plugin, found by the
entry point in pyproject.toml, installed or not) and `studiolo_run` (one job, through the real `load` and `generate`).
The demo model (random weights) is built offline, at test time, by the plugin's own `build_demo_model`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from studiolo_tinyvae import CONFIG_FILE, DEMO_CONFIG, WEIGHTS_FILE

from desktop.api import ImageOutput, ModelFormatError, ParamError, safetensors_header

GENERATOR_ID = "image.tinyvae"
SIDE = DEMO_CONFIG["latent_size"] * 2 ** DEMO_CONFIG["upsamples"]  # the decoder's image size: 32 pixels


@pytest.fixture
def generator(studiolo_project):
    return studiolo_project.generator(GENERATOR_ID)


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, studiolo_tinyvae; print(sorted({'torch', 'safetensors'} & set(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_demo_model_is_built_offline_and_the_same_every_time(generator, tmp_path):
    import torch

    rng_state = torch.random.get_rng_state()
    for dest in (tmp_path / "a", tmp_path / "b"):
        dest.mkdir()
        generator.build_demo_model(dest)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # torch's global RNG was not touched
    assert json.loads((tmp_path / "a" / CONFIG_FILE).read_text()) == DEMO_CONFIG
    header = safetensors_header(tmp_path / "a" / WEIGHTS_FILE)
    assert {"0.weight", "0.bias"} <= set(header)
    assert (tmp_path / "a" / WEIGHTS_FILE).read_bytes() == (tmp_path / "b" / WEIGHTS_FILE).read_bytes()


def test_draws_the_images_asked_for_one_by_one(generator, studiolo_run):
    result = studiolo_run(generator, {"images": 3, "upscale": 2}, model="demo", seed=1)
    assert len(result.outputs) == 3 and all(isinstance(o, ImageOutput) and not o.partial for o in result.outputs)
    assert {(o.image.mode, o.image.size) for o in result.outputs} == {("RGB", (2 * SIDE, 2 * SIDE))}
    assert len({o.image.tobytes() for o in result.outputs}) == 3  # each from its own latent
    assert [p[:2] for p in result.progress] == [(1, 3), (2, 3), (3, 3)]
    assert [p.tobytes() for p in result.previews] == [o.image.tobytes() for o in result.outputs]
    assert result.handle.latent_shape == (8, 4, 4)


def test_the_same_seed_draws_the_same_images(generator, studiolo_run):
    def images(seed, count=2):
        return [o.image.tobytes() for o in studiolo_run(generator, {"images": count}, model="demo", seed=seed).outputs]

    assert images(7) == images(7) != images(8)
    assert images(7, count=1) == images(7)[:1]  # image i does not depend on how many the job draws


def test_loading_and_drawing_never_touch_torchs_global_rng(generator, studiolo_run):
    import torch

    state = torch.random.get_rng_state()
    studiolo_run(generator, {"images": 2}, model="demo", seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # another job's seeded draws stay reproducible


def test_temperature_zero_is_the_decoders_average_image(generator, studiolo_run):
    result = studiolo_run(generator, {"images": 3, "temperature": 0.0}, model="demo", seed=3)
    assert len({o.image.tobytes() for o in result.outputs}) == 1


def test_cancel_stops_at_once_and_keeps_the_images_drawn(generator, studiolo_run):
    result = studiolo_run(generator, {"images": 10}, model="demo", seed=2, cancel_after=2)
    assert result.cancelled and result.progress_after_cancel == 0
    assert len(result.outputs) == 2 and all(o.partial for o in result.outputs)


def test_parameters_are_checked(generator, studiolo_run):
    with pytest.raises(ParamError, match="'upscale'"):
        studiolo_run(generator, {"upscale": 3}, model="demo")


def test_broken_models_are_clear_errors(generator, studiolo_run, tmp_path):
    generator.build_demo_model(tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="decoder.safetensors is not a valid safetensors file"):
        studiolo_run(generator, model=str(tmp_path))
    weights.write_bytes(data)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**DEMO_CONFIG, "hidden_channels": 16}))
    with pytest.raises(ModelFormatError, match="does not match config.json"):
        studiolo_run(generator, model=str(tmp_path))
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**DEMO_CONFIG, "upsamples": "three"}))
    with pytest.raises(ModelFormatError, match="upsamples must be a whole number"):
        studiolo_run(generator, model=str(tmp_path))
    weights.unlink()
    (tmp_path / CONFIG_FILE).write_text(json.dumps(DEMO_CONFIG))
    with pytest.raises(ModelFormatError, match="has no decoder.safetensors"):
        studiolo_run(generator, model=str(tmp_path))


def test_runs_on_a_gpu_like_on_the_cpu(generator, studiolo_run):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = studiolo_run(generator, {"images": 2, "upscale": 1}, model="demo", seed=4, device="cpu")
    gpu = studiolo_run(generator, {"images": 2, "upscale": 1}, model="demo", seed=4, device="cuda")
    assert next(gpu.handle.decoder.parameters()).device.type == "cuda"
    for a, b in zip(cpu.outputs, gpu.outputs, strict=True):
        diff = max(abs(x - y) for x, y in zip(a.image.tobytes(), b.image.tobytes(), strict=True))
        assert diff <= 3  # the same latents; only the device's float rounding differs
