"""The remote generators against ``studiolo serve`` itself (one server process for the module, in its own Studiolo
home, with its demo models): images pixel-identical to the same job run here, by the job endpoint (with progress)
and by OpenAI's images endpoint; text and speech exactly as the local generators make them; the server's lists and
errors."""

from __future__ import annotations

import numpy as np
import pytest
from remote_processes import configure_servers
from serve_process import start_server

from desktop.api import LoadOptions, ModelNotFoundError, remote_ref
from desktop.testing import run_generator
from plugins.remote.audio import RemoteAudioGenerator
from plugins.remote.image import RemoteImageGenerator
from plugins.remote.text import RemoteTextGenerator

TEXT, IMAGE, AUDIO = RemoteTextGenerator(), RemoteImageGenerator(), RemoteAudioGenerator()
PICTURE = {"prompt": "a lighthouse at dusk", "negative_prompt": "fog", "width": 64, "height": 72, "steps": 3,
           "guidance_scale": 5.0}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve-home"))
    yield server
    assert server.stop() == 0


@pytest.fixture
def configured(studio):
    configure_servers({"studio": studio.url})
    return studio.url


def run(generator, model_id: str, params: dict, **kwargs):
    handle = generator.load(None, "cpu", LoadOptions({}, model_ref=remote_ref("studio", model_id)))
    return run_generator(generator, params, handle=handle, **kwargs)


@pytest.mark.parametrize("way", ["job", "images endpoint"])
def test_images_are_pixel_identical_to_the_same_job_run_here(configured, way, monkeypatch):
    from plugins.image.generator import DiffusersImageGenerator

    if way == "images endpoint":  # as a plain OpenAI-compatible server is asked
        monkeypatch.setattr("plugins.remote.image._is_studiolo", lambda client, model_id: False)
    remote = run(IMAGE, "image.diffusers/demo", {**PICTURE, "n": 2}, seed=42)
    local = run_generator(DiffusersImageGenerator(), {**PICTURE, "batch_size": 2}, model="demo", seed=42)
    assert len(remote.outputs) == len(local.outputs) == 2
    for mine, theirs in zip(remote.outputs, local.outputs, strict=True):
        assert mine.image.size == (64, 72) and mine.image.mode == theirs.image.mode
        assert mine.image.tobytes() == theirs.image.tobytes()
    assert remote.outputs[0].image.tobytes() != remote.outputs[1].image.tobytes()
    record = remote.outputs[0].metadata["remote"]  # what the server saved in its PNG
    assert record["generator"] == "image.diffusers" and record["seed"] == 42 and record["params"]["steps"] == 3
    assert remote.outputs[0].metadata["server"] == {"name": "studio", "url": configured}
    if way == "job":  # the server's progress as it goes (it sends at most a few reports a second)
        steps = [p[0] for p in remote.progress if p[1] == 3]
        assert steps[-1] == 3 and steps == sorted(steps) and len(steps) >= 2
        assert remote.outputs[0].metadata["remote_job"]["state"] == "done"


def test_cancelling_an_image_job_on_the_server_ends_it_cancelled(configured):
    result = run(IMAGE, "image.diffusers/demo", {**PICTURE, "steps": 150}, seed=1, cancel_after=2)
    assert result.cancelled and result.outputs == [] and result.progress_after_cancel == 0


@pytest.mark.parametrize("mode", ["continue", "chat"])
def test_text_is_what_the_same_job_writes_here(configured, mode):
    from plugins.text.generator import TransformersTextGenerator

    params = {"prompt": "The boats went out", "mode": mode, "max_new_tokens": 20, "temperature": 0.9, "top_p": 0.9,
              "repetition_penalty": 1.3}  # top-k is left at the server's generator's default, as here
    remote = run(TEXT, "text.transformers/demo", params, seed=8)
    local = run_generator(TransformersTextGenerator(), {**params, "top_k": 50}, model="demo", seed=8)
    (output,) = remote.outputs
    assert output.text == local.outputs[0].text and len(output.text) > 10
    assert "".join(remote.previews) == output.text
    assert output.metadata["new_tokens"] == local.outputs[0].metadata["new_tokens"] == 20
    assert output.metadata["usage"]["completion_tokens"] == 20 and output.metadata["prompt_tokens"] > 0
    assert output.metadata["stopped_by"] == "max_tokens" and output.metadata["remote"]["seed"] == 8


def test_speech_is_what_the_same_job_makes_here(configured):
    from plugins.audio.speech import VitsSpeechGenerator

    remote = run(AUDIO, "audio.speech/demo", {"text": "Hello there"}, seed=7)
    local = run_generator(VitsSpeechGenerator(), {"text": "Hello there"}, model="demo", seed=7)
    (mine,), (theirs,) = remote.outputs, local.outputs
    assert mine.sample_rate == theirs.sample_rate and mine.samples.shape == theirs.samples.shape
    saved = np.rint(np.clip(theirs.samples, -1.0, 1.0) * 32767.0).astype(np.int32)  # as the server saves it
    got = np.rint(mine.samples * 32768.0).astype(np.int32)  # the 16-bit samples of the WAV it sent
    assert np.abs(got - saved).max() <= 1 and np.count_nonzero(got - saved) < len(saved) // 1000  # float rounding
    assert np.abs(saved).max() > 100  # a sound, not silence: the comparison means something
    assert mine.metadata["remote_seed"] == 7 and mine.metadata["remote"]["generator"] == "audio.speech"


def test_the_servers_models_are_listed_by_kind_and_an_unknown_one_is_refused(configured):
    assert {m.model_id for m in TEXT.remote_models().models} >= {"text.transformers/demo", "text.llamacpp/demo"}
    assert [m.model_id for m in IMAGE.remote_models().models] == ["image.diffusers/demo"]
    audio = {m.model_id: m.kind for m in AUDIO.remote_models().models}
    assert audio == {"audio.speech/demo": "audio", "audio.music/demo": "audio"}
    with pytest.raises(ModelNotFoundError, match=r"studio \(.*\) has no model 'image.nothing/demo'"):
        run(IMAGE, "image.nothing/demo", PICTURE)
