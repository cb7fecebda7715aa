"""A batch or a grid spread over several remote servers (issue 23, point 4): which server runs each item.

Each server takes up to its own ``concurrency`` items at once (one engine *lane* a slot: ``Engine.submit(lane=…)``,
so the remote generator's jobs run side by side). An item whose server went away — its job failed with
:class:`~desktop.api.ServerUnavailableError` — goes back to the front of the batch to run on another server, and the
server is left out for ``cooldown`` seconds (by a clock the caller may give: tests control time). An item every
server has failed ends failed with the last server's message: nothing waits forever.

:class:`Spread` hands out the servers' slots; :class:`SpreadRun` is a run's side of it (which slot each job holds,
the retries, where each item ran); :func:`submit_item` submits one item of a batch or grid, spread or not. Pure
bookkeeping: no Qt, no network (the run asks, the engine runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from desktop.api import ParamError, RemoteServer, parse_remote_ref, remote_ref

__all__ = ["COOLDOWN_S", "Placement", "Slot", "Spread", "SpreadRun", "model_on", "spread_from_names", "spread_servers",
           "submit_item"]

COOLDOWN_S = 60.0
"""How long a server that went away is left out before items are sent to it again."""


@dataclass(frozen=True)
class Slot:
    """One place to run an item: ``server``'s ``index``-th concurrent slot."""

    server: str
    index: int

    @property
    def lane(self) -> str:
        """The engine lane of this slot (its own queue and worker thread)."""
        return f"{self.server}.{self.index}"


class Spread:
    """Hands out slots on ``servers`` (each up to its concurrency), least busy server first."""

    def __init__(self, servers: Sequence[RemoteServer], *, cooldown: float = COOLDOWN_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not servers:
            raise ValueError("a spread needs at least one server")
        self.servers = list(servers)
        self.cooldown = cooldown
        self.clock = clock
        self._busy: set[Slot] = set()
        self._down_until: dict[str, float] = {}

    @property
    def capacity(self) -> int:
        """Items that may run at once, on every server together."""
        return sum(server.concurrency for server in self.servers)

    def is_down(self, server: str) -> bool:
        until = self._down_until.get(server)
        return until is not None and self.clock() < until

    def usable(self, tried: Collection[str] = ()) -> bool:
        """Whether a server ``tried`` leaves out is up (busy or not): an item has somewhere left to run."""
        return any(s.name not in tried and not self.is_down(s.name) for s in self.servers)

    def place(self, tried: Collection[str] = ()) -> Slot | None:
        """A free slot on an up server not in ``tried`` (the least busy such server; ties in the order given), taken;
        None when every such slot is busy (or no such server is up)."""
        best: Slot | None = None
        best_load = 2.0
        for server in self.servers:
            if server.name in tried or self.is_down(server.name):
                continue
            used = {slot.index for slot in self._busy if slot.server == server.name}
            free = [i for i in range(server.concurrency) if i not in used]
            load = len(used) / server.concurrency
            if free and load < best_load:
                best, best_load = Slot(server.name, free[0]), load
        if best is not None:
            self._busy.add(best)
        return best

    def free(self, slot: Slot) -> None:
        """The item on ``slot`` ended (done, failed or cancelled)."""
        self._busy.discard(slot)

    def went_away(self, server: str) -> None:
        """``server`` failed an item as unreachable: leave it out for the cooldown."""
        self._down_until[server] = self.clock() + self.cooldown


def spread_servers(names: Sequence[str], configured: Sequence[RemoteServer], model: str | None) -> list[RemoteServer]:
    """The servers a batch of ``model`` spreads over: ``names`` (``["all"]``: every configured one), checked against
    the configured servers; the model must be a ``remote://`` reference (its server part is replaced item by item).
    :class:`ParamError` naming what is wrong."""
    if not model:
        raise ParamError("model", model, "spreading over servers needs a remote model (remote://SERVER/MODEL-ID)",
                         hint="Choose a model on one of your servers (--model remote://SERVER/MODEL-ID on the command "
                              "line); `studiolo models list --remote` lists them.")
    parse_remote_ref(model)
    by_name = {server.name: server for server in configured}
    if list(names) == ["all"]:
        chosen = list(configured)
    else:
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ParamError("spread", ",".join(names), "each must be a configured server: "
                             + (", ".join(by_name) or "none is configured"),
                             hint="`studiolo servers list` shows them; `studiolo servers add` adds one.")
        chosen = [by_name[name] for name in dict.fromkeys(names)]
    if not chosen:
        raise ParamError("spread", ",".join(names), "no server is configured",
                         hint="Add servers with `studiolo servers add NAME URL`.")
    return chosen


def model_on(model: str, server: str) -> str:
    """``model`` (``remote://ANY/ID``) on ``server``."""
    _server, model_id = parse_remote_ref(model)
    return remote_ref(server, model_id)


@dataclass(frozen=True)
class Placement:
    """Where an item runs: its ``model`` on the slot's server, the engine ``lane`` of the ``slot``."""

    model: str
    lane: str
    slot: Slot


class SpreadRun:
    """A run's side of a spread (a batch's, a grid's): the slot each job under way holds, the servers each item saw
    go away, the retries, and the model each item last ran on (its provenance). Items are any hashable key."""

    def __init__(self, spread: Spread) -> None:
        self.spread = spread
        self.retries: list[tuple[object, str, str]] = []  # (item, the server that went away, its message)
        self.ran_on: dict[object, str] = {}
        self._slots: dict[str, Slot] = {}  # job id → its slot
        self._tried: dict[object, set[str]] = {}

    @property
    def capacity(self) -> int:
        return self.spread.capacity

    def place(self, item: object, model: str | None) -> Placement | str | None:
        """Where ``item`` (of model ``model``, ``remote://ANY/ID``) runs now: a :class:`Placement` (its slot taken:
        call :meth:`started` with the job), None when every slot it may use is busy (place it again when one is
        freed), or the message it fails with when every server went away under it."""
        tried = self._tried.get(item, set())
        slot = self.spread.place(tried)
        if slot is None:
            if self.spread.usable(tried):
                return None
            said = [message for key, _server, message in self.retries if key == item]
            return (said[-1] if said else "no server is up") + " (every server was tried)"
        model = model_on(model or "", slot.server)
        self.ran_on[item] = model
        return Placement(model, slot.lane, slot)

    def started(self, job_id: str, placement: Placement) -> None:
        self._slots[job_id] = placement.slot

    def unplace(self, placement: Placement) -> None:
        """A placement whose job could not be submitted: its slot is free again."""
        self.spread.free(placement.slot)

    def ended(self, job_id: str) -> Slot | None:
        """The job ended (done, failed or cancelled): its slot is free; the slot, or None for a job not placed."""
        slot = self._slots.pop(job_id, None)
        if slot is not None:
            self.spread.free(slot)
        return slot

    def went_away(self, item: object, slot: Slot | None, error_type: str | None, message: str) -> bool:
        """After ``item``'s job on ``slot`` failed with ``error_type`` (``Job.error_type``): True when its server
        went away (:class:`~desktop.api.ServerUnavailableError`) — the server is left out for the cooldown and the
        item should run again elsewhere; False for any other failure (the item fails)."""
        if slot is None or error_type != "ServerUnavailableError":
            return False
        self.spread.went_away(slot.server)
        self._tried.setdefault(item, set()).add(slot.server)
        self.retries.append((item, slot.server, message))
        return True


def submit_item(engine: Any, spread_run: SpreadRun | None, item: object, generator_id: str, params: Any,
                model: str | None, seed: int | None) -> Any:
    """Submit one item of a batch or grid: as it is without a spread; with one, on a free slot of a server (its
    model moved to that server, its job on the slot's lane). Returns the job; None when every slot the item may use
    is busy (submit it again when one is freed); or, when every server went away under it, the message it fails
    with."""
    if spread_run is None:
        return engine.submit(generator_id, params, model=model, seed=seed)
    placement = spread_run.place(item, model)
    if placement is None or isinstance(placement, str):
        return placement
    try:
        job = engine.submit(generator_id, params, model=placement.model, seed=seed, lane=placement.lane)
    except BaseException:
        spread_run.unplace(placement)
        raise
    spread_run.started(job.id, placement)
    return job


def spread_from_names(text: str, configured: Sequence[RemoteServer], models: Sequence[str | None]) -> Spread:
    """The spread of a command's ``--spread NAMES`` (comma-separated, or ``all``) over the ``configured`` servers,
    for items of ``models`` (each must be ``remote://…``). :class:`ParamError` naming what is wrong."""
    from desktop.api import ModelNotFoundError

    names = [name.strip() for name in text.split(",") if name.strip()]
    model = next(iter(models), None)
    try:
        servers = spread_servers(names, configured, model)
        for model in models:
            parse_remote_ref(model or "")
    except ModelNotFoundError as exc:
        raise ParamError("model", model, "spreading over servers needs a remote model (remote://SERVER/MODEL-ID)",
                         hint="Choose a model on one of your servers (--model remote://SERVER/MODEL-ID on the command "
                              "line); `studiolo models list --remote` lists them."
                         ) from exc
    return Spread(servers)
