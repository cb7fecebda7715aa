"""`studiolo serve` end to end: one real server subprocess for the module, driven with OpenAI's own client, its
answers compared with the same jobs run by an engine in this process (the same worker-process code path, the same
demo models, so equal exactly)."""

from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from serve_process import start_server

from desktop.library import Library, read_png_metadata

MAX_BODY_MB = 1
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Tell me a story"}]
IMAGE = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = start_server(tmp_path_factory.mktemp("serve-home"), "--max-body-mb", str(MAX_BODY_MB))
    yield served
    maps = Path(f"/proc/{served.process.pid}/maps").read_text()
    assert "libtorch" not in maps, "the server process imported torch (only the worker processes may)"
    code = served.stop()
    assert code == 0, "\n".join(served.banner + served.rest)
    assert any("Stopping" in line for line in served.rest)


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as made:
        yield made


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url.removesuffix("/v1"), timeout=120) as made:
        yield made


@pytest.fixture(scope="module")
def local(qapp):
    """An engine in this process that saves nothing: ``run(generator_id, params, model, seed)`` → its outputs."""
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager

    engine = Engine(PluginManager().load(), store=None, library=None)
    ended: dict[str, tuple[str, list]] = {}
    engine.job_finished.connect(lambda job_id, outputs: ended.__setitem__(job_id, ("done", outputs)))
    engine.job_failed.connect(lambda job_id, message: ended.__setitem__(job_id, ("failed", message)))

    def run(qtbot, generator_id: str, params: dict, model: Path, seed: int) -> list:
        job = engine.submit(generator_id, params, model=str(model), seed=seed)
        qtbot.waitUntil(lambda: job.id in ended, timeout=180_000)
        state, outputs = ended[job.id]
        assert state == "done", outputs
        return outputs

    yield run
    engine.shutdown()


def demo_folder(server, generator_id: str) -> Path:
    """The server's demo model of ``generator_id`` (built by its first job), for the local engine to load."""
    (folder,) = (server.home / "data" / "models" / "demo" / generator_id).iterdir()
    return folder


def png_pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGB").tobytes()


def job_events(http, job_id: str):
    """The job's server-sent events as (name, data) pairs, until its last one."""
    with http.stream("GET", f"/v1/studiolo/jobs/{job_id}/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                yield name, json.loads(line.removeprefix("data: "))
                if name in ("done", "failed", "cancelled"):
                    return


# -- models --------------------------------------------------------------------------------------------------------

def test_the_models_are_each_generator_with_its_demo_model(client):
    models = {m.id: m for m in client.models.list()}
    assert {"text.transformers/demo", "image.diffusers/demo", "audio.speech/demo", "audio.music/demo"} <= set(models)
    text = models["text.transformers/demo"].model_extra["studiolo"]
    assert text == {"generator": "text.transformers", "kind": "text", "model": "demo", "modes": ["continue", "chat"]}
    assert models["image.diffusers/demo"].owned_by == "studiolo"
    assert client.models.retrieve("image.diffusers/demo").model_extra["studiolo"]["kind"] == "image"


# -- text ----------------------------------------------------------------------------------------------------------

def test_chat_streams_the_text_a_local_run_writes_with_the_same_seed(client, server, local, qtbot):
    stream = client.chat.completions.create(model="text.transformers/demo", messages=CHAT, max_tokens=12, seed=7,
                                            temperature=0.9, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].model_extra["studiolo"]["seed"] == 7
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 1
    last = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert last.choices[0].finish_reason in ("length", "stop")
    assert last.model_extra["studiolo"]["seed"] == 7
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens and usage.prompt_tokens > 0

    params = {"prompt": "Tell me a story", "mode": "chat", "system_prompt": "Be brief.",
              "history": ["Hi", "Hello!"], "max_new_tokens": 12, "temperature": 0.9}
    (output,) = local(qtbot, "text.transformers", params, demo_folder(server, "text.transformers"), seed=7)
    assert text == output.text and text
    again = client.chat.completions.create(model="text.transformers/demo", messages=CHAT, max_tokens=12, seed=7,
                                           temperature=0.9)
    assert again.choices[0].message.content == text and again.model_extra["studiolo"]["seed"] == 7


def test_completions_continue_the_text_whole_and_streamed(client):
    whole = client.completions.create(model="text.transformers/demo", prompt="Once upon a time", max_tokens=10,
                                      seed=3, temperature=0.0)
    assert whole.object == "text_completion" and whole.choices[0].text
    assert whole.usage.completion_tokens <= 10 and whole.choices[0].finish_reason in ("length", "stop")
    studiolo = whole.model_extra["studiolo"]
    assert studiolo["seed"] == 3 and studiolo["gallery_id"] is not None
    streamed = client.completions.create(model="text.transformers/demo", prompt="Once upon a time", max_tokens=10,
                                         seed=3, temperature=0.0, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == whole.choices[0].text


def test_a_client_that_disconnects_mid_stream_cancels_the_job(client, http, server):
    most = 500  # all the tiny model can write after this prompt (its context is 512 tokens), and seed 11 writes no
    # end-of-text token: the first chunk comes after a token or two, the cancel lands within a few more
    stream = client.chat.completions.create(model="text.transformers/demo", messages=[{"role": "user",
                                                                                       "content": "Hi"}],
                                            max_tokens=most, seed=11, temperature=1.0, stream=True)
    first = next(c for c in stream if c.choices and c.choices[0].delta.content)
    job_id = first.id.removeprefix("chatcmpl-")
    stream.close()
    events = list(job_events(http, job_id))
    name, job = events[-1]
    assert name == "cancelled" and job["state"] == "cancelled"
    (output,) = job["outputs"]
    assert output["partial"] and output["text"].startswith(first.choices[0].delta.content)
    with Library(server.home / "data" / "library.db") as library:
        item = next(i for i in library.list_items(kind="text") if i.metadata["job_id"] == job_id)
    assert item.partial and item.metadata["output"]["stopped_by"] == "cancelled"
    assert 1 <= item.metadata["output"]["new_tokens"] < most


# -- images --------------------------------------------------------------------------------------------------------

def test_images_are_the_saved_pngs_pixel_identical_to_a_local_run(client, server, local, qtbot, tmp_path):
    result = client.images.generate(model="image.diffusers/demo", prompt=IMAGE["prompt"], size="64x64",
                                    extra_body={"steps": 2, "seed": 21})
    (image,) = result.data
    data = base64.b64decode(image.b64_json)
    saved = tmp_path / "served.png"
    saved.write_bytes(data)
    metadata = read_png_metadata(saved)
    assert metadata["generator"] == "image.diffusers" and metadata["seed"] == 21 and metadata["model"] == "demo"
    assert metadata["params"]["steps"] == 2 and metadata["prompt"] == IMAGE["prompt"]
    studiolo = result.model_extra["studiolo"]
    assert studiolo["seed"] == 21 and studiolo["gallery_id"] is not None
    with Library(server.home / "data" / "library.db") as library:
        item = library.get(studiolo["gallery_id"])
    assert Path(item.path).read_bytes() == data  # the library's file itself

    (output,) = local(qtbot, "image.diffusers", IMAGE, demo_folder(server, "image.diffusers"), seed=21)
    assert png_pixels(data) == ((64, 64), output.image.convert("RGB").tobytes())

    two = client.images.generate(model="image.diffusers/demo", prompt=IMAGE["prompt"], size="64x64", n=2,
                                 extra_body={"steps": 2, "seed": 21})
    assert len(two.data) == 2 and len(set(two.model_extra["studiolo"]["gallery_ids"])) == 2
    assert two.data[0].b64_json != two.data[1].b64_json


def test_image_edits_run_img2img_from_the_upload(client, server, tmp_path):
    from PIL import Image

    start = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(start)
    with start.open("rb") as file:
        result = client.images.edit(model="image.diffusers/demo", image=file, prompt="a blue fox", size="64x64",
                                    extra_body={"steps": 2, "seed": 4, "strength": 0.5})
    data = base64.b64decode(result.data[0].b64_json)
    saved = tmp_path / "edited.png"
    saved.write_bytes(data)
    metadata = read_png_metadata(saved)
    assert metadata["params"]["mode"] == "img2img" and metadata["params"]["strength"] == 0.5
    upload = Path(metadata["params"]["init_image"])
    assert upload.parent == server.home / "data" / "serve-inputs"
    assert png_pixels(upload.read_bytes()) == png_pixels(start.read_bytes())


# -- audio ---------------------------------------------------------------------------------------------------------

def test_speech_is_a_wav_with_the_seed(client):
    response = client.audio.speech.with_raw_response.create(model="audio.speech/demo", input="Hello there.",
                                                           voice="alloy", extra_body={"seed": 5})
    data = response.content
    assert response.headers["content-type"] == "audio/wav" and response.headers["x-studiolo-seed"] == "5"
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert b"stdo" in data  # Studiolo's metadata chunk
    flac = client.audio.speech.with_raw_response.create(model="audio.speech/demo", input="Hello there.",
                                                       voice="alloy", response_format="flac", extra_body={"seed": 5})
    assert flac.headers["content-type"] == "audio/flac" and b"fLaC" in flac.content[:4096]  # after an ID3 tag


# -- Studiolo's jobs -----------------------------------------------------------------------------------------------

def test_an_image_job_reports_each_step_then_its_png(http):
    created = http.post("/v1/studiolo/jobs", json={"model": "image.diffusers/demo", "params": {**IMAGE, "steps": 3},
                                                   "seed": 8})
    assert created.status_code == 202
    job_id = created.json()["id"]
    events = list(job_events(http, job_id))
    steps = [data for name, data in events if name == "progress" and data["total"] == 3]
    assert steps and steps[-1]["done"] == 3
    name, job = events[-1]
    assert name == "done" and job["state"] == "done" and job["seed"] == 8
    (output,) = job["outputs"]
    assert output["kind"] == "image" and output["media_type"] == "image/png"
    assert base64.b64decode(output["b64"]).startswith(b"\x89PNG")
    assert http.get(f"/v1/studiolo/jobs/{job_id}").json()["outputs"] == job["outputs"]


def test_delete_cancels_a_running_job(http):
    steps = 150
    created = http.post("/v1/studiolo/jobs", json={"model": "image.diffusers/demo",
                                                   "params": {**IMAGE, "steps": steps}})
    job_id = created.json()["id"]
    events = job_events(http, job_id)
    for name, data in events:
        if name == "progress" and data["total"] == steps and data["done"] >= 1:
            break
    assert http.delete(f"/v1/studiolo/jobs/{job_id}").status_code == 202
    name, job = list(events)[-1]
    assert name == "cancelled" and job["state"] == "cancelled"
    assert job["progress"]["done"] < steps
    assert http.get(f"/v1/studiolo/jobs/{job_id}").json()["state"] == "cancelled"


# -- refusals ------------------------------------------------------------------------------------------------------

def test_an_unknown_model_is_404(client):
    for model in ("text.nope/demo", "text.transformers/no-such-model", "nothing"):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=model, messages=CHAT)
        assert caught.value.body["param"] == "model" and caught.value.body["code"] == "model_not_found"


@pytest.mark.parametrize("call, param, words", [
    (lambda c: c.chat.completions.create(model="text.transformers/demo", messages=CHAT, max_tokens=0),
     "max_tokens", "between"),
    (lambda c: c.chat.completions.create(model="text.transformers/demo", messages=CHAT, extra_body={"top_k": -3}),
     "top_k", "between"),
    (lambda c: c.chat.completions.create(model="text.transformers/demo", messages=CHAT, n=2), "n", "at most 1"),
    (lambda c: c.images.generate(model="image.diffusers/demo", prompt="x", extra_body={"stepz": 2}), "stepz",
     "did you mean 'steps'"),
    (lambda c: c.images.generate(model="image.diffusers/demo", prompt="x", size="65x64"), "size",
     "multiple of 8"),
    (lambda c: c.images.generate(model="image.diffusers/demo", prompt="x", response_format="url"),
     "response_format", "b64_json"),
    (lambda c: c.images.generate(model="image.diffusers/demo", prompt="x", extra_body={"init_image": "/etc/hosts"}),
     "init_image", "file on the server"),
    (lambda c: c.images.generate(model="image.diffusers/demo", prompt="x", extra_body={"loras": ["/etc/x:1"]}),
     "loras", "file on the server"),
    (lambda c: c.images.generate(model="text.transformers/demo", prompt="x"), "model", "/v1/chat/completions"),
])
def test_bad_requests_are_400_naming_the_field(client, call, param, words):
    with pytest.raises(openai.BadRequestError) as caught:
        call(client)
    assert caught.value.status_code == 400 and caught.value.body["param"] == param
    assert words in caught.value.body["message"]


def test_malformed_json_is_400(http):
    response = http.post("/v1/chat/completions", content=b'{"model": "text.transformers/demo", "messages": [',
                         headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_a_body_over_the_limit_is_413_declared_or_chunked(http):
    big = json.dumps({"model": "text.transformers/demo", "prompt": "x" * (MAX_BODY_MB * 1024 * 1024)}).encode()
    response = http.post("/v1/completions", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"

    def chunks():
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    response = http.post("/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["type"] == "invalid_request_error"


def test_web_pages_get_no_cors_headers_and_no_answers(http, server):
    preflight = http.options("/v1/chat/completions", headers={"Origin": "http://evil.example",
                                                              "Access-Control-Request-Method": "POST"})
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]
    assert preflight.status_code == 403
    posted = http.post("/v1/chat/completions", content=b"{}", headers={"Origin": "http://evil.example",
                                                                       "content-type": "text/plain"})
    assert posted.status_code == 403 and not [h for h in posted.headers if h.lower().startswith("access-control-")]
    rebound = http.get("/v1/models", headers={"Host": f"evil.example:{server.url.split(':')[2].split('/')[0]}"})
    assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "host_refused"
    assert http.options("/v1/models").status_code == 405  # no preflight answer at all
