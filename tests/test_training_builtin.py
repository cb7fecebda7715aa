"""The issue's command lines, end to end with the built-in generators: ``studiolo train image.diffusers --images DIR
--trigger WORD --steps N --out NAME`` and ``studiolo train text.transformers --texts DIR --steps N --out NAME``
train through the engine, the result appears in the model list of its kind with its provenance, and the next
generation uses it by name. Tiny models built offline, in this process (``STUDIOLO_IN_PROCESS``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from desktop.engine.engine import IN_PROCESS_ENV
from desktop.engine.train_job import read_provenance
from desktop.models.addons import addon_list
from desktop.models.inventory import models_for
from desktop.models.resolver import imported_models_dir
from desktop.plugins import PluginManager
from desktop.testing import run_generator


@pytest.fixture(autouse=True)
def in_process(monkeypatch):
    monkeypatch.setenv(IN_PROCESS_ENV, "1")


def listed(generator_id: str, kind: str) -> list[str]:
    generator = PluginManager().load(third_party=False).generator(generator_id)
    return [m.ref for m in models_for(addon_list(generator, kind)).installed]


def test_an_image_lora_from_the_command_line_is_listed_and_used_by_name(tiny_sd, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    code = main(["train", "image.diffusers", "--model", str(tiny_sd), "--images", str(photos), "--trigger", "sks",
                 "--captions", "instance", "--instance-prompt", "a photo", "--resolution", "64", "--steps", "2",
                 "--learning-rate", "0.05", "--seed", "2", "--out", "my-style"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.strip() == "my-style.safetensors" and "Estimate from the warm-up" in out.err
    assert listed("image.diffusers", "lora") == ["my-style.safetensors"]
    record = read_provenance(imported_models_dir() / "my-style.safetensors")
    assert record["generator"] == "image.diffusers" and record["base_model_sha256"]
    assert [e["step"] for e in record["log"]] == [1, 2] and len(record["dataset"]) == 2
    assert record["plugin"]["trigger"] == "sks"

    generator = PluginManager().load(third_party=False).generator("image.diffusers")
    base = {"prompt": "sks a photo", "width": 64, "height": 64, "steps": 2}
    plain = run_generator(generator, base, model=str(tiny_sd), seed=3).outputs[0]
    styled = run_generator(generator, {**base, "loras": ["my-style.safetensors:1.0"]}, model=str(tiny_sd),
                           seed=3).outputs[0]
    assert np.asarray(styled.image).tobytes() != np.asarray(plain.image).tobytes()  # used at once, by name


def test_a_text_adapter_from_the_command_line_is_listed_and_used_by_name(tiny_lm, tmp_path, capsys):
    texts = tmp_path / "drafts"
    texts.mkdir()
    (texts / "one.md").write_text("The lamp was warm at night and the sea was grey. " * 30)
    code = main(["train", "text.transformers", "--model", str(tiny_lm), "--texts", str(texts), "--steps", "3",
                 "--block-size", "32", "--learning-rate", "0.01", "--seed", "2", "--out", "my-voice"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.strip() == "my-voice"  # an adapter is a folder
    assert listed("text.transformers", "adapter") == ["my-voice"]
    record = read_provenance(imported_models_dir() / "my-voice")
    assert record["training"] == "lora" and [e["step"] for e in record["log"]] == [1, 2, 3]

    generator = PluginManager().load(third_party=False).generator("text.transformers")
    run = run_generator(generator, {"prompt": "The lamp", "max_new_tokens": 8, "temperature": 0.0,
                                    "adapter": "my-voice"}, model=str(tiny_lm), seed=1)
    assert run.outputs[0].metadata["adapter"]["name"] == "my-voice"  # what was made with which adapter
