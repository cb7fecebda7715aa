"""The model cache: LRU under a budget, explicit and idle unload, references really dropped, RAM checked."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch_plugin

from desktop.api import InsufficientMemoryError, LoadOptions
from desktop.engine.cache import CacheKey, ModelCache
from desktop.plugins import PluginManager
from desktop.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def noise(studiolo_site):
    torch_plugin.install(studiolo_site)
    return PluginManager(Settings()).load().generator("test.noise")


@pytest.fixture
def models(tmp_path, noise):
    """Two tiny models of different sizes: ~8 KB and ~66 KB of float32 weights."""
    build = __import__("studiolo_test_noise").build
    paths = {}
    for name, hidden in (("small", 32), ("big", 256)):
        paths[name] = tmp_path / name
        paths[name].mkdir()
        build(paths[name], width=8, hidden=hidden)
    return paths


def key(path, device="cpu"):
    return CacheKey("test.noise", str(path), device, LoadOptions({"dtype": "float32"}).key())


def loader(noise, path):
    return lambda: noise.load(path, "cpu", LoadOptions({"dtype": "float32"}))


def test_lru_unload_under_a_budget_drops_every_reference(noise, models):
    small_size, big_size = (noise.handle_size(loader(noise, models[n])()) for n in ("small", "big"))
    assert small_size < big_size
    cache = ModelCache(budget=big_size + small_size // 2)  # room for either, not for both
    with cache.lease(key(models["small"]), noise, loader(noise, models["small"])) as handle:
        small_ref = weakref.ref(handle)
    del handle
    assert small_ref() is not None  # cached after the job
    with cache.lease(key(models["big"]), noise, loader(noise, models["big"])) as handle:
        assert handle.width == 8
    del handle
    gc.collect()
    assert small_ref() is None  # unloaded: no reference left anywhere
    assert [m.key for m in cache.loaded()] == [key(models["big"])]


def test_a_model_in_use_is_not_evicted_until_its_job_ends(noise, models):
    cache = ModelCache(budget=1)  # smaller than any model
    with cache.lease(key(models["small"]), noise, loader(noise, models["small"])) as handle:
        ref = weakref.ref(handle)
        assert cache.loaded()[0].in_use
    del handle
    gc.collect()
    assert ref() is None and cache.loaded() == []


def test_explicit_unload_and_unload_while_in_use(noise, models):
    cache = ModelCache()
    with cache.lease(key(models["small"]), noise, loader(noise, models["small"])) as handle:
        ref = weakref.ref(handle)
        assert cache.unload(key(models["small"])) is True  # deferred until the lease ends
        assert ref() is not None
    del handle
    gc.collect()
    assert ref() is None and cache.unload(key(models["small"])) is False


def test_idle_models_are_unloaded_after_the_interval(noise, models):
    clock = Clock()
    cache = ModelCache(clock=clock)
    for name in ("small", "big"):
        with cache.lease(key(models[name]), noise, loader(noise, models[name])):
            pass
        clock.now += 100
    assert cache.unload_idle(150) == [key(models["small"])]  # idle for 200 s; the big one for 100 s
    clock.now += 100
    assert cache.unload_idle(150) == [key(models["big"])] and cache.loaded() == []


def test_a_cached_handle_is_reused(noise, models):
    cache = ModelCache()
    calls = []

    def counting():
        calls.append(1)
        return loader(noise, models["small"])()

    for _ in range(3):
        with cache.lease(key(models["small"]), noise, counting):
            pass
    assert len(calls) == 1


def test_not_enough_free_ram_is_a_clear_error_and_nothing_is_loaded(noise, models):
    cache = ModelCache(free_ram=lambda: 1000)
    calls = []
    with pytest.raises(InsufficientMemoryError) as info:
        with cache.lease(key(models["big"]), noise, lambda: calls.append(1), estimate=5_000_000,
                         label="big for Noise"):
            pass
    assert calls == []
    assert info.value.message == "Loading big for Noise needs about 4.8 MB of memory, but only 1000 B is free."
    assert "unload models" in info.value.hint


def test_loaded_models_are_unloaded_to_make_room_in_ram(noise, models):
    free = {"bytes": 10_000}
    cache = ModelCache(free_ram=lambda: free["bytes"])
    with cache.lease(key(models["small"]), noise, loader(noise, models["small"])):
        pass
    small_size = cache.loaded()[0].size
    with cache.lease(key(models["big"]), noise, loader(noise, models["big"]), estimate=10_000 + small_size):
        pass
    assert [m.key for m in cache.loaded()] == [key(models["big"])]


def test_the_size_estimate_is_only_computed_when_the_model_must_be_loaded(noise, models):
    cache = ModelCache()
    estimates = []

    def estimate():
        estimates.append(1)
        return 1000

    for _ in range(3):
        with cache.lease(key(models["small"]), noise, loader(noise, models["small"]), estimate=estimate):
            pass
    assert estimates == [1]  # the two cache hits scanned nothing
