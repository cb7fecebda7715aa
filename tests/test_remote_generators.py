"""The remote generators (``plugins/remote``: ``remote.text``, ``remote.image``, ``remote.audio``) against real servers
on 127.0.0.1: llama-cpp-python's own OpenAI-compatible server with the tiny GGUF demo model, and a fake server
(``tests/remote_fake_server.py``, Starlette + uvicorn) for every way a server can fail. Each server process is
started once per module and stopped at the end; the tests configure them in their Studiolo home's settings, as the
user does in Settings → Servers."""

from __future__ import annotations

import collections
import io
import sys
import wave

import numpy as np
import pytest
from helpers import run_python
from PIL import Image
from remote_fake_server import WORDS, png, wav
from remote_processes import (
    configure_servers,
    get_json,
    refused_port,
    remote_entry_point,
    remote_plugins,
    start_fake_server,
    start_uvicorn,
)

from desktop.api import (
    GenerationError,
    LoadOptions,
    ModelNotFoundError,
    ModelSource,
    ParamError,
    RemoteListing,
    ServerUnavailableError,
    TextOutput,
    remote_ref,
)
from desktop.testing import run_generator
from plugins.gguf.demo import build_tiny_gguf
from plugins.remote.audio import RemoteAudioGenerator
from plugins.remote.errors import KeyRefusedError, RequestRefusedError
from plugins.remote.image import RemoteImageGenerator
from plugins.remote.params import RemoteAudioParams, RemoteImageParams, RemoteTextParams
from plugins.remote.text import RemoteTextGenerator, max_text_chars

TEXT, IMAGE, AUDIO = RemoteTextGenerator(), RemoteImageGenerator(), RemoteAudioGenerator()
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal
SCENARIOS = ("ok", "studio", "strict", "malformed", "errorevent", "drop", "noend", "huge", "stall", "hold",
             "missing", "busy", "bad")
SAMPLED = {"prompt": "The studio was quiet", "temperature": 0.9, "top_p": 0.95, "max_new_tokens": 24}


# ------------------------------------------------------------------------------------------------- servers


def no_proxy_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


@pytest.fixture(scope="module")
def fake():
    server = start_fake_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """llama-cpp-python's server on the tiny random Qwen2 demo model: (its base URL, the model's id there)."""
    model = build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "demo")
    server = start_uvicorn("-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", "0",
                           env=no_proxy_env())
    (entry,) = get_json(server.url + "/v1/models")["data"]
    yield server.url + "/v1", entry["id"]
    server.stop()


@pytest.fixture
def servers(fake, llama):
    """Every server of this module configured (a fake one per scenario, ``llama``, ``refused``): name → URL."""
    with refused_port() as port:
        urls = {"llama": llama[0], "refused": f"http://127.0.0.1:{port}/v1", "fake-key": f"{fake.url}/key/v1",
                "fake-wrongkey": f"{fake.url}/key/v1", "fake-nokey": f"{fake.url}/key/v1",
                **{f"fake-{s}": f"{fake.url}/{s}/v1" for s in SCENARIOS}}
        configure_servers(urls, keys={"fake-key": "right-key", "fake-wrongkey": "wrong-key"})
        yield urls


def handle(generator, server: str, model_id: str):
    return generator.load(None, "cpu", LoadOptions({}, model_ref=remote_ref(server, model_id)))


def run(generator, server: str, model_id: str = "echo", params=None, **kwargs):
    return run_generator(generator, params, handle=handle(generator, server, model_id), **kwargs)


def log(fake, scenario: str) -> list[dict]:
    return get_json(f"{fake.url}/_log/{scenario}")


def asked(fake, scenario: str, path_end: str) -> list[dict]:
    """The JSON bodies of the requests to paths ending in ``path_end`` a scenario of the fake server got."""
    return [r["json"] for r in log(fake, scenario) if r["path"].endswith(path_end)]


def direct(llama, *, chat: bool, **kwargs):
    """The same request through the official OpenAI client alone, not streamed: (text, usage)."""
    import httpx2
    import openai

    client = openai.OpenAI(api_key="none", base_url=llama[0], http_client=httpx2.Client(trust_env=False))
    if chat:
        answer = client.chat.completions.create(model=llama[1], **kwargs)
        return answer.choices[0].message.content, answer.usage
    answer = client.completions.create(model=llama[1], **kwargs)
    return answer.choices[0].text, answer.usage


class Recorder:
    """What the engine said about each job: how it ended, its previews and progress."""

    def __init__(self, engine) -> None:
        self.ended: dict[str, tuple[str, object]] = {}
        self.previews: dict[str, list] = collections.defaultdict(list)
        self.progress: dict[str, list] = collections.defaultdict(list)
        engine.job_finished.connect(lambda job_id, outputs: self.ended.setdefault(job_id, ("finished", outputs)))
        engine.job_failed.connect(lambda job_id, message: self.ended.setdefault(job_id, ("failed", message)))
        engine.job_cancelled.connect(lambda job_id, outputs: self.ended.setdefault(job_id, ("cancelled", outputs)))
        engine.job_previewed.connect(lambda job_id, chunk: self.previews[job_id].append(chunk))
        engine.job_progressed.connect(lambda job_id, done, total, message:
                                      self.progress[job_id].append((done, total, message)))


@pytest.fixture
def engine(qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.settings import Settings

    engine = Engine(remote_plugins(), Settings(idle_unload_minutes=0), cache=ModelCache())
    recorder = Recorder(engine)

    def job(generator_id: str, params: dict, model: str, seed: int = 1):
        submitted = engine.submit(generator_id, params, model=model, seed=seed)
        qtbot.waitUntil(lambda: submitted.id in recorder.ended, timeout=WAIT)
        return submitted.id, recorder.ended[submitted.id]

    engine.run_job = job
    engine.recorder = recorder
    yield engine
    assert engine.shutdown(timeout=30)


# ------------------------------------------------------------------------------------------- registration


def test_the_plugin_registers_three_remote_generators_by_entry_point():
    plugins = remote_plugins()
    record = plugins.plugins[remote_entry_point().name]
    assert record.status == "loaded" and record.warnings == [], (record.error, record.warnings)  # nothing heavy
    generators = {g: plugins.generator(g) for g in ("remote.text", "remote.image", "remote.audio")}
    assert [type(g) for g in generators.values()] == [RemoteTextGenerator, RemoteImageGenerator, RemoteAudioGenerator]
    for generator in generators.values():
        assert generator.runs_in_process and generator.default_model is None
        assert generator.model_sources == frozenset({ModelSource.REMOTE}) and not generator.has_demo_model
    assert [g.kind for g in generators.values()] == ["text", "image", "audio"]
    assert [g.name for g in generators.values()] == ["Remote text", "Remote image", "Remote audio"]
    assert [g.Params for g in generators.values()] == [RemoteTextParams, RemoteImageParams, RemoteAudioParams]


def test_a_job_needs_a_model_on_a_configured_server(servers):
    with pytest.raises(ModelNotFoundError, match="needs a model on a server"):
        TEXT.load(None, "cpu", LoadOptions({}))
    with pytest.raises(ModelNotFoundError, match="No server named 'elsewhere' is configured"):
        handle(TEXT, "elsewhere", "echo")


# ------------------------------------------------------------------------------ llama.cpp's own server


def test_continue_and_chat_stream_through_the_engine_as_the_openai_client_gets_them(engine, servers, llama):
    ref = remote_ref("llama", llama[1])
    job_id, (how, outputs) = engine.run_job("remote.text", SAMPLED, ref, seed=11)
    assert how == "finished", outputs
    (output,) = outputs
    text, usage = direct(llama, chat=False, prompt=SAMPLED["prompt"], max_tokens=24, temperature=0.9, top_p=0.95,
                         seed=11)
    assert output.text == text and len(set(text)) > 8  # the same text as the OpenAI client alone, not streamed
    assert "".join(engine.recorder.previews[job_id]) == output.text  # streamed into the panel as it came
    metadata = output.metadata
    assert metadata["server"] == {"name": "llama", "url": servers["llama"]} and metadata["model_id"] == llama[1]
    assert metadata["mode"] == "continue" and metadata["finish_reason"] == "length"
    assert metadata["stopped_by"] == "max_tokens" and metadata["seed"] == 11
    assert usage.completion_tokens == 24 and metadata["chunks"] == 24  # llama.cpp streams one token a chunk
    assert metadata["usage"] is None and metadata["new_tokens"] is None  # llama-cpp-python sends no usage streamed
    saved = output.saved_path
    from desktop.library import metadata_for

    recorded = metadata_for(saved)  # the saved file names the server and the model
    assert recorded["model"] == ref and recorded["output"]["server"]["name"] == "llama"
    assert saved.read_text(encoding="utf-8") == output.text

    chat = {**SAMPLED, "mode": "chat", "prompt": "Tell me about boats.", "system_prompt": "Be brief.",
            "history": ["Hello", "Hi there."]}
    job_id, (how, outputs) = engine.run_job("remote.text", chat, ref, seed=12)
    assert how == "finished", outputs
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "Tell me about boats."}]
    text, _ = direct(llama, chat=True, messages=messages, max_tokens=24, temperature=0.9, top_p=0.95, seed=12)
    assert outputs[0].text == text and outputs[0].metadata["mode"] == "chat"
    assert "".join(engine.recorder.previews[job_id]) == text


def test_the_seed_is_passed_through(servers, llama):
    first = run(TEXT, "llama", llama[1], SAMPLED, seed=5).outputs[0].text
    assert run(TEXT, "llama", llama[1], SAMPLED, seed=5).outputs[0].text == first
    assert run(TEXT, "llama", llama[1], SAMPLED, seed=6).outputs[0].text != first


def test_max_tokens_and_stop_sequences_end_the_text(servers, llama):
    greedy = {**SAMPLED, "temperature": 0.0, "max_new_tokens": 40}
    full = run(TEXT, "llama", llama[1], greedy).outputs[0].text
    short = run(TEXT, "llama", llama[1], {**greedy, "max_new_tokens": 7})
    (output,) = short.outputs
    text, usage = direct(llama, chat=False, prompt=SAMPLED["prompt"], max_tokens=7, temperature=0.0)
    assert output.text == text and usage.completion_tokens == 7 and full.startswith(text)
    assert output.metadata["stopped_by"] == "max_tokens" and output.metadata["chunks"] == 7
    assert [p[:2] for p in short.progress] == [(0, 7)] + [(i, 7) for i in range(1, 8)]  # a report per piece
    start = len(full) // 2
    stop = full[start:start + 3]
    result = run(TEXT, "llama", llama[1], {**greedy, "stop": ["never written", stop]})
    (stopped,) = result.outputs
    assert stopped.text == full[:full.index(stop)] and stop not in stopped.text
    assert "".join(result.previews) == stopped.text  # the stop text was never streamed
    assert stopped.metadata["finish_reason"] == "stop" and stopped.metadata["stopped_by"] == "stop"


@pytest.mark.parametrize("after", [2, 6])
def test_cancel_keeps_exactly_the_text_streamed_so_far(servers, llama, after):
    result = run(TEXT, "llama", llama[1], {**SAMPLED, "max_new_tokens": 200}, seed=3, cancel_after=after)
    assert result.cancelled and result.progress_after_cancel == 0  # nothing reported after the cancel
    assert len(result.previews) == after - 1  # the first report is "Asking llama…", then one a piece
    (partial,) = result.outputs
    assert partial.partial and partial.text == "".join(result.previews)
    assert partial.metadata["stopped_by"] == "cancelled" and partial.metadata["server"]["name"] == "llama"
    whole = run(TEXT, "llama", llama[1], {**SAMPLED, "max_new_tokens": 200}, seed=3).outputs[0].text
    assert whole.startswith(partial.text) and len(whole) > len(partial.text)


def test_the_model_list_names_each_servers_models_of_the_generators_kind(servers, llama):
    listing = TEXT.remote_models()
    refs = {m.ref for m in listing.models}
    assert remote_ref("llama", llama[1]) in refs  # llama.cpp's model: an id that is a path
    assert remote_ref("fake-studio", "text.transformers/demo") in refs and remote_ref("fake-ok", "echo") in refs
    assert remote_ref("fake-studio", "image.diffusers/demo") not in refs  # an image model is not text
    studio = next(m for m in listing.models if m.ref == remote_ref("fake-studio", "text.transformers/demo"))
    assert studio.kind == "text" and studio.server == "fake-studio" and studio.model_id == "text.transformers/demo"
    assert "text.transformers" in studio.description
    plain = next(m for m in listing.models if m.server == "llama")
    assert plain.kind is None and plain.model_id == llama[1]
    problems = "\n".join(listing.problems)
    assert f"refused ({servers['refused']}) cannot be reached" in problems
    assert "connection refused — is it running?" in problems
    assert "fake-malformed" in problems and "not the JSON" in problems  # an HTML page where the list should be
    assert "fake-wrongkey" in problems and "refused the API key" in problems
    assert [m.ref for m in IMAGE.remote_models().models] == [remote_ref("fake-studio", "image.diffusers/demo")]
    assert [m.ref for m in AUDIO.remote_models().models] == [remote_ref("fake-studio", "audio.speech/demo")]


# ------------------------------------------------------------------------------- the fake server: text


def test_usage_and_a_studiolo_servers_record_are_kept(servers, fake):
    result = run(TEXT, "fake-studio", "text.transformers/demo", {"prompt": "Go", "max_new_tokens": 5}, seed=21)
    (output,) = result.outputs
    assert output.text == "".join(w + " " for w in WORDS[:5])
    assert output.metadata["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    assert output.metadata["prompt_tokens"] == 5 and output.metadata["new_tokens"] == 5
    assert output.metadata["remote"] == {"seed": 21, "job_id": "fake-job"}
    (sent,) = asked(fake, "studio", "/completions")
    assert sent["model"] == "text.transformers/demo" and sent["prompt"] == "Go" and sent["max_tokens"] == 5
    assert sent["seed"] == 21 and sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert "top_k" not in sent and "repetition_penalty" not in sent  # off: not sent
    run(TEXT, "fake-ok", "echo", {"prompt": "Go", "top_k": 40, "repetition_penalty": 1.2, "stop": ["zz"]})
    sent = asked(fake, "ok", "/completions")[-1]
    assert sent["top_k"] == 40 and sent["repetition_penalty"] == sent["repeat_penalty"] == 1.2  # llama.cpp's name too
    assert sent["stop"] == ["zz"]
    run(TEXT, "fake-studio", "text.transformers/demo", {"prompt": "Go", "repetition_penalty": 1.2})
    sent = asked(fake, "studio", "/completions")[-1]  # a Studiolo server refuses names its generator does not have
    assert sent["repetition_penalty"] == 1.2 and "repeat_penalty" not in sent


def test_a_server_that_refuses_stream_options_is_asked_again_without_them(servers, fake):
    (output,) = run(TEXT, "fake-strict", "echo", {"prompt": "Go", "max_new_tokens": 4}).outputs
    assert output.text == "".join(w + " " for w in WORDS[:4]) and output.metadata["usage"] is None
    first, second = asked(fake, "strict", "/completions")
    assert "stream_options" in first and "stream_options" not in second
    run(TEXT, "fake-strict", "echo", {"prompt": "Go", "max_new_tokens": 4})
    assert len(asked(fake, "strict", "/completions")) == 3  # remembered: one request from then on


def test_the_api_key_is_sent_to_its_server_only_and_nothing_of_this_machine_is(servers, fake, monkeypatch):
    for name, value in (("OPENAI_API_KEY", "sk-this-machine"), ("OPENAI_ORG_ID", "org-x"),
                        ("OPENAI_PROJECT_ID", "proj-x"), ("OPENAI_ADMIN_KEY", "admin-x"),
                        ("HTTP_PROXY", "http://127.0.0.1:9"), ("http_proxy", "http://127.0.0.1:9")):
        monkeypatch.setenv(name, value)  # a proxy that does not exist: the servers are talked to directly
    assert run(TEXT, "fake-key", "echo", {"prompt": "Go", "max_new_tokens": 2}).outputs[0].text == "the boats "
    with pytest.raises(KeyRefusedError, match=r"fake-wrongkey \(.*\) refused the API key: Incorrect API key") as info:
        run(TEXT, "fake-wrongkey", "echo", {"prompt": "Go"})
    assert "Settings → Servers" in info.value.hint
    with pytest.raises(KeyRefusedError, match=r"fake-nokey \(.*\) needs an API key"):
        run(TEXT, "fake-nokey", "echo", {"prompt": "Go"})
    headers = [r["headers"] for r in log(fake, "key") if r["path"].endswith("/completions")]
    assert [h.get("authorization") for h in headers] == ["Bearer right-key", "Bearer wrong-key", None]
    assert not any(k.startswith("openai-") for h in headers for k in h)
    assert all("this-machine" not in v and "admin-x" not in v for h in headers for v in h.values())


@pytest.mark.parametrize(("server", "error", "message"), [
    ("fake-malformed", GenerationError, "sent an answer that is not the JSON an OpenAI-compatible server sends"),
    ("fake-errorevent", GenerationError, "reported an error: CUDA out of memory"),
    ("fake-drop", ServerUnavailableError, "closed the connection before its answer was complete"),
    ("fake-noend", ServerUnavailableError, "ended its answer before finishing it"),
    ("fake-missing", ModelNotFoundError, "has no model 'echo': The model 'nothing-here' does not exist."),
    ("fake-busy", ServerUnavailableError, "is unavailable (HTTP 503): The server is loading a model."),
    ("fake-bad", RequestRefusedError, "refused the request: max_tokens is too large for this model."),
    ("refused", ServerUnavailableError, "cannot be reached: connection refused — is it running?"),
])
def test_each_failure_of_a_server_is_an_error_a_person_can_act_on(servers, server, error, message):
    with pytest.raises(error) as info:
        run(TEXT, server, "echo", {"prompt": "Go", "max_new_tokens": 8})
    assert message in info.value.message and info.value.message.startswith(f"{server} ({servers[server]})")
    assert info.value.hint
    if error is ServerUnavailableError:
        assert info.value.server == server  # what a batch spread over servers retries elsewhere
    if error is RequestRefusedError:
        assert info.value.param == "max_tokens"


def test_a_huge_answer_is_refused(servers, fake, monkeypatch):
    with pytest.raises(GenerationError, match="sent more text than 10 tokens can hold") as info:
        run(TEXT, "fake-huge", "echo", {"prompt": "Go", "max_new_tokens": 10})
    assert f"{max_text_chars(10):,} characters" in info.value.message
    monkeypatch.setattr("plugins.remote.text.max_stream_bytes", lambda max_tokens: 3000)  # bytes, before the text
    with pytest.raises(GenerationError, match=r"sent an answer larger than 2.9 KiB: refused"):
        run(TEXT, "fake-huge", "echo", {"prompt": "Go", "max_new_tokens": 10})
    monkeypatch.setattr("plugins.remote.image.MAX_MEDIA_BYTES", 1024 * 1024)
    with pytest.raises(GenerationError, match=r"sent an answer larger than 1 MiB: refused"):
        run(IMAGE, "fake-huge", "echo", {"prompt": "a boat"})


def test_a_silent_server_times_out_instead_of_hanging(servers, monkeypatch):
    monkeypatch.setattr("plugins.remote.text.TEXT_READ_TIMEOUT_S", 0.5)
    with pytest.raises(ServerUnavailableError, match=r"fake-stall \(.*\) stopped answering: nothing came for 0.5 s"):
        run(TEXT, "fake-stall", "echo", {"prompt": "Go"})


def test_a_cancel_lands_at_once_while_the_server_is_silent_and_the_server_sees_the_client_go(
        engine, servers, fake, qtbot):
    recorder = engine.recorder
    job = engine.submit("remote.text", {"prompt": "Go", "max_new_tokens": 50}, model=remote_ref("fake-hold", "echo"))
    qtbot.waitUntil(lambda: "".join(recorder.previews[job.id]) == "the boats went ", timeout=WAIT)
    assert job.id not in recorder.ended  # the server says nothing more until the client goes
    engine.cancel(job.id)
    qtbot.waitUntil(lambda: job.id in recorder.ended, timeout=WAIT)
    how, outputs = recorder.ended[job.id]
    assert how == "cancelled"
    (partial,) = outputs
    assert partial.partial and partial.text == "the boats went " and partial.metadata["stopped_by"] == "cancelled"
    assert get_json(f"{fake.url}/_wait/disconnected-hold") == {"set": True}  # the connection was closed


def test_a_server_that_dies_mid_answer_fails_the_job_as_unavailable(engine, servers, qtbot):
    dying = start_fake_server()
    try:
        configure_servers({**servers, "dying": f"{dying.url}/die/v1"})
        job_id, (how, message) = engine.run_job("remote.text", {"prompt": "Go"}, remote_ref("dying", "echo"))
    finally:
        status = dying.stop()
    assert status == 3  # it really died (os._exit) in the middle of the answer
    assert how == "failed" and "closed the connection before its answer was complete" in message
    assert engine.job(job_id).error_type == "ServerUnavailableError"


# ------------------------------------------------------------------------------ the fake server: images


def test_images_come_from_the_images_endpoint_with_their_metadata(servers, fake):
    params = {"prompt": "a boat", "negative_prompt": "rain", "width": 96, "height": 64, "steps": 4,
              "guidance_scale": 2.5, "n": 2}
    result = run(IMAGE, "fake-ok", "echo", params, seed=7)
    assert len(result.outputs) == 2
    for index, output in enumerate(result.outputs):
        expected = Image.open(io.BytesIO(png(96, 64, 7, index)))
        assert output.image.size == (96, 64) and output.image.tobytes() == expected.convert("RGB").tobytes()
        assert output.metadata["remote"] == {"generator": "fake.image", "seed": 7, "index": index}
        assert output.metadata["remote_job"] == {"seed": 7, "job_id": "fake-images"}
        assert output.metadata["server"]["name"] == "fake-ok" and output.metadata["seed"] == 7
    sent = asked(fake, "ok", "/images/generations")[-1]
    assert sent == {"model": "echo", "prompt": "a boat", "n": 2, "size": "96x64", "response_format": "b64_json",
                    "seed": 7, "negative_prompt": "rain", "steps": 4, "guidance_scale": 2.5}


def test_a_studiolo_server_runs_images_as_a_job_with_progress(servers, fake):
    params = {"prompt": "a boat", "width": 64, "height": 72, "steps": 3, "n": 2}
    result = run(IMAGE, "fake-studio", "image.diffusers/demo", params, seed=9)
    assert [p[:2] for p in result.progress] == [(0, None), (1, 3), (2, 3), (3, 3), (1, 1)]
    assert [o.image.size for o in result.outputs] == [(64, 72), (64, 72)]
    assert result.outputs[1].metadata["remote"] == {"generator": "fake.image", "seed": 9, "index": 1}
    assert result.outputs[0].metadata["remote_job"]["state"] == "done"
    (created,) = asked(fake, "studio", "/studiolo/jobs")
    assert created == {"model": "image.diffusers/demo", "seed": 9, "params": {
        "prompt": "a boat", "negative_prompt": "", "width": 64, "height": 72, "steps": 3, "guidance_scale": 7.0,
        "batch_size": 2}}


def test_cancelling_a_studiolo_job_deletes_it_on_the_server(engine, servers, fake, qtbot):
    recorder = engine.recorder
    job = engine.submit("remote.image", {"prompt": "hold", "steps": 5}, model=remote_ref("fake-studio",
                                                                                        "image.diffusers/demo"))
    qtbot.waitUntil(lambda: any(p[:2] == (1, 5) for p in recorder.progress[job.id]), timeout=WAIT)
    engine.cancel(job.id)
    qtbot.waitUntil(lambda: job.id in recorder.ended, timeout=WAIT)
    assert recorder.ended[job.id] == ("cancelled", [])
    deleted = [r for r in log(fake, "studio") if r.get("method") == "DELETE"]
    assert len(deleted) == 1 and deleted[0]["path"].startswith("/studio/v1/studiolo/jobs/")


# ------------------------------------------------------------------------------- the fake server: audio


def test_speech_is_decoded_from_the_wav_the_server_sends(servers, fake):
    result = run(AUDIO, "fake-ok", "echo", {"text": "Hello there", "voice": "nova", "speed": 1.5}, seed=3)
    (output,) = result.outputs
    with wave.open(io.BytesIO(wav(3))) as reference:
        expected = np.frombuffer(reference.readframes(reference.getnframes()), dtype="<i2") / 32768.0
    assert output.sample_rate == 16000 and output.samples.shape == expected.shape
    assert np.allclose(output.samples, expected, atol=1e-6)
    assert output.metadata["remote"] == {"generator": "fake.speech", "seed": 3} and output.metadata["remote_seed"] == 3
    sent = asked(fake, "ok", "/audio/speech")[-1]
    assert sent == {"model": "echo", "input": "Hello there", "voice": "nova", "response_format": "wav", "seed": 3,
                    "speed": 1.5}
    with pytest.raises(ParamError, match="there is nothing to read"):
        run(AUDIO, "fake-ok", "echo", {"text": "  "})


def test_the_wave_fallback_reads_what_soundfile_reads(monkeypatch):
    from plugins.remote import media

    data = wav(5)
    with_soundfile = media.decode_audio(data, "test")
    monkeypatch.setitem(sys.modules, "soundfile", None)  # not installed: the standard library's wave
    without = media.decode_audio(data, "test")
    assert with_soundfile[1] == without[1] == 16000 and np.array_equal(with_soundfile[0], without[0])
    assert with_soundfile[2] == without[2] == {"generator": "fake.speech", "seed": 5}


# ------------------------------------------------------------------------------------ offline stays offline


def test_with_no_server_configured_nothing_is_contacted_or_imported():
    """In a fresh process: the plugin loaded, an engine started, every generator's model list asked — no socket
    connects anywhere, and neither the OpenAI client nor its HTTP library is imported."""
    code = """
import socket, sys
attempts = []
def refuse(self, address, *args):
    attempts.append(address)
    raise AssertionError(f"a connection to {address!r}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
from PySide6.QtCore import QCoreApplication
app = QCoreApplication([])
sys.path.insert(0, "tests")
from remote_processes import remote_plugins
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.settings import Settings
plugins = remote_plugins()
engine = Engine(plugins, Settings(idle_unload_minutes=0), cache=ModelCache())
listings = [plugins.generator(g).remote_models() for g in ("remote.text", "remote.image", "remote.audio")]
assert engine.shutdown(timeout=30)
print(listings, attempts, [m for m in ("openai", "httpx2") if m in sys.modules])
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{[RemoteListing()] * 3} [] []"


def test_the_text_panel_writes_remote_params(qtbot, tmp_path):
    from desktop.testing.panel_host import RecordingPanelHost
    from plugins.text.panel import TextPanel

    host = RecordingPanelHost(tmp_path / "panels", generator_id="remote.text", model="remote://gpubox/llama")
    panel = TEXT.create_panel(host)
    qtbot.addWidget(panel)
    assert isinstance(panel, TextPanel) and panel.params_type is RemoteTextParams
    assert panel.load_form.field_names() == []  # nothing is loaded here
    panel.max_new_tokens.setValue(40)
    qtbot.keyClicks(panel.editor, "Once upon a time")  # the prompt: the text up to the cursor
    assert panel.generate() == "job-1"
    (params,) = host.submitted
    assert isinstance(params, RemoteTextParams) and params.max_new_tokens == 40 and params.prompt == "Once upon a time"
    assert params.top_k == 0 and params.repetition_penalty == 1.0  # off by default: not sent
    host.job_previewed.emit("job-1", " there was")  # the answer streams into the editor, then its usage is shown
    host.job_finished.emit("job-1", [TextOutput(text=" there was", metadata={
        "mode": "continue", "prompt_tokens": 4, "new_tokens": 2, "server": {"name": "gpubox", "url": "http://x/v1"}})])
    assert panel.editor.toPlainText() == "Once upon a time there was"
    assert panel.status.text() == "Done: 2 token(s) on gpubox (prompt: 4 tokens)."
