"""``studiolo explore grid GENERATOR --axis NAME=VALUES [--axis …] [--param K=V …] [--model REF] [--seed N] [--yes]
--output PATH``: an X/Y/Z grid, headless.

Every cell is one job through the engine (saved to the library like any job). The grid is written to ``--output``:
a labelled PNG for image generators, a Markdown table for text (excerpts) and audio (the saved files' paths); both
record the grid so it can be run again (:mod:`desktop.explore.export`): ``studiolo explore grid --from FILE --output
PATH`` runs a saved grid again (``--model``/``--seed`` replace its own). Exit status: 0 every cell done, 1 a cell
failed (the grid is written, the cell marked failed) or the grid could not be written, 2 a usage error (bad axis
or parameter, more than :data:`~desktop.explore.grid.CONFIRM_JOBS` cells without ``--yes``, an output of the wrong
kind), all before any job; 130 cancelled with Ctrl+C (the cells not ended are cancelled; no grid is written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop.cli.generate_cmd import EXIT_CANCELLED, EXIT_FAILED, EXIT_USAGE, _checked_utf8, _error
from desktop.cli.interrupt import RunCtrlC

_app = None  # the QCoreApplication lives as long as the process
_SUFFIX = {"image": ".png", "text": ".md", "audio": ".md"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("explore", help="explore a generator: grids over its parameters, interpolations",
                                 description="Explore a generator: X/Y/Z grids over its parameters, and "
                                             "interpolations between seeds and prompts.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = sub.add_parser("grid", help="run a grid of jobs over up to three parameters and save it as one file",
                       description="Run one job per combination of the axes' values (x fastest, then y, then z) "
                                   "and save the grid as one file: a labelled PNG for images, a Markdown table for "
                                   "text and audio.")
    p.add_argument("generator_id", metavar="GENERATOR", nargs="?",
                   help="e.g. text.markov (`studiolo plugins list`); with --from, the saved grid's")
    p.add_argument("--from", dest="from_file", type=Path, metavar="FILE",
                   help="run a saved grid again (a grid .png, .md or .html file): its generator, axes, params, "
                        "model and seed (--model and --seed replace its own)")
    p.add_argument("--axis", "-a", action="append", default=[], metavar="NAME=VALUES",
                   help="an axis (repeat for y and z): a parameter, seed or model, and its values: 4,8,16 or "
                        "'a|b|c' or 1-10 or '1-10 (+2)' or '0.5-1.5 [5]'")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter every cell shares (repeatable)")
    p.add_argument("--model", metavar="REF", help="the model of every cell (default: the generator's)")
    p.add_argument("--seed", type=int, default=None, help="the seed of every cell (default: one random seed)")
    p.add_argument("--yes", "-y", action="store_true", help="run a grid of more than 100 jobs without refusing")
    p.add_argument("--spread", metavar="SERVERS",
                   help="run the cells on these remote servers at once (comma-separated names, or 'all'), as "
                        "`batch --spread` does; the cells' models must be remote (remote://SERVER/MODEL-ID)")
    p.add_argument("--output", "-o", type=Path, metavar="PATH", required=True,
                   help="where to write the grid: .png for image generators, .md for text and audio")
    p.set_defaults(handler=grid)
    from desktop.cli import interpolate_cmd

    interpolate_cmd.add_parser(sub)


def grid(args: argparse.Namespace) -> int:
    from desktop.api import ParamError
    from desktop.api.errors import PluginError, StudioloError
    from desktop.api.params import parse_assignments, to_json
    from desktop.destinations import WriteError, check_destination
    from desktop.explore.axes import parse_axis
    from desktop.explore.grid import CONFIRM_JOBS, GridSpec, expand, job_count, needs_confirmation
    from desktop.models.modelless import check_model_choice
    from desktop.plugins import PluginManager

    record = None
    if args.from_file is not None:  # a saved grid, run as it was
        from desktop.explore.export import read_grid_record

        if args.axis or args.param:
            print("studiolo: error: --from runs a saved grid as it was saved: give no --axis or --param with it",
                  file=sys.stderr)
            return EXIT_USAGE
        try:
            record = read_grid_record(args.from_file)
        except StudioloError as exc:
            return _error(exc, EXIT_USAGE)
    elif not args.generator_id or not args.axis:
        print("studiolo: error: name a GENERATOR and at least one --axis NAME=VALUES, or a saved grid with --from "
              "FILE", file=sys.stderr)
        return EXIT_USAGE
    plugins = PluginManager().load()
    try:
        generator = plugins.generator(args.generator_id or record["generator"])
    except PluginError as exc:
        return _error(exc, EXIT_USAGE)
    try:  # everything that can be refused is refused before any job runs
        check_model_choice(generator, args.model)
        if record is not None:
            spec = _saved_spec(record, generator, args)
        else:
            axes = tuple(parse_axis(generator, *_split_axis(text)) for text in _checked_utf8(args.axis))
            params = parse_assignments(generator.Params, _checked_utf8(args.param))
            spec = GridSpec(generator.id, axes, to_json(params), args.model, args.seed)
        cells = expand(spec, generator)  # every cell allowed (named otherwise)
        spread = _spread(args, cells)
        _check_output(args.output, generator.kind)
        check_destination(args.output)
    except (ParamError, WriteError, StudioloError) as exc:
        return _error(exc, EXIT_USAGE)
    if needs_confirmation(spec) and not args.yes:
        print(f"studiolo: error: this grid has {job_count(spec)} jobs (more than {CONFIRM_JOBS}); add --yes to run "
              "it anyway, or use fewer values on its axes", file=sys.stderr)
        return EXIT_USAGE
    return _run(plugins, generator, spec, args, spread)


def _spread(args: argparse.Namespace, cells: list):
    """The :class:`~desktop.remote.spread.Spread` of ``--spread`` (None without it); a ParamError for servers that
    are not configured or a cell whose model is not remote."""
    if not args.spread:
        return None
    from desktop.api import remote_servers
    from desktop.remote.spread import spread_from_names

    return spread_from_names(args.spread, remote_servers(), [cell.model for cell in cells])


def _saved_spec(record, generator, args):
    """The saved grid ``record`` for ``generator``, with the model and seed given on the command line."""
    from dataclasses import replace

    from desktop.explore.export import spec_from_record

    spec = spec_from_record(record, generator)
    if args.model is not None:
        spec = replace(spec, model=args.model)
    if args.seed is not None:
        spec = replace(spec, seed=args.seed)
    return spec


def _split_axis(text: str) -> tuple[str, str]:
    from desktop.api import ParamError

    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise ParamError("--axis", text, "expected NAME=VALUES, e.g. steps=4,8,16",
                         hint="Name a parameter (or seed or model) and its values: --axis steps=4,8,16")
    return name.strip(), values


def _check_output(target: Path, kind: str) -> None:
    from desktop.cli.output_copy import OutputFormatError

    suffix = _SUFFIX.get(kind)
    if suffix is None:
        raise OutputFormatError(f"A grid of {kind} outputs cannot be saved as one file.")
    if target.suffix.lower() != suffix:
        raise OutputFormatError(f"A grid of {kind} outputs is written as a {suffix} file, not {target.name!r}.",
                                hint=f"Give --output a name ending in {suffix}.")


def _run(plugins, generator, spec, args, spread=None) -> int:
    from desktop.explore.run import GridRun

    return run_cells(plugins, generator, "grid", lambda engine: GridRun(engine, spec, generator, spread=spread),
                     lambda index: f"cell {index}",
                     lambda run, pressed: _finish(run, generator, spec, args, pressed))


def run_cells(plugins, generator, what: str, make_run, cell_name, finish) -> int:
    """Run the jobs of a grid-like run (``make_run(engine)``: a GridRun, or an InterpolationRun) on an engine of
    this process, with a progress bar named ``what``, each failed cell said (``cell_name(index)``), Ctrl+C
    cancelling the cells not ended (a second one hard); ``finish(run, ctrl_c_pressed)`` writes the result and gives
    the exit status. A ParamError from ``make_run`` is a usage error (exit 2)."""
    from PySide6.QtCore import QCoreApplication

    from desktop.api import ParamError
    from desktop.cli.progress import ProgressBar
    from desktop.engine.engine import Engine

    global _app
    app = _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins)
    bar = ProgressBar(f"{generator.id} {what}")
    code = EXIT_FAILED
    try:
        with RunCtrlC(engine, "the grid", before_message=bar.finish) as ctrl_c:
            run = make_run(engine)
            ctrl_c.follow_run(run, generator.id)
            run.progressed.connect(lambda done, total: bar.update(done, total))
            run.cell_failed.connect(lambda index, _id, message: (bar.finish(), print(
                f"\n{cell_name(index)}: failed: {message}", file=sys.stderr)))
            if hasattr(run, "cell_retried"):  # a grid spread over servers
                run.cell_retried.connect(lambda index, server, message: (bar.finish(), print(
                    f"\n{cell_name(index)}: {server} went away ({message.splitlines()[0]}); running it on another "
                    "server", file=sys.stderr)))
            run.finished.connect(app.quit)
            bar.update(0, run.total)
            app.exec()
        bar.finish()
        code = finish(run, ctrl_c.pressed)
    except ParamError as exc:
        code = _error(exc, EXIT_USAGE)
    finally:
        stopped = engine.shutdown(timeout=10)
    if not stopped:
        from desktop.exiting import exit_now

        exit_now(code)
    return code


def _finish(run, generator, spec, args, cancelled: bool) -> int:
    from desktop.api.errors import StudioloError
    from desktop.destinations import write_file

    if cancelled or run.cancelled:
        print(f"studiolo: grid cancelled ({len(run.results)} of {run.total} cells done and saved to the library; "
              "no grid written)", file=sys.stderr)
        return EXIT_CANCELLED
    data = _grid_bytes(run, generator, spec)
    try:
        write_file(args.output, data)
    except StudioloError as exc:
        return _error(exc, EXIT_FAILED)
    print(f"grid written to {args.output} ({len(run.results)} of {run.total} cells done)", file=sys.stderr)
    return 0 if not run.errors else EXIT_FAILED


def _grid_bytes(run, generator, spec) -> bytes:
    from desktop.explore.export import excerpt, grid_markdown, grid_png, paths_text

    if generator.kind == "image":
        images = {}
        for index, outputs in run.results.items():
            image = next((o.image for o in outputs if getattr(o, "image", None) is not None), None)
            if image is None and run.saved.get(index):
                from PIL import Image

                with Image.open(run.saved[index][0]) as opened:
                    image = opened.copy()
            if image is not None:
                images[index] = image
        return grid_png(spec, run.cells, images)
    if generator.kind == "text":
        contents = {index: excerpt(" ".join(getattr(o, "text", "") for o in outputs))
                    for index, outputs in run.results.items()}
    else:
        contents = {index: paths_text(paths) for index, paths in run.saved.items()}
    return grid_markdown(spec, run.cells, contents).encode("utf-8")
