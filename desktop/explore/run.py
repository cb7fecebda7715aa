"""A grid running through the engine: one job per cell, followed by the engine's signals, never waited for.

:class:`GridRun` expands its :class:`~desktop.explore.grid.GridSpec` (a :class:`~desktop.api.ParamError` before any
job is queued), submits every cell with :meth:`Engine.submit <desktop.engine.engine.Engine.submit>` (x fastest, then
y, then z) and reports each cell as its job ends. Every cell's outputs are saved to the library by the engine, like
any job's. Cancelling the grid cancels the cells that have not ended yet, queued and running.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.api.params import from_json
from desktop.explore.grid import GridCell, GridSpec, expand
from desktop.remote.spread import submit_item

__all__ = ["GridRun"]

Index = tuple[int, int, int]


class GridRun(QObject):
    """The jobs of one grid. Signals (emitted on the engine's thread, as its own are):

    * ``cell_done(index, job_id, outputs)``, ``cell_failed(index, job_id, message)``, ``cell_cancelled(index,
      job_id)`` — a cell's job ended;
    * ``progressed(done, total)`` — how many cells have ended (done, failed or cancelled), of how many;
    * ``finished()`` — every cell has ended.

    ``results`` maps each done cell's index to its outputs, ``saved`` to the paths the library saved them at,
    ``errors`` each failed cell's to its message; ``cells`` are the expanded cells in order and ``job_ids`` the ids
    of the jobs submitted, in order (a spread grid's retries included).
    """

    cell_done = Signal(object, str, object)
    cell_failed = Signal(object, str, str)
    cell_cancelled = Signal(object, str)
    cell_retried = Signal(object, str, str)  # a spread grid's cell whose server went away: index, server, message
    progressed = Signal(int, int)
    finished = Signal()

    def __init__(self, engine: Any, spec: GridSpec, generator: Any, parent: QObject | None = None, *,
                 cells: list[GridCell] | None = None, spread: Any = None) -> None:
        """``spread``: a :class:`desktop.remote.spread.Spread` to run the cells on several remote servers at once:
        then cells are fed as the servers' slots free (not all queued at once), and a cell whose server went away
        runs again on another (``cell_retried(index, server, message)``)."""
        super().__init__(parent)
        self.engine = engine
        self.spec = spec
        self.generator = generator
        self.cells: list[GridCell] = expand(spec, generator) if cells is None else list(cells)
        """The cells in order; ``cells`` given: those, already checked (an interpolation's frames), else the
        expansion of ``spec``."""
        self.results: dict[Index, list[Any]] = {}
        self.saved: dict[Index, list[Path]] = {}
        self.errors: dict[Index, str] = {}
        self.cancelled: set[Index] = set()
        self.job_ids: list[str] = []
        self._cell_of: dict[str, GridCell] = {}
        self._open: set[str] = set()  # the jobs not ended yet
        self._todo: deque[GridCell] = deque(self.cells)  # the cells not submitted yet
        self._finished_said = False
        self._slot_of: dict[str, Any] = {}  # a spread grid's job that just ended → the slot it had
        self._spread_run: Any = None
        if spread is not None:
            from desktop.remote.spread import SpreadRun

            self._spread_run = SpreadRun(spread)
        self._connect(True)
        try:
            self._feed()
        except BaseException:
            self._connect(False)
            for job_id in self.job_ids:
                engine.cancel(job_id)
            raise

    def _feed(self) -> None:
        """Submit the cells waiting: all of them, or (spread) as many as the servers have free slots."""
        while self._todo:
            cell = self._todo[0]
            job = submit_item(self.engine, self._spread_run, cell.index, self.spec.generator_id,
                              from_json(self.generator.Params, cell.params), cell.model, cell.seed)
            if job is None:
                return  # every slot is busy: fed again when a cell ends
            self._todo.popleft()
            if isinstance(job, str):  # every server went away under it
                self.errors[cell.index] = job
                self.cell_failed.emit(cell.index, "", job)
                continue
            self.job_ids.append(job.id)
            self._cell_of[job.id] = cell
            self._open.add(job.id)

    def job_id_of(self, index: Index) -> str:
        """The id of the last job of cell ``index`` ("" for a cell a spread grid has not submitted yet)."""
        return next((job_id for job_id, cell in reversed(self._cell_of.items()) if cell.index == index), "")

    @property
    def retries(self) -> list[tuple[Any, str, str]]:
        """(cell index, the server that went away under it, its message), for a spread grid."""
        return self._spread_run.retries if self._spread_run is not None else []

    @property
    def total(self) -> int:
        return len(self.cells)

    @property
    def ended(self) -> int:
        return len(self.results) + len(self.errors) + len(self.cancelled)

    @property
    def is_finished(self) -> bool:
        return not self._open and not self._todo

    def cancel(self, *, hard: bool = False) -> None:
        """Cancel every cell whose job has not ended (queued ones end at once, running ones when they stop); the cells
        a spread grid had not submitted yet end cancelled at once."""
        while self._todo:
            cell = self._todo.popleft()
            self.cancelled.add(cell.index)
            self.cell_cancelled.emit(cell.index, "")
        for job_id in [j for j in self.job_ids if j in self._open]:
            self.engine.cancel(job_id, hard=hard)
        if not self._open:
            self._after(None)

    def _connect(self, on: bool) -> None:
        pairs = ((self.engine.job_finished, self._on_finished), (self.engine.job_failed, self._on_failed),
                 (self.engine.job_cancelled, self._on_cancelled))
        for signal, slot in pairs:
            signal.connect(slot) if on else signal.disconnect(slot)

    def _on_finished(self, job_id: str, outputs: Any) -> None:
        cell = self._end(job_id)
        if cell is None:
            return
        self.results[cell.index] = list(outputs or [])
        try:
            self.saved[cell.index] = list(self.engine.job(job_id).saved)
        except KeyError:  # forgotten already: nothing to list
            self.saved[cell.index] = []
        self.cell_done.emit(cell.index, job_id, self.results[cell.index])
        self._after(cell)

    def _on_failed(self, job_id: str, message: str) -> None:
        cell = self._end(job_id)
        if cell is None:
            return
        slot = self._slot_of.pop(job_id, None)
        if slot is not None and self._spread_run.went_away(cell.index, slot, self.engine.job(job_id).error_type,
                                                           message):
            self._todo.appendleft(cell)  # its server went away: it runs again first, on another server
            self.cell_retried.emit(cell.index, slot.server, message)
            self._after(cell)
            return
        self.errors[cell.index] = message
        self.cell_failed.emit(cell.index, job_id, message)
        self._after(cell)

    def _on_cancelled(self, job_id: str, _partial: Any) -> None:
        cell = self._end(job_id)
        if cell is None:
            return
        self.cancelled.add(cell.index)
        self.cell_cancelled.emit(cell.index, job_id)
        self._after(cell)

    def _end(self, job_id: str) -> GridCell | None:
        if job_id not in self._open:
            return None
        self._open.discard(job_id)
        if self._spread_run is not None:  # its slot is free for the next cell (kept a moment for _on_failed)
            self._slot_of[job_id] = self._spread_run.ended(job_id)
        return self._cell_of[job_id]

    def _after(self, _cell: GridCell | None) -> None:
        if self._spread_run is not None:
            self._slot_of.clear()
            self._feed()
        self.progressed.emit(self.ended, self.total)
        if not self._open and not self._todo and not self._finished_said:
            self._finished_said = True
            self._connect(False)
            self.finished.emit()
