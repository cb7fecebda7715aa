"""An interpolation running through the engine: its frames (:func:`~desktop.explore.interpolate.plan_frames`) as
the cells of a :class:`~desktop.explore.run.GridRun`, frame ``k`` at ``(k, 0, 0)``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from desktop.explore.grid import GridSpec
from desktop.explore.interpolate import InterpolationSpec, plan_frames
from desktop.explore.run import GridRun

__all__ = ["InterpolationRun"]


class InterpolationRun(GridRun):
    """The frames of an :class:`InterpolationSpec` running through the engine: a grid run whose cells are the
    frames (its signals, ``results``, ``saved``, ``errors`` and ``cancel`` as a grid's; frame ``k`` is cell
    ``(k, 0, 0)``), with ``interpolation``, the spec. :class:`ParamError` before any job when the plan is
    refused (:func:`plan_frames`)."""

    def __init__(self, engine: Any, spec: InterpolationSpec, generator: Any, parent: QObject | None = None) -> None:
        cells = plan_frames(spec, generator)
        super().__init__(engine, GridSpec(spec.generator_id, (), dict(spec.start_params), spec.model), generator,
                         parent, cells=cells)
        self.interpolation = spec
