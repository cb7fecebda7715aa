"""Settings apply live: ``Engine.apply_settings()`` after the Settings dialog saves, no restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import install_markov

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000
MB = 1024 * 1024


@pytest.fixture
def engine(studiolo_site, qtbot, tmp_path):
    install_markov(studiolo_site)
    settings = Settings(idle_unload_minutes=0, output_dir=str(tmp_path / "first"))
    engine = Engine(PluginManager(settings).load(), settings, cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def _saved_under(engine, qtbot) -> Path:
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit("text.markov", {"words": 3}, model="demo")
    (path,) = job.saved
    return path


def test_a_new_output_folder_takes_effect_for_the_next_job(engine, qtbot, tmp_path):
    assert _saved_under(engine, qtbot).is_relative_to(tmp_path / "first")
    engine.settings.output_dir = str(tmp_path / "second")
    engine.apply_settings()
    assert _saved_under(engine, qtbot).is_relative_to(tmp_path / "second")


def test_the_idle_unload_timer_follows_the_setting(engine):
    assert not engine.idle_timer.isActive()  # 0 minutes: off
    engine.settings.idle_unload_minutes = 5
    engine.apply_settings()
    assert engine.idle_timer.isActive() and engine.idle_timer.interval() == 60_000
    engine.settings.idle_unload_minutes = 0.5
    engine.apply_settings()
    assert engine.idle_timer.isActive() and engine.idle_timer.interval() == 30_000
    engine.settings.idle_unload_minutes = 0
    engine.apply_settings()
    assert not engine.idle_timer.isActive()


def test_a_lowered_memory_budget_unloads_models_at_once(engine, qtbot, monkeypatch):
    # Each load is sized at 50 MB here (the real measure is the process's memory change, too small to budget on).
    measured = ModelCache._measured
    monkeypatch.setattr(ModelCache, "_measured",
                        lambda self, generator, device, loader: (measured(self, generator, device, loader)[0], 50 * MB))
    engine.settings.memory_budget_mb = 1000
    engine.apply_settings()
    _saved_under(engine, qtbot)
    assert len(engine.cache.loaded()) == 1
    engine.settings.memory_budget_mb = 10
    engine.apply_settings()
    assert engine.cache.budget == 10 * MB
    qtbot.waitUntil(lambda: engine.cache.loaded() == [], timeout=WAIT)


def test_device_pickles_and_token_reach_the_next_model_load(engine):
    engine.settings.device, engine.settings.allow_pickle, engine.settings.hf_token = "cpu", True, "hf_new"
    engine.apply_settings()
    services = engine.services
    assert (services.device_preference, services.allow_pickle, services.hf_token) == ("cpu", True, "hf_new")
