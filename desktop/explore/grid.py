"""A grid: the product of up to three axes over a generator's params, expanded into one cell (one job) each.

Order: like AUTOMATIC1111's X/Y/Z plot, columns are the x axis, rows the y axis and pages the z axis; :func:`expand`
lists the cells with x varying fastest, then y, then z (row by row, page by page). A cell's ``index`` is
``(x, y, z)``, 0 for an axis the grid does not have.

Seeds: a ``seed`` axis gives each cell its seed; otherwise every cell gets ``spec.seed``, and when that is None ONE
random seed is drawn for the whole grid, so that the cells differ only by their axes. A ``model`` axis likewise
overrides ``spec.model``.

Every cell's params are the base params with the cell's axis values applied, validated as a whole against the
generator's ``Params`` (its ``__post_init__`` may refuse a combination): a cell that is not allowed raises
:class:`~desktop.api.ParamError` naming the cell, before any job is made. A grid has at most
:data:`MAX_GRID_JOBS` cells; past :data:`CONFIRM_JOBS` the host asks first (:func:`needs_confirmation`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from desktop.api import ParamError
from desktop.api.params import from_json, to_json
from desktop.engine.jobs import choose_seed
from desktop.explore.axes import MODEL_AXIS, SEED_AXIS, Axis

__all__ = ["GridSpec", "GridCell", "expand", "job_count", "needs_confirmation", "MAX_AXES", "MAX_GRID_JOBS",
           "CONFIRM_JOBS"]

MAX_AXES = 3
"""At most x, y and z."""
MAX_GRID_JOBS = 1000
"""A grid with more cells than this is refused."""
CONFIRM_JOBS = 100
"""A grid with more cells than this is run only once the person confirms it."""


@dataclass(frozen=True)
class GridSpec:
    """What a grid runs: the generator's id, its axes (x, then y, then z), the base params (a JSON-ready dict of
    field values; missing fields take their defaults), and the model and seed of cells that no axis sets them for
    (None: the generator's default model; a random seed drawn once for the whole grid)."""

    generator_id: str
    axes: tuple[Axis, ...]
    base_params: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class GridCell:
    """One cell of a grid, one job: ``index`` is ``(x, y, z)``; ``params`` the validated params as a JSON-ready
    dict (``from_json(Params, cell.params)`` gives the job's params); ``model`` and ``seed`` the job's;
    ``labels`` maps each axis's label to this cell's value label, x first."""

    index: tuple[int, int, int]
    params: dict[str, Any]
    model: str | None
    seed: int
    labels: dict[str, str]


def job_count(spec: GridSpec) -> int:
    """The number of cells (jobs) of the grid: the product of its axes' lengths."""
    count = 1
    for axis in spec.axes:
        count *= len(axis.values)
    return count


def needs_confirmation(spec: GridSpec) -> bool:
    """Whether the grid is big enough (more than :data:`CONFIRM_JOBS` jobs) that the host asks before running it."""
    return job_count(spec) > CONFIRM_JOBS


def expand(spec: GridSpec, generator: Any) -> list[GridCell]:
    """The cells of ``spec`` for ``generator`` (whose ``id`` must be ``spec.generator_id``), x fastest, then y,
    then z. Raises :class:`ParamError` for a grid with no axis or more than three, a field used twice, more than
    :data:`MAX_GRID_JOBS` cells, base params that are not allowed, or a cell that is not allowed (named)."""
    if generator.id != spec.generator_id:
        raise ValueError(f"the grid is for {spec.generator_id!r}, not {generator.id!r}")
    _check_shape(spec)
    params_type = generator.Params
    base = dict(to_json(from_json(params_type, spec.base_params, strict=True)))
    axes = spec.axes
    has_seed_axis = any(axis.field == SEED_AXIS for axis in axes)
    shared_seed = None if has_seed_axis else choose_seed(spec.seed)
    cells = []
    ranges = [range(len(axis.values)) for axis in axes]
    for reversed_index in itertools.product(*reversed(ranges)):
        index = tuple(reversed(reversed_index))
        settings = {axis.field: axis.values[i] for axis, i in zip(axes, index, strict=True)}
        labels = {axis.label: axis.value_labels[i] for axis, i in zip(axes, index, strict=True)}
        seed = settings.pop(SEED_AXIS, shared_seed)
        model = settings.pop(MODEL_AXIS, spec.model)
        cell_index = (index + (0, 0, 0))[:3]
        try:
            params = to_json(from_json(params_type, {**base, **settings}, strict=True))
        except (ParamError, ValueError, TypeError) as exc:
            where = ", ".join(f"{k} {v}" for k, v in labels.items())
            raise ParamError(f"grid cell {cell_index} ({where})", settings, str(exc),
                             hint="Change the axis values so that every combination is allowed.") from exc
        cells.append(GridCell(cell_index, params, model, seed, labels))
    return cells


def _check_shape(spec: GridSpec) -> None:
    if not 1 <= len(spec.axes) <= MAX_AXES:
        raise ParamError("axes", len(spec.axes), f"a grid has 1 to {MAX_AXES} axes")
    fields = [axis.field for axis in spec.axes]
    twice = next((name for name in fields if fields.count(name) > 1), None)
    if twice is not None:
        raise ParamError(twice, fields, "a parameter can be only one axis of a grid")
    count = job_count(spec)
    if count > MAX_GRID_JOBS:
        raise ParamError("grid", count, f"a grid has at most {MAX_GRID_JOBS} jobs; use fewer values on its axes")
    if spec.seed is not None:
        choose_seed(spec.seed)
