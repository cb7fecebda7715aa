"""A job whose model is a hub repo id: downloaded in the job (progress, cancel), then served from the cache."""

from __future__ import annotations

import pytest
import torch_plugin
from hub_server import HubServer

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.models.demo import ensure_demo_model
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000
REPO = "studiolo-tests/tiny-noise"


@pytest.fixture
def engine(studiolo_site, qtbot, hub_server: HubServer):
    torch_plugin.install(studiolo_site)
    plugins = PluginManager(Settings()).load()
    demo = ensure_demo_model(plugins.generator("test.noise"))
    hub_server.add_repo(REPO, {p.name: p.read_bytes() for p in demo.iterdir()}, lfs=("model.safetensors",))
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def test_a_hub_model_is_downloaded_by_the_job_then_reused(engine, qtbot, hub_server):
    messages = []
    engine.job_progressed.connect(lambda _id, done, total, message: messages.append(message))
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        first = engine.submit("test.noise", {"steps": 2}, model=REPO, seed=1)
    assert first.state is JobState.DONE and any(REPO in m for m in messages)
    gets = len(hub_server.gets())
    assert gets >= 2  # config.json and model.safetensors came from the (local) hub
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        second = engine.submit("test.noise", {"steps": 2}, model=REPO, seed=1)
    assert len(hub_server.gets()) == gets  # served from the cache
    assert second.outputs[0].image.tobytes() == first.outputs[0].image.tobytes()


def test_cancelling_a_job_while_it_downloads(engine, qtbot, hub_server):
    pause = hub_server.pause(REPO, "model.safetensors", after=1024)
    with qtbot.waitSignal(engine.job_state_changed, timeout=WAIT):
        job = engine.submit("test.noise", {"steps": 2}, model=REPO)
    assert pause.reached.wait(timeout=30)
    with qtbot.waitSignal(engine.job_cancelled, timeout=WAIT) as cancelled:
        engine.cancel(job.id)
    pause.release.set()
    assert cancelled.args == [job.id, []] and job.state is JobState.CANCELLED


def test_offline_and_not_downloaded_fails_the_job_naming_the_model(engine, qtbot, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        engine.submit("test.noise", {"steps": 2}, model=REPO)
    assert REPO in failed.args[1] and "studiolo models pull" in failed.args[1]
