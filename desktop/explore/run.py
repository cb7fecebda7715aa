"""A grid running through the engine: one job per cell, followed by the engine's signals, never waited for.

:class:`GridRun` expands its :class:`~desktop.explore.grid.GridSpec` (a :class:`~desktop.api.ParamError` before any
job is queued), submits every cell with :meth:`Engine.submit <desktop.engine.engine.Engine.submit>` (x fastest, then
y, then z) and reports each cell as its job ends. Every cell's outputs are saved to the library by the engine, like
any job's. Cancelling the grid cancels the cells that have not ended yet, queued and running.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.api.params import from_json
from desktop.explore.grid import GridCell, GridSpec, expand

__all__ = ["GridRun"]

Index = tuple[int, int, int]


class GridRun(QObject):
    """The jobs of one grid. Signals (emitted on the engine's thread, as its own are):

    * ``cell_done(index, job_id, outputs)``, ``cell_failed(index, job_id, message)``, ``cell_cancelled(index,
      job_id)`` — a cell's job ended;
    * ``progressed(done, total)`` — how many cells have ended (done, failed or cancelled), of how many;
    * ``finished()`` — every cell has ended.

    ``results`` maps each done cell's index to its outputs, ``saved`` to the paths the library saved them at,
    ``errors`` each failed cell's to its message; ``cells`` are the expanded cells in order and ``job_ids`` their
    jobs' ids.
    """

    cell_done = Signal(object, str, object)
    cell_failed = Signal(object, str, str)
    cell_cancelled = Signal(object, str)
    progressed = Signal(int, int)
    finished = Signal()

    def __init__(self, engine: Any, spec: GridSpec, generator: Any, parent: QObject | None = None, *,
                 cells: list[GridCell] | None = None) -> None:
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
        self._connect(True)
        try:
            for cell in self.cells:
                job = engine.submit(spec.generator_id, from_json(generator.Params, cell.params), model=cell.model,
                                    seed=cell.seed)
                self.job_ids.append(job.id)
                self._cell_of[job.id] = cell
                self._open.add(job.id)
        except BaseException:
            self._connect(False)
            for job_id in self.job_ids:
                engine.cancel(job_id)
            raise

    @property
    def total(self) -> int:
        return len(self.cells)

    @property
    def ended(self) -> int:
        return len(self.job_ids) - len(self._open)

    @property
    def is_finished(self) -> bool:
        return not self._open

    def cancel(self, *, hard: bool = False) -> None:
        """Cancel every cell whose job has not ended (queued ones end at once, running ones when they stop)."""
        for job_id in [j for j in self.job_ids if j in self._open]:
            self.engine.cancel(job_id, hard=hard)

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
        return self._cell_of[job_id]

    def _after(self, _cell: GridCell) -> None:
        self.progressed.emit(self.ended, self.total)
        if not self._open:
            self._connect(False)
            self.finished.emit()
