"""The model cache: loaded handles kept for the next job, within a memory budget.

Handles are keyed by generator, model, device and load options. A job *leases* a handle while it runs; the
least recently used handles that no job holds are unloaded when the budget is exceeded, when the user unloads
them, or when they sat idle too long. Unloading drops the cache's every reference, lets the generator release
what it holds, runs the garbage collector and empties the device cache. Before loading, free RAM is compared
with the model's size on disk so that a model too big for the machine fails with a message instead of the
operating system killing Studiolo.

Loads are serialised by one load lock, held from making room to recording the loaded handle:

- a load is sized by the change in the process's memory (RSS, or CUDA memory) around ``load()``; a second load
  running at the same time would be counted in the first one's size;
- room is made from the estimate (the weights' size on disk) *before* the load, and the free-memory check and the
  load happen under the lock, so two loads cannot both pass the check and then both load; after the load the
  measured size replaces the estimate and the budget is enforced again, still under the lock;
- two leases of the same model coalesce: the second waits for the lock, then finds the first one's handle.

The cost: loads of different models run one after the other, and a job whose model is not loaded waits for the
load in progress. A job whose model is already loaded never takes the lock. A load that fails (or is cancelled)
releases the lock and leaves no entry. Unloads outside a load (a job's end, the idle timer, the user) do not take
the lock, so one that frees memory while another model loads can make that load's measured size smaller.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from desktop.api import Generator, InsufficientMemoryError
from desktop.engine import memory
from desktop.engine.devices import empty_device_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    generator_id: str
    model: str
    device: str
    options: tuple


@dataclass(eq=False)
class _Entry:
    key: CacheKey
    generator: Generator
    handle: Any
    size: int
    last_used: float
    leases: int = 0
    drop_when_free: bool = False


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model as the UI shows it."""

    key: CacheKey
    size: int
    idle_seconds: float
    in_use: bool


@dataclass
class ModelCache:
    """Thread-safe cache of loaded model handles. ``budget`` in bytes (None: no limit)."""

    budget: int | None = None
    clock: Callable[[], float] = time.monotonic
    free_ram: Callable[[], int | None] = memory.available_ram
    memory_in_use: Callable[[str], int | None] = memory.in_use  # the bytes a load on a device is measured by
    _entries: OrderedDict[CacheKey, _Entry] = field(default_factory=OrderedDict, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, init=False)  # see the module docstring

    # -- leasing ------------------------------------------------------------------------------------------

    @contextmanager
    def lease(self, key: CacheKey, generator: Generator, loader: Callable[[], Any], *,
              estimate: int | Callable[[], int] = 0, label: str = "the model",
              before_load: Callable[[], None] | None = None) -> Iterator[Any]:
        """The handle for ``key``, loaded with ``loader()`` if it is not cached, held for the ``with`` block.
        ``estimate`` (bytes, or a function giving them) is the model's expected size; a function is only called when
        the model must be loaded, so a cache hit costs no disk scan. ``before_load`` is called once this lease holds
        the load lock, before it makes room (e.g. a job's cancel check, so that a job cancelled while it waited for
        another load does not load); what it raises ends the lease."""
        entry = self._acquire(key)
        if entry is None:
            entry = self._load(key, generator, loader, estimate, label, before_load)
        try:
            yield entry.handle
        finally:
            self._release(entry)

    def _acquire(self, key: CacheKey) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.leases += 1
            return entry

    def _load(self, key: CacheKey, generator: Generator, loader: Callable[[], Any],
              estimate: int | Callable[[], int], label: str, before_load: Callable[[], None] | None) -> _Entry:
        """Load ``key`` under the load lock (see the module docstring), leased once; or lease the entry a load that
        held the lock before this one made."""
        with self._load_lock:
            entry = self._acquire(key)
            if entry is not None:  # loaded while this lease waited for the lock
                return entry
            if before_load is not None:
                before_load()
            self._make_room(estimate() if callable(estimate) else estimate, label)
            handle, size = self._measured(generator, key.device, loader)
            entry = _Entry(key, generator, handle, size, self.clock(), leases=1)
            with self._lock:
                self._entries[key] = entry
            self.enforce_budget()  # the measured size replaces the estimate
        log.info("loaded %s (%s)", key, memory.human_bytes(size))
        return entry

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.leases -= 1
            entry.last_used = self.clock()
            drop = entry.drop_when_free and entry.leases == 0
        if drop:
            self._unload_entry(entry)
        else:
            self.enforce_budget()

    def _measured(self, generator: Generator, device: str, loader: Callable[[], Any]) -> tuple[Any, int]:
        """``loader()``'s handle and its size: the generator's own figure, else the change in the memory in use on
        ``device`` around the load (only meaningful while no other load runs: the caller holds the load lock)."""
        before = self.memory_in_use(device)
        handle = loader()
        reported = generator.handle_size(handle)
        if reported is not None:
            return handle, int(reported)
        after = self.memory_in_use(device)
        return handle, max(0, (after or 0) - (before or 0))

    # -- making room -------------------------------------------------------------------------------------

    def _make_room(self, estimate: int, label: str) -> None:
        if self.budget is not None and estimate:
            self._evict_until(lambda total, _freed: total + estimate <= self.budget)  # type: ignore[operator]
        free = self.free_ram()
        if not estimate or free is None or estimate <= free:
            return
        freed = self._evict_until(lambda _total, freed: freed >= estimate - free)
        if estimate > free + freed:
            raise InsufficientMemoryError(
                f"Loading {label} needs about {memory.human_bytes(estimate)} of memory, but only "
                f"{memory.human_bytes(free + freed)} is free.",
                hint="Close other programs or unload models you are not using, or choose a smaller model.",
            )

    def _evict_until(self, enough: Callable[[int, int], bool]) -> int:
        """Unload idle handles, least recently used first, until ``enough(total size, bytes freed)``; returns
        the bytes freed."""
        freed = 0
        while True:
            with self._lock:
                total = sum(e.size for e in self._entries.values())
                if enough(total, freed):
                    return freed
                victim = next((e for e in self._entries.values() if e.leases == 0), None)
                if victim is None:
                    return freed
                del self._entries[victim.key]
            freed += victim.size
            self._unload_entry(victim)

    def enforce_budget(self) -> None:
        """Unload idle models, least recently used first, until the loaded ones fit the budget (after a job, or
        after the budget was lowered)."""
        if self.budget is not None:
            self._evict_until(lambda total, _freed: total <= self.budget)  # type: ignore[operator]

    # -- unloading ---------------------------------------------------------------------------------------

    def unload(self, key: CacheKey) -> bool:
        """Unload one model now (or, if a job is using it, as soon as the job ends). False if not loaded."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return False
            if entry.leases:
                entry.drop_when_free = True
                return True
        self._unload_entry(entry)
        return True

    def unload_all(self) -> None:
        for key in list(self._entries):
            self.unload(key)

    def unload_where(self, predicate: Callable[[Any], bool]) -> list[CacheKey]:
        """Unload every model whose handle satisfies ``predicate`` (those of a worker process that ended)."""
        with self._lock:
            keys = [e.key for e in self._entries.values() if predicate(e.handle)]
        return [key for key in keys if self.unload(key)]

    def unload_idle(self, max_idle: float) -> list[CacheKey]:
        """Unload every model no job has used for ``max_idle`` seconds of the cache's clock."""
        now = self.clock()
        with self._lock:
            idle = [e.key for e in self._entries.values() if e.leases == 0 and now - e.last_used >= max_idle]
        return [key for key in idle if self.unload(key)]

    def _unload_entry(self, entry: _Entry) -> None:
        handle, entry.handle = entry.handle, None
        try:
            entry.generator.unload(handle)
        except Exception:
            log.exception("%s: unload raised", entry.key.generator_id)
        del handle
        gc.collect()
        empty_device_cache()
        log.info("unloaded %s", entry.key)

    # -- queries -----------------------------------------------------------------------------------------

    def has(self, key: CacheKey) -> bool:
        """Whether the model of ``key`` is in memory now."""
        with self._lock:
            return key in self._entries

    def loaded(self) -> list[LoadedModel]:
        now = self.clock()
        with self._lock:
            return [LoadedModel(e.key, e.size, now - e.last_used, e.leases > 0) for e in self._entries.values()]

    def total_size(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())
