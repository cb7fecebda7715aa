"""Loads through the engine: a job cancelled while it waits for another model's load never loads its own."""

from __future__ import annotations

import sys

import pytest

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 30_000

SLOW_LOADS = '''
import threading
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

LOAD_STARTED = threading.Event()
RELEASE = threading.Event()
LOADS = []

@dataclass(frozen=True)
class Params:
    text: str = param("x", prompt=True)

class SlowLoad(Generator):
    id, name, kind, Params = "test.slowload", "Slow load", "text", Params
    default_model = None
    def load(self, model_path, device, options):
        LOADS.append(self.id)
        LOAD_STARTED.set()
        if not RELEASE.wait(timeout=60):
            raise RuntimeError("never released")
        return None
    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text)]

class Counted(SlowLoad):
    id, name = "test.counted", "Counted"
    def load(self, model_path, device, options):
        LOADS.append(self.id)
        return None

@hookimpl
def register_generators(register):
    register(SlowLoad())
    register(Counted())
'''


@pytest.fixture
def engine(studiolo_site, qtbot):
    studiolo_site.install("studiolo-test-slow-loads", modules={"studiolo_test_slow_loads": SLOW_LOADS},
                          entry_points={"slowloads": "studiolo_test_slow_loads"})
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache(), in_process=True)  # the plugin's events are shared with the test
    yield engine
    sys.modules["studiolo_test_slow_loads"].RELEASE.set()
    assert engine.shutdown(timeout=30)


def test_a_job_cancelled_while_waiting_for_another_load_never_loads(engine, qtbot):
    plugin = sys.modules["studiolo_test_slow_loads"]
    slow = engine.submit("test.slowload", {})
    assert plugin.LOAD_STARTED.wait(timeout=30)  # the first load holds the cache's load lock until released
    waiting = engine.submit("test.counted", {})  # its model is not loaded: its worker waits for that lock
    qtbot.waitUntil(lambda: engine.job(waiting.id).state.value == "loading", timeout=WAIT)
    with qtbot.waitSignal(engine.job_cancelled, timeout=WAIT,
                          check_params_cb=lambda job_id, _partial: job_id == waiting.id):
        engine.cancel(waiting.id)
        plugin.RELEASE.set()
    qtbot.waitUntil(lambda: engine.job(slow.id).state.value == "done", timeout=WAIT)
    assert plugin.LOADS == ["test.slowload"]  # the cancelled job's model was never loaded
