"""Run one job headless and synchronously, through the generator's real ``load`` and ``generate``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import Generator, JobCancelled, LoadOptions, ModelNotFoundError, Output, from_json, validate
from desktop.api.models import DEMO_MODEL
from desktop.api.params import load_option_names
from desktop.engine.context import CallbackRunContext
from desktop.models.demo import ensure_demo_model
from desktop.models.modelless import check_model_choice


@dataclass
class RunResult:
    """What one job produced: its outputs (partial ones if it was cancelled) and what it reported."""

    outputs: list[Output] = field(default_factory=list)
    progress: list[tuple[int, int | None, str]] = field(default_factory=list)
    previews: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cancelled: bool = False
    progress_after_cancel: int = 0
    handle: Any = None


def resolve_model_for_test(generator: Generator, model: str | None) -> Path | None:
    """A model reference as tests use it: ``demo``, a local path, or None for a generator that needs no model."""
    if model is None:
        return None
    if model == DEMO_MODEL:
        return ensure_demo_model(generator)
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"No model at {path}.")
    return path


def run_generator(
    generator: Generator,
    params: Any = None,
    *,
    model: str | None = "default",
    seed: int = 0,
    device: str = "cpu",
    cancel_after: int | None = None,
    allow_pickle: bool = False,
    handle: Any = None,
    watermark: bool = False,
) -> RunResult:
    """Validate ``params`` (a ``Params`` instance, a dict of values, or None for the defaults), load the model
    (``"default"`` means the generator's ``default_model``), run ``generate`` and collect what it reports.

    ``cancel_after=N`` cancels the job right after its N-th progress report, as a user pressing Cancel would;
    ``progress_after_cancel`` then counts the reports the generator still tried to make. Errors raise; a
    cancelled job returns with ``cancelled=True`` and its partial outputs. Pass ``handle`` to reuse a loaded model.
    ``watermark``: what ``ctx.watermark`` says (the user's invisible-watermark setting).
    """
    if params is None:
        params = generator.Params()
    elif isinstance(params, dict):
        params = from_json(generator.Params, params, strict=True)
    params = validate(params, generator.Params)
    result = RunResult()
    cancel = threading.Event()

    def on_progress(done: int, total: int | None, message: str) -> None:
        result.progress.append((done, total, message))
        if cancel_after is not None and len(result.progress) >= cancel_after:
            cancel.set()

    ctx = CallbackRunContext(job_id="test", seed=seed, device=device, cancel_event=cancel,
                             on_progress=on_progress, on_preview=result.previews.append,
                             on_warning=result.warnings.append, generator=generator, watermark=watermark)
    if handle is None:
        ref = generator.default_model if model == "default" else model
        check_model_choice(generator, ref)  # as the engine does: a model-less generator takes no model
        options = LoadOptions({n: getattr(params, n) for n in load_option_names(generator.Params)},
                              allow_pickle=allow_pickle)
        handle = generator.load(resolve_model_for_test(generator, ref), device, options)
    result.handle = handle
    try:
        result.outputs = list(generator.generate(handle, params, ctx))
    except JobCancelled as exc:
        result.cancelled = True
        result.outputs = [_mark_partial(o) for o in exc.partial]
    result.progress_after_cancel = ctx.progress_after_cancel
    return result


def _mark_partial(output: Output) -> Output:
    output.partial = True
    return output
