"""Run one training headless and synchronously, through the generator's real ``train`` and the host's
:class:`~desktop.engine.training.CallbackTrainingContext` (checkpoints, log, fit check, pause) — what plugin
authors' tests (and Studiolo's own) use; the engine runs the same context in the worker process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import Generator, JobCancelled, from_json, validate
from desktop.api.training import TrainingResult
from desktop.engine.training import CallbackTrainingContext, read_log
from desktop.testing.runner import resolve_model_for_test


@dataclass
class TrainingRun:
    """What one training reported: its ``result`` (None when it was cancelled or paused), the training ``log``
    (one dict per step, across resumes), progress reports, previews (samples), warnings (the estimate among
    them), and whether it ended ``cancelled`` or ``paused``."""

    result: TrainingResult | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    progress: list[tuple[int, int | None, str]] = field(default_factory=list)
    previews: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    estimate: dict[str, Any] | None = None
    cancelled: bool = False
    paused: bool = False
    work_dir: Path | None = None


def training_kind(generator: Generator, kind: str) -> Any:
    """The :class:`~desktop.api.TrainingKind` ``kind`` of ``generator`` (``KeyError`` naming the kinds it has)."""
    for candidate in getattr(generator, "training_kinds", ()):
        if candidate.id == kind:
            return candidate
    raise KeyError(f"{generator.id} trains no {kind!r}; it trains: "
                   f"{', '.join(k.id for k in generator.training_kinds) or 'nothing'}")


def run_training(generator: Generator, kind: str, params: Any, *, work_dir: Path, model: str | None = "default",
                 seed: int = 0, device: str = "cpu", resume: bool = False, cancel_after: int | None = None,
                 pause_after: int | None = None, free_memory: Any = None) -> TrainingRun:
    """Validate ``params`` (the kind's ``Params``, a dict, or None for the defaults) and run ``generator.train``
    on ``model`` (``"default"``: the generator's default model; ``demo``; a path) in ``work_dir``.

    ``cancel_after=N`` / ``pause_after=N``: cancel or pause right after the N-th step report, as the user would
    (a pause writes a checkpoint of that step, then stops); ``resume``: continue from the latest checkpoint in
    ``work_dir``. ``free_memory(device)``: what the fit check compares with (default: the real free memory)."""
    spec = training_kind(generator, kind)
    if params is None:
        params = spec.Params()
    elif isinstance(params, dict):
        params = from_json(spec.Params, params, strict=True)
    params = validate(params, spec.Params)
    run = TrainingRun(work_dir=Path(work_dir))
    cancel, pause = threading.Event(), threading.Event()
    steps = 0

    def on_progress(done: int, total: int | None, message: str) -> None:
        nonlocal steps
        run.progress.append((done, total, message))
        steps += 1
        if cancel_after is not None and steps >= cancel_after:
            cancel.set()
        if pause_after is not None and steps >= pause_after:
            pause.set()

    ref = generator.default_model if model == "default" else model
    ctx = CallbackTrainingContext(work_dir=Path(work_dir), resume=resume, pause_event=pause,
                                  free_memory=free_memory, job_id="training", seed=seed, device=device,
                                  cancel_event=cancel, on_progress=on_progress, on_preview=run.previews.append,
                                  on_warning=run.warnings.append, generator=generator)
    try:
        run.result = generator.train(resolve_model_for_test(generator, ref), device, kind, params, ctx)
    except JobCancelled:
        run.paused = pause.is_set() and not cancel.is_set()
        run.cancelled = not run.paused
    finally:
        ctx.close()
    run.estimate = ctx.estimate
    run.log = read_log(Path(work_dir))
    return run
