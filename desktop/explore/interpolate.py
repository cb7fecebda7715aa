"""An interpolation between two jobs of one generator: its frames planned by the generator, run through the engine.

:func:`plan_frames` asks the generator (``Generator.interpolation_frames``, API 0.2.1) for each frame's params and
seed, after the host's own checks: the generator offers interpolation, the number of frames is from
:data:`MIN_FRAMES` to :data:`MAX_FRAMES`, both ends are valid params and use the same model. Every frame is then
one ordinary job (:class:`~desktop.explore.interpolate_run.InterpolationRun`: a grid run whose cells are the
frames, frame ``k`` at index ``(k, 0, 0)``), saved to the library with its own metadata, which reproduces it.

Nothing here imports Qt, torch or another heavy library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from desktop.api import ParamError
from desktop.api.params import from_json, to_json, validate
from desktop.engine.jobs import choose_seed
from desktop.explore.grid import GridCell

__all__ = ["InterpolationSpec", "MIN_FRAMES", "MAX_FRAMES", "plan_frames", "FRAME_LABEL"]

MIN_FRAMES = 2
"""The two ends."""
MAX_FRAMES = 120
"""More frames than this are refused (five seconds at 24 frames a second)."""
FRAME_LABEL = "Frame"
"""The label of a frame's cell (``{"Frame": "3"}``, counting from 1)."""


@dataclass(frozen=True)
class InterpolationSpec:
    """What an interpolation runs: the generator's id, the params of both ends (JSON-ready dicts of field values;
    missing fields take their defaults), the seed of each end (None: a random one, drawn once), the number of
    frames, and the model of each end (None: the generator's default; ``end_model`` None: the start's)."""

    generator_id: str
    start_params: Mapping[str, Any] = field(default_factory=dict)
    end_params: Mapping[str, Any] = field(default_factory=dict)
    start_seed: int | None = None
    end_seed: int | None = None
    frames: int = 8
    model: str | None = None
    end_model: str | None = None


def plan_frames(spec: InterpolationSpec, generator: Any) -> list[GridCell]:
    """The frames of ``spec`` for ``generator``, first to last, as cells ``(k, 0, 0)`` (params as JSON, model,
    seed, label). Raises :class:`ParamError` (named) before any job: a generator that offers no interpolation,
    frames out of range, invalid ends, two models, or what the generator refuses (different sizes)."""
    if generator.id != spec.generator_id:
        raise ValueError(f"the interpolation is for {spec.generator_id!r}, not {generator.id!r}")
    if not getattr(generator, "offers_interpolation", False):
        raise ParamError("generator", generator.id, "this generator offers no interpolation",
                         hint="Interpolate with a generator that offers it, such as image.diffusers.")
    frames = spec.frames
    if isinstance(frames, bool) or not isinstance(frames, int) or not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ParamError("frames", frames, f"an interpolation has {MIN_FRAMES} to {MAX_FRAMES} frames")
    if spec.end_model is not None and spec.end_model != spec.model:
        raise ParamError("model", spec.end_model, f"both ends of an interpolation must use the same model (the "
                         f"start uses {spec.model or 'the default model'})",
                         hint="Choose the same model for both ends.")
    start = from_json(generator.Params, spec.start_params, strict=True)
    end = from_json(generator.Params, spec.end_params, strict=True)
    start_seed = choose_seed(spec.start_seed)
    end_seed = choose_seed(spec.end_seed)
    planned = generator.interpolation_frames(start, end, start_seed, end_seed, frames)
    if not planned or len(planned) != frames:
        raise ParamError("frames", frames, f"{generator.id} planned {len(planned or ())} frames, not {frames}",
                         hint="Report this to the generator's authors.")
    cells = []
    for k, (params, seed) in enumerate(planned):
        checked = validate(params, generator.Params)
        cells.append(GridCell((k, 0, 0), dict(to_json(checked)), spec.model, choose_seed(seed),
                              {FRAME_LABEL: str(k + 1)}))
    return cells
