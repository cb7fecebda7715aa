"""``studiolo train GENERATOR_ID --out NAME [--kind KIND] [--PARAM VALUE …]``: fine-tune a model, headless.

Any parameter of the training can be given as ``--NAME VALUE`` (``--images DIR --trigger sks --steps 400``; a list
parameter repeated appends) or ``-p NAME=VALUE``; ``-p help`` lists them. The run's checkpoints and log live in the
data folder (``training/GENERATOR_ID/NAME``); ``--resume`` continues a run that was paused, cancelled or killed from
its latest checkpoint (with its own parameters, base model and seed; parameters given then change those), and
``--restart`` discards it and starts over. Ctrl+C pauses (a checkpoint after the current step, then stop); a second
Ctrl+C stops at once (the last checkpoint is kept).

Progress (step, loss) goes to stderr; at the end the trained model's name, as the model manager and ``--param``
take it. Exit status: 0 trained, 1 failed, 2 a usage error, 130 paused or cancelled (the command to resume is
printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from desktop.cli.generate_cmd import EXIT_CANCELLED, EXIT_FAILED, EXIT_USAGE, _checked_utf8, _error

_app = None


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train", help="fine-tune a model on your own pictures or writing (a LoRA)",
        description="Fine-tune a generator's model on your own data; the result is added to the model store. "
                    "Any training parameter can be given as --NAME VALUE (e.g. --images DIR --trigger WORD "
                    "--steps N); `-p help` lists them.")
    p.add_argument("generator_id", metavar="GENERATOR_ID", help="e.g. image.diffusers or text.transformers")
    p.add_argument("--out", required=True, metavar="NAME", help="the trained model's name (letters, digits, . - _)")
    p.add_argument("--kind", help="what to train (default: the generator's first kind, e.g. lora)")
    p.add_argument("--model", metavar="REF", help="the base model (default: the generator's default model)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a training parameter (repeatable); `-p help` lists them")
    p.add_argument("--seed", type=int, default=None, help="seed (default: random; recorded for --resume)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: from Settings)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run named --out from its last checkpoint")
    again.add_argument("--restart", action="store_true", help="discard a stopped run named --out and start over")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(handler=train, accepts_extra=True)


def extra_assignments(extra: list[str]) -> list[str]:
    """``--NAME VALUE`` / ``--NAME=VALUE`` pairs left over by argparse, as ``NAME=VALUE`` assignments;
    ``ParamError`` for anything else."""
    from desktop.api import ParamError

    out, i = [], 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or len(token) < 3:
            raise ParamError("argument", token, "expected --NAME VALUE for a training parameter")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                raise ParamError(name, "", "a value is needed (--NAME VALUE)")
            value, i = extra[i + 1], i + 1
        out.append(f"{name.replace('-', '_')}={value}")
        i += 1
    return out


def train(args: argparse.Namespace) -> int:
    from desktop.api import ParamError, from_json
    from desktop.api.errors import PluginError
    from desktop.api.params import parse_assignments
    from desktop.cli.generate_cmd import _param_help
    from desktop.engine.devices import DeviceError, check_device
    from desktop.engine.train_job import read_run_record, training_kind
    from desktop.engine.training import run_dir
    from desktop.plugins import PluginManager

    plugins = PluginManager().load()
    try:
        generator = plugins.generator(args.generator_id)
    except PluginError as exc:
        return _error(exc, EXIT_USAGE)
    kinds = tuple(getattr(generator, "training_kinds", ()) or ())
    if not kinds:
        print(f"studiolo: error: {generator.name} ({generator.id}) cannot be trained.", file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = training_kind(generator, args.kind or kinds[0].id)
        if args.param == ["help"]:
            print(_param_help(_Described(generator.id, spec.Params)))
            return 0
        assignments = _checked_utf8([*args.param, *extra_assignments(getattr(args, "extra", []))])
        params: Any = None
        if args.resume:
            recorded = read_run_record(run_dir(generator.id, args.out))
            if recorded is not None and assignments:
                params = parse_assignments(spec.Params, assignments, base=from_json(spec.Params, recorded["params"]))
        if params is None and (assignments or not args.resume):
            params = parse_assignments(spec.Params, assignments)
        if args.device:
            plugins.settings.device = check_device(args.device)
    except (ParamError, DeviceError) as exc:
        return _error(exc, EXIT_USAGE)
    return _run(plugins, generator, spec, params, args)


class _Described:
    """What ``_param_help`` reads from a generator, for a training kind's params."""

    def __init__(self, generator_id: str, params: type) -> None:
        self.id, self.Params = f"{generator_id} (training)", params


def _run(plugins: Any, generator: Any, spec: Any, params: Any, args: argparse.Namespace) -> int:
    from PySide6.QtCore import QCoreApplication

    from desktop.api import ParamError
    from desktop.cli.interrupt import TrainCtrlC
    from desktop.cli.progress import ProgressBar
    from desktop.engine.engine import Engine

    global _app
    app = _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins)
    bar = ProgressBar(f"{generator.id} {spec.id}")
    outcome: dict = {}

    def ended(state: str, message: str = "") -> None:
        outcome["state"], outcome["message"] = state, message
        app.quit()

    engine.job_progressed.connect(lambda _id, done, total, message: bar.update(done, total or None, message))
    engine.job_warned.connect(lambda _id, message: (bar.finish(), print(f"note: {message}", file=sys.stderr)))
    engine.job_finished.connect(lambda _id, _outputs: ended("done"))
    engine.job_failed.connect(lambda _id, message: ended("failed", message))
    engine.job_cancelled.connect(lambda _id, _partial: ended("cancelled"))
    code = EXIT_FAILED
    try:
        with TrainCtrlC(engine, before_message=bar.finish) as ctrl_c:
            job = engine.submit_training(generator.id, spec.id, params, name=args.out, model=args.model,
                                         seed=args.seed, resume=args.resume, restart=args.restart)
            ctrl_c.follow(job.id, generator.id)
            app.exec()
        bar.finish()
        code = _finish(generator, spec, job, outcome, args)
    except ParamError as exc:
        code = _error(exc, EXIT_USAGE)
    finally:
        stopped = engine.shutdown(timeout=10)
    if not stopped:
        from desktop.exiting import exit_now

        exit_now(code)
    return code


def _finish(generator: Any, spec: Any, job: Any, outcome: dict, args: argparse.Namespace) -> int:
    from desktop.engine.training import latest_checkpoint, run_dir

    state, request = outcome.get("state", "failed"), job.training
    work_dir = run_dir(generator.id, args.out)
    checkpoint = latest_checkpoint(work_dir)
    summary = {"state": "paused" if request.paused else state, "name": args.out, "model": request.result,
               "run_folder": str(work_dir), "checkpoint_step": checkpoint[0] if checkpoint else None,
               "estimate": request.estimate, "seed": job.seed, "error": outcome.get("message") or None}
    if args.json:
        print(json.dumps(summary, indent=2))
    if state == "done":
        if not args.json:
            print(f"trained {request.result} ({generator.id}+{spec.result_kind}, seed {job.seed}): pick it in "
                  f"{generator.name}'s panel, or pass it by name", file=sys.stderr)
            print(request.result)
        return 0
    if state == "failed":
        print(f"studiolo: error: {outcome.get('message')}", file=sys.stderr)
        if checkpoint:
            print(f"The run's checkpoints are kept in {work_dir}; once fixed, continue with --resume.",
                  file=sys.stderr)
        return EXIT_FAILED
    said = "paused" if request.paused else "cancelled"
    where = f"at the checkpoint of step {checkpoint[0]}" if checkpoint else "from the beginning (no checkpoint yet)"
    print(f"Training {said}. Continue it {where} with:\n  studiolo train {generator.id} --kind {spec.id} "
          f"--out {args.out} --resume", file=sys.stderr)
    return EXIT_CANCELLED
