"""The model cache under concurrent loads: one load at a time, each sized alone, room made before, failures let go.

Generators and loaders are fakes driven by ``threading.Event``s; the cache's load lock is swapped for one that
says when a second thread waits for it, so each test knows the second load has arrived without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from desktop.api import InsufficientMemoryError
from desktop.engine.cache import CacheKey, ModelCache

WAIT = 10  # seconds: a bound on every wait of the test, never reached when the cache works
HOLD = 3 * WAIT  # the bound on the fakes' waits: longer, so that a test's wait runs out first


class FakeGenerator:
    """What the cache asks of a generator: a handle's size (here from ``sizes``, or None: measure it) and unload."""

    def __init__(self, sizes: dict[str, int] | None = None) -> None:
        self.sizes = sizes or {}
        self.unloaded: list[str] = []

    def handle_size(self, handle: str) -> int | None:
        return self.sizes.get(handle)

    def unload(self, handle: str) -> None:
        self.unloaded.append(handle)


class SignallingLock:
    """A lock that sets ``contended`` when a thread has to wait for it."""

    def __init__(self, contended: threading.Event) -> None:
        self._lock = threading.Lock()
        self.contended = contended

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self.contended.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class Lease(threading.Thread):
    """``cache.lease(...)`` in a thread; keeps the handle or the exception, and holds the lease until ``hold``."""

    def __init__(self, cache: ModelCache, name: str, generator: FakeGenerator, loader: Callable[[], Any],
                 hold: threading.Event | None = None, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.cache, self.key, self.generator, self.loader, self.kwargs = cache, key(name), generator, loader, kwargs
        self.hold = hold
        self.handle: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with self.cache.lease(self.key, self.generator, self.loader, **self.kwargs) as handle:
                self.handle = handle
                if self.hold is not None:
                    self.hold.wait(HOLD)
        except BaseException as e:  # handed to the test
            self.error = e

    def finish(self) -> None:
        self.join(WAIT)
        assert not self.is_alive(), "the lease never ended"


def key(name: str) -> CacheKey:
    return CacheKey("test.fake", name, "cpu", ())


def waits_for_lock(cache: ModelCache) -> threading.Event:
    """An event set when a lease waits for the cache's load lock (or, in a cache without one, by the test)."""
    arrived = threading.Event()
    cache._load_lock = SignallingLock(arrived)  # type: ignore[assignment]
    return arrived


def test_loads_of_two_models_run_one_after_the_other_and_each_is_sized_alone():
    in_use = {"bytes": 0}
    cache = ModelCache(free_ram=lambda: None, memory_in_use=lambda device: in_use["bytes"])
    arrived = waits_for_lock(cache)
    events: list[str] = []
    a_started, go_a = threading.Event(), threading.Event()

    def load_a() -> str:
        events.append("A starts")
        a_started.set()
        go_a.wait(HOLD)
        in_use["bytes"] += 1000
        events.append("A returns")
        return "A"

    def load_b() -> str:
        events.append("B starts")
        in_use["bytes"] += 500
        arrived.set()  # without a load lock, B loads while A does
        events.append("B returns")
        return "B"

    generator = FakeGenerator()
    first = Lease(cache, "A", generator, load_a)
    assert a_started.wait(WAIT)
    second = Lease(cache, "B", generator, load_b)
    assert arrived.wait(WAIT)
    go_a.set()
    first.finish()
    second.finish()
    assert (first.error, second.error) == (None, None)
    assert events == ["A starts", "A returns", "B starts", "B returns"]
    assert {m.key.model: m.size for m in cache.loaded()} == {"A": 1000, "B": 500}


def test_two_leases_of_one_model_load_it_once():
    cache = ModelCache(free_ram=lambda: None)
    arrived = waits_for_lock(cache)
    started, go = threading.Event(), threading.Event()
    calls: list[object] = []

    def load() -> object:
        calls.append(handle := object())
        if len(calls) == 1:
            started.set()
            go.wait(HOLD)
        else:
            arrived.set()  # a second load: the leases did not coalesce
        return handle

    generator = FakeGenerator()
    first = Lease(cache, "A", generator, load)
    assert started.wait(WAIT)
    second = Lease(cache, "A", generator, load)
    assert arrived.wait(WAIT)
    go.set()
    first.finish()
    second.finish()
    assert (first.error, second.error) == (None, None)
    assert len(calls) == 1 and first.handle is second.handle is calls[0]
    assert len(cache.loaded()) == 1


def test_room_is_made_before_the_loader_runs():
    generator = FakeGenerator({"A": 600, "B": 600})
    cache = ModelCache(budget=1000, free_ram=lambda: None)
    with cache.lease(key("A"), generator, lambda: "A"):
        pass
    seen_when_loading: list[list[str]] = []

    def load_b() -> str:
        seen_when_loading.append(list(generator.unloaded))
        return "B"

    with cache.lease(key("B"), generator, load_b, estimate=lambda: 600):
        pass
    assert seen_when_loading == [["A"]]  # the idle model went before B's loader was entered
    assert [m.key.model for m in cache.loaded()] == ["B"]


def test_the_free_memory_check_and_the_load_are_one_step():
    """Two models that each fit in free RAM but not together: the second fails while the first is in use."""
    allocated = {"bytes": 0, "peak": 0}
    cache = ModelCache(free_ram=lambda: 1000 - allocated["bytes"])
    arrived = waits_for_lock(cache)
    a_started, go_a, a_done = threading.Event(), threading.Event(), threading.Event()

    def allocate(n: int) -> None:
        allocated["bytes"] += n
        allocated["peak"] = max(allocated["peak"], allocated["bytes"])

    def load_a() -> str:
        a_started.set()
        go_a.wait(HOLD)
        allocate(600)
        return "A"

    b_calls: list[int] = []

    def load_b() -> str:
        b_calls.append(1)
        arrived.set()
        allocate(600)
        return "B"

    generator = FakeGenerator({"A": 600, "B": 600})
    first = Lease(cache, "A", generator, load_a, hold=a_done, estimate=600)
    assert a_started.wait(WAIT)
    second = Lease(cache, "B", generator, load_b, estimate=600, label="B")
    assert arrived.wait(WAIT)
    go_a.set()
    second.finish()
    a_done.set()
    first.finish()
    assert first.error is None
    assert isinstance(second.error, InsufficientMemoryError)
    assert b_calls == [] and allocated["peak"] <= 1000


def test_a_second_load_makes_room_once_the_first_model_is_idle():
    """Two models that each fit the budget but not together: the second unloads the first before it loads."""
    generator = FakeGenerator({"A": 600, "B": 600})
    cache = ModelCache(budget=1000, free_ram=lambda: None)
    arrived = waits_for_lock(cache)
    a_started, go_a = threading.Event(), threading.Event()
    seen_when_loading: list[list[str]] = []

    def load_a() -> str:
        a_started.set()
        go_a.wait(HOLD)
        return "A"

    def load_b() -> str:
        arrived.set()
        seen_when_loading.append(list(generator.unloaded))
        return "B"

    first = Lease(cache, "A", generator, load_a, estimate=600)
    assert a_started.wait(WAIT)
    second = Lease(cache, "B", generator, load_b, estimate=600, before_load=lambda: first.join(WAIT))
    assert arrived.wait(WAIT)
    go_a.set()
    first.finish()
    second.finish()
    assert (first.error, second.error) == (None, None)
    assert seen_when_loading == [["A"]]
    assert [m.key.model for m in cache.loaded()] == ["B"]


@pytest.mark.parametrize("failure", ["loader", "before_load"])
def test_a_failed_or_cancelled_load_lets_the_next_load_proceed(failure):
    cache = ModelCache(free_ram=lambda: None)
    arrived = waits_for_lock(cache)
    started, go = threading.Event(), threading.Event()

    def fail() -> None:
        started.set()
        go.wait(HOLD)
        raise RuntimeError("the load failed" if failure == "loader" else "cancelled")

    generator = FakeGenerator()
    if failure == "loader":
        first = Lease(cache, "A", generator, fail)
    else:
        first = Lease(cache, "A", generator, lambda: "A", before_load=fail)
    assert started.wait(WAIT)
    second = Lease(cache, "B", generator, lambda: "B")
    assert arrived.wait(WAIT)
    go.set()
    first.finish()
    second.finish()
    assert isinstance(first.error, RuntimeError) and second.error is None
    assert [m.key.model for m in cache.loaded()] == ["B"]  # nothing left of the failed load
    third = Lease(cache, "C", generator, lambda: "C")
    third.finish()
    assert third.error is None and third.handle == "C"


def test_a_job_on_a_loaded_model_does_not_wait_for_a_load():
    cache = ModelCache(free_ram=lambda: None)
    generator = FakeGenerator()
    with cache.lease(key("A"), generator, lambda: "A"):
        pass
    started, go = threading.Event(), threading.Event()

    def load_b() -> str:
        started.set()
        go.wait(HOLD)
        return "B"

    loading = Lease(cache, "B", generator, load_b)
    assert started.wait(WAIT)
    try:
        cached = Lease(cache, "A", generator, lambda: pytest.fail("A is loaded"))
        cached.finish()  # while B's load holds the lock
        assert cached.error is None and cached.handle == "A"
    finally:
        go.set()
        loading.finish()
