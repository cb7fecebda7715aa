"""What a batch is asked to be — its input, count, variations, seeds, shared params — turned into rows and a plan.

One :class:`BatchRequest` is what the ``studiolo batch`` command line and the Batch window both describe;
:func:`request_rows` reads or expands its input (a prompt list, a template, a folder of inputs) and
:func:`request_plan` makes the plan from those rows (every item checked). The window also uses
:func:`preview_lines` to show the first prompts before anything runs. Nothing here imports Qt or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api.errors import ParamError

__all__ = ["BatchRequest", "DEFAULT_TEMPLATE_COUNT", "SOURCES", "preview_lines", "request_plan", "request_rows"]

SOURCES = ("prompts", "template", "inputs")
DEFAULT_TEMPLATE_COUNT = 10
"""How many prompts a template makes when no count is given."""


@dataclass
class BatchRequest:
    """A batch as asked for. ``source`` says which input is used: ``prompts`` (a list file), ``template`` (text,
    with ``wildcards`` and ``combinatorial``) or ``inputs`` (a folder; ``strength``, ``flip``, ``crop`` for
    pictures). ``count``: a template's number of prompts (None: :data:`DEFAULT_TEMPLATE_COUNT`; 0 with
    ``combinatorial``: every combination), a list's or folder's first rows (None or 0: all). ``seed`` None: drawn
    (``template_seed`` None too: the template's draws are seeded from a new random seed, recorded). ``params``:
    JSON values every item shares (a row's own win)."""

    source: str
    prompts: Path | None = None
    template: str | None = None
    inputs: Path | None = None
    count: int | None = None
    variations: int = 1
    seed: int | None = None
    seed_mode: str = "sequential"
    wildcards: Path | None = None
    combinatorial: bool = False
    strength: tuple[float, float] | None = None
    flip: bool = False
    crop: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    skip_bad_rows: bool = False
    template_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more of how it was made, for the card (the command)


def request_rows(generator: Any, request: BatchRequest) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """The rows ``request`` asks for, the bad rows skipped (a prompt list's, with ``skip_bad_rows``; otherwise the
    first bad row is raised) and the ``source`` description for the plan. Raises
    :class:`~desktop.batch.inputs.BatchInputError` / :class:`~desktop.api.ParamError`."""
    from desktop.batch.inputs import BatchRow, expand_template, folder_rows, read_prompts

    if request.source not in SOURCES:
        raise ParamError("input", request.source, "one of " + ", ".join(SOURCES))
    if request.variations < 1:
        raise ParamError("variations", request.variations, "must be 1 or more")
    if request.count is not None and request.count < 0:
        raise ParamError("count", request.count, "must be 0 or more")
    source: dict[str, Any] = {**request.extra, "params": dict(request.params)}
    bad: list[Any] = []
    if request.source == "prompts":
        if request.prompts is None:
            raise ParamError("prompts", "", "no prompt list is chosen", hint="Choose a prompt list file.")
        rows, bad = read_prompts(Path(request.prompts), generator.Params, skip_bad=request.skip_bad_rows)
        source.update(prompts=str(request.prompts), skipped_rows=[e.row for e in bad])
    elif request.source == "template":
        from desktop.engine.jobs import choose_seed

        count = DEFAULT_TEMPLATE_COUNT if request.count is None else request.count
        seed = request.template_seed
        if seed is None:
            seed = request.seed if request.seed is not None and request.seed >= 0 else choose_seed(None)
        prompts = expand_template(request.template or "", count=count, combinatorial=request.combinatorial,
                                  wildcards=request.wildcards, seed=seed)
        rows = [BatchRow(number, prompt, {}) for number, prompt in enumerate(prompts, start=1)]
        source.update(template=request.template, combinatorial=request.combinatorial, template_seed=seed,
                      wildcards=str(request.wildcards) if request.wildcards else None)
    else:
        if request.inputs is None:
            raise ParamError("inputs", "", "no folder of inputs is chosen", hint="Choose a folder of input files.")
        rows = folder_rows(Path(request.inputs), generator)
        source.update(inputs=str(request.inputs))
    if request.count and request.source != "template":
        rows = rows[:request.count]
    if not rows:
        raise ParamError("input", "", "holds no rows to run", hint="Give a prompt list, template or folder with at "
                                                                   "least one prompt or file.")
    return rows, bad, source


def request_plan(generator: Any, request: BatchRequest, out: Path | None) -> tuple[Any, list[Any]]:
    """The plan of ``request`` (every item checked; flipped or cropped pictures written under ``out``'s
    ``.studiolo-batch/inputs``) and the bad rows skipped."""
    from desktop.batch.plan import make_plan

    rows, bad, source = request_rows(generator, request)
    from desktop.batch.journal import Journal

    work_dir = Journal(Path(out)).inputs_dir if out is not None else None
    plan = make_plan(generator, rows, base_params=request.params, model=request.model, seed_mode=request.seed_mode,
                     seed=request.seed, variations=request.variations, strength=request.strength,
                     flip=request.flip, crop=request.crop, work_dir=work_dir, source=source)
    return plan, bad


def preview_lines(rows: list[Any], limit: int = 10) -> list[str]:
    """The first ``limit`` rows as a person reads them: the prompt, or the input file's name (a picture to start
    from), or the shared prompt (a row that brings none)."""
    lines = []
    for row in rows[:limit]:
        if row.prompt is not None:
            text = row.prompt
        elif row.source is not None:
            text = f"{Path(row.source).name} (image-to-image)"
        else:
            text = "(the page's prompt)"
        extras = [f"{k}={v}" for k, v in row.params.items()]
        if row.seed is not None:
            extras.append(f"seed={row.seed}")
        if row.model:
            extras.append(f"model={row.model}")
        lines.append(f"{row.number}: {text}" + (f"  [{', '.join(extras)}]" if extras else ""))
    return lines
