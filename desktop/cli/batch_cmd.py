"""``studiolo batch GENERATOR (--prompts FILE | --template TEXT | --inputs DIR) --out DIR [options]``: a batch of
jobs written as a dataset, headless.

Every item is one job through the engine (saved to the library like any job); its outputs go into the dataset in
``--out`` (see docs/batch.md), and each finished item is recorded in the run journal (``OUT/.studiolo-batch/``), so
that ``--resume`` after a crash, a kill or Ctrl+C runs only what is missing. Exit status: 0 every item done, 1 an
item failed or a write failed (a full disk: the batch stops, the dataset lists exactly what is complete), 2 a usage
error (bad input row or parameter, an output folder that is not empty without ``--resume`` or ``--force``), all
before any job; 130 cancelled with Ctrl+C (the items written stay; ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from desktop.batch.setup import DEFAULT_TEMPLATE_COUNT  # light (no Qt, no torch): the help text names it
from desktop.cli.generate_cmd import EXIT_CANCELLED, EXIT_FAILED, EXIT_USAGE, _checked_utf8, _error
from desktop.cli.interrupt import RunCtrlC

_app = None  # the QCoreApplication lives as long as the process
SEED_MODES = ("fixed", "sequential", "random")


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "batch", help="run a batch of jobs (prompt list, template, folder) and write them as a dataset",
        description="Run one job per prompt (a prompt list, a template with wildcards, or a folder of input files) "
                    "and write the outputs as a dataset the Hugging Face datasets library loads with no code. "
                    "A batch interrupted (Ctrl+C, a crash) continues with --resume.")
    p.add_argument("generator_id", metavar="GENERATOR", help="e.g. text.markov (`studiolo plugins list`)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompts", type=Path, metavar="FILE",
                        help="a prompt list: plain lines (A1111 options like --seed N accepted), .csv or .jsonl "
                             "with per-row params, seed and model")
    source.add_argument("--template", metavar="TEXT",
                        help="a prompt template with wildcards (__name__) and variants ({a|b|c}), dynamicprompts "
                             "syntax")
    source.add_argument("--inputs", type=Path, metavar="DIR",
                        help="a folder of input files: images (image-to-image variations) or texts")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help=f"template: how many prompts (default {DEFAULT_TEMPLATE_COUNT}; with --combinatorial, 0 "
                        "= every combination); prompt list or folder: only the first N rows")
    p.add_argument("--variations", type=int, default=1, metavar="N", help="items per row (default 1)")
    p.add_argument("--seed", type=int, default=None, help="the base seed (default: one random seed, recorded)")
    p.add_argument("--seed-mode", choices=SEED_MODES, default="sequential",
                   help="fixed: every item the base seed; sequential: base seed + item number (default); random: "
                        "a random seed per item, recorded")
    p.add_argument("--wildcards", type=Path, metavar="DIR", help="the folder of wildcard files (NAME.txt)")
    p.add_argument("--combinatorial", action="store_true", help="template: every combination, not random draws")
    p.add_argument("--strength", metavar="A-B", help="image inputs: img2img strength, spread from A to B over the "
                                                      "variations (e.g. 0.3-0.7)")
    p.add_argument("--flip", action="store_true", help="image inputs: flip every other variation first")
    p.add_argument("--crop", type=float, default=0.0, metavar="F",
                   help="image inputs: crop up to this fraction first (e.g. 0.1)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter every item shares (repeatable; a row's own values win)")
    p.add_argument("--model", metavar="REF", help="the model of every item (default: the generator's)")
    p.add_argument("--spread", metavar="SERVERS",
                   help="run the items on these remote servers at once (comma-separated names, or 'all'), each "
                        "taking as many as its concurrency; an item whose server goes away runs on another. Needs "
                        "a remote model: --model remote://SERVER/MODEL-ID (the server part is chosen item by item)")
    p.add_argument("--out", "-o", type=Path, metavar="DIR", required=True, help="the dataset folder to write")
    p.add_argument("--format", dest="fmt", default=None, metavar="FORMAT",
                   help="imagefolder, audiofolder, jsonl or parquet (default: by the generator's kind)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the batch written in --out (its items done are kept)")
    again.add_argument("--force", action="store_true", help="replace what --out holds")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="run the good rows of a prompt list with bad rows (each bad row is said)")
    p.set_defaults(handler=batch)


def batch(args: argparse.Namespace) -> int:
    from desktop.api import ParamError
    from desktop.api.errors import PluginError, StudioloError
    from desktop.batch.journal import Journal
    from desktop.plugins import PluginManager

    plugins = PluginManager().load()
    try:
        generator = plugins.generator(args.generator_id)
    except PluginError as exc:
        return _error(exc, EXIT_USAGE)
    resuming = args.resume and Journal(args.out).exists()
    if not resuming and args.prompts is None and args.template is None and args.inputs is None:
        print("studiolo: error: give the batch's input: --prompts FILE, --template TEXT or --inputs DIR",
              file=sys.stderr)
        return EXIT_USAGE
    try:  # everything that can be refused is refused before any job runs
        plan = None if resuming else _plan(generator, args)
        spread = _spread(plan, args) if plan is not None else None  # before the output folder is touched
        opened = _open(plan, generator, args)
        if plan is None:  # resumed: the plan is the journal's
            spread = _spread(opened.plan, args)
    except (ParamError, StudioloError) as exc:
        return _error(exc, EXIT_USAGE)
    if opened.plan.generator_id != generator.id:
        print(f"studiolo: error: the batch in {args.out} was made with {opened.plan.generator_id}, not "
              f"{generator.id}", file=sys.stderr)
        return EXIT_USAGE
    if opened.resumed:
        print(f"resuming: {len(opened.done)} of {len(opened.plan.items)} items already done", file=sys.stderr)
    return _run(plugins, generator, opened, args, spread)


def _plan(generator, args):
    """The batch's plan from the command line (every row and item checked): the Batch window's set-up code
    (:mod:`desktop.batch.setup`) given the arguments."""
    from desktop.api.params import parse_assignments, to_json
    from desktop.batch.setup import BatchRequest, request_plan
    from desktop.models.modelless import check_model_choice

    check_model_choice(generator, args.model)
    base = to_json(parse_assignments(generator.Params, _checked_utf8(args.param)))
    source = "prompts" if args.prompts is not None else "template" if args.template is not None else "inputs"
    request = BatchRequest(source, prompts=args.prompts, template=args.template, inputs=args.inputs,
                           count=args.count, variations=args.variations, seed=args.seed, seed_mode=args.seed_mode,
                           wildcards=args.wildcards, combinatorial=args.combinatorial,
                           strength=_strength(args.strength), flip=args.flip, crop=args.crop, params=base,
                           model=args.model, skip_bad_rows=args.skip_bad_rows, extra={"command": _command_line()})
    plan, bad = request_plan(generator, request, args.out)
    for error in bad:
        print(f"studiolo: skipping a bad row: {error.message}", file=sys.stderr)
    return plan


def _strength(text: str | None) -> tuple[float, float] | None:
    from desktop.api import ParamError

    if text is None:
        return None
    low, sep, high = text.partition("-")
    try:
        pair = (float(low), float(high if sep else low))
    except ValueError:
        raise ParamError("--strength", text, "expected A-B, e.g. 0.3-0.7, or one number",
                         hint="Give the img2img strength range: --strength 0.3-0.7") from None
    if not all(0.0 <= v <= 1.0 for v in pair):
        raise ParamError("--strength", text, "must be between 0 and 1")
    return pair


def _open(plan, generator, args):
    from desktop.batch.dataset import default_format
    from desktop.batch.run import open_batch

    fmt = args.fmt or default_format(generator.kind)
    return open_batch(args.out, plan, fmt=fmt, card={"command": _command_line()}, resume=args.resume,
                      force=args.force)


def _command_line() -> str:
    return shlex.join(["studiolo", *sys.argv[1:]])


def _run(plugins, generator, opened, args, spread=None) -> int:
    from PySide6.QtCore import QCoreApplication

    from desktop.api import ParamError
    from desktop.batch.run import BatchRun
    from desktop.cli.progress import ProgressBar
    from desktop.engine.engine import Engine

    global _app
    app = _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins)
    bar = ProgressBar(f"{generator.id} batch")
    code = EXIT_FAILED
    try:
        with RunCtrlC(engine, "the batch", before_message=bar.finish) as ctrl_c:
            run = BatchRun(engine, opened, generator, spread=spread)
            ctrl_c.follow_run(run, generator.id)
            run.progressed.connect(lambda done, total: bar.update(done, total))
            run.item_failed.connect(lambda index, message: (bar.finish(), print(
                f"\nitem {index}: failed: {message}", file=sys.stderr)))
            run.item_retried.connect(lambda index, server, message: (bar.finish(), print(
                f"\nitem {index}: {server} went away ({message.splitlines()[0]}); running it on another server",
                file=sys.stderr)))
            run.stopped.connect(lambda message: (bar.finish(), print(f"\nstudiolo: error: {message}",
                                                                     file=sys.stderr)))
            run.finished.connect(app.quit)
            run.start()
            if not run.is_finished:
                app.exec()
        bar.finish()
        code = _finish(run, args, ctrl_c.pressed)
    except ParamError as exc:
        code = _error(exc, EXIT_USAGE)
    finally:
        stopped = engine.shutdown(timeout=10)
    if not stopped:
        from desktop.exiting import exit_now

        exit_now(code)
    return code


def _spread(plan, args):
    """The :class:`~desktop.remote.spread.Spread` of ``--spread`` (None without it); a ParamError (a usage error)
    for servers that are not configured or items whose model is not remote."""
    if not args.spread:
        return None
    from desktop.api import remote_servers
    from desktop.remote.spread import spread_from_names

    return spread_from_names(args.spread, remote_servers(), [item.model for item in plan.items])


def _finish(run, args, cancelled: bool) -> int:
    done, total = len(run.done), run.total
    if run.error is not None:
        print(f"studiolo: batch stopped: {done} of {total} items complete in {args.out}", file=sys.stderr)
        return EXIT_FAILED
    if cancelled or run.cancelled:
        print(f"studiolo: batch cancelled ({done} of {total} items complete in {args.out}; --resume continues it)",
              file=sys.stderr)
        return EXIT_CANCELLED
    print(f"dataset written to {args.out} ({done} of {total} items)", file=sys.stderr)
    return 0 if not run.errors else EXIT_FAILED
