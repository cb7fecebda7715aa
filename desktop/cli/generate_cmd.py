"""``studiolo generate GENERATOR_ID [--model REF] [--param k=v …] [--seed N] [--output PATH]``: one job, headless.

Runs the same engine the window uses, with a Qt event loop but no window. Progress goes to stderr; the text of
text outputs to stdout, and the path of every saved output to stderr. Exit status: 0 done, 1 the job failed (or
its copy could not be written; the library keeps the output), 2 a usage error (unknown generator, invalid
parameter or device, a ``--model`` for a generator that uses no model, an ``--output`` that cannot be written),
130 cancelled with Ctrl+C (see :mod:`desktop.cli.interrupt`). The copy made with ``--output`` is written by
:mod:`desktop.cli.output_copy`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130
_app = None  # the QCoreApplication lives as long as the process


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("generate", help="run one job without the window",
                            description="Run one job without the window; the output is saved to the library.")
    p.add_argument("generator_id", metavar="GENERATOR_ID", help="e.g. text.markov (`studiolo plugins list`)")
    p.add_argument("--model", metavar="REF", help="hub repo id, local folder or file, or 'demo' "
                                                  "(default: the generator's default model; refused for a "
                                                  "generator that uses no model)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter (repeatable); `--param help` lists them")
    p.add_argument("--seed", type=int, default=None, help="seed (default: random; the seed used is printed)")
    p.add_argument("--output", "-o", type=Path, metavar="PATH",
                   help="also copy the output(s) here: a folder, or a file name whose extension picks the format "
                        "(.txt/.md, .png/.jpg/.webp, .wav/.flac/.ogg)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: from Settings)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout instead")
    p.add_argument("--verbose", dest="show_library_output", action="store_true", default=argparse.SUPPRESS,
                   help="also show the libraries' warnings and progress bars (otherwise only in the log)")
    p.set_defaults(handler=generate)


def _param_help(generator) -> str:
    from desktop.api import schema

    lines = [f"Parameters of {generator.id}:"]
    for f in schema(generator.Params):
        kind = f"list of {f.item_kind}" if f.kind == "list" else f.kind
        allowed = f" one of {', '.join(map(str, f.spec.choices))}" if f.spec.choices else ""
        if f.spec.min is not None or f.spec.max is not None:
            allowed += f" from {f.spec.min if f.spec.min is not None else '…'} to " \
                       f"{f.spec.max if f.spec.max is not None else '…'}"
        lines.append(f"  {f.name} ({kind}{',' + allowed if allowed else ''}; default {f.default!r})"
                     + (f": {f.spec.help}" if f.spec.help else ""))
    return "\n".join(lines)


def generate(args: argparse.Namespace) -> int:
    from desktop.api import ParamError
    from desktop.api.errors import PluginError
    from desktop.api.params import parse_assignments
    from desktop.cli.output_copy import OutputFormatError, check_output
    from desktop.destinations import WriteError
    from desktop.engine.devices import DeviceError, check_device
    from desktop.models.modelless import check_model_choice
    from desktop.plugins import PluginManager

    plugins = PluginManager().load()
    try:
        generator = plugins.generator(args.generator_id)
    except PluginError as exc:
        return _error(exc, EXIT_USAGE)
    if args.param == ["help"]:
        print(_param_help(generator))
        return 0
    try:  # everything that can be refused is refused before the job runs
        check_model_choice(generator, args.model)  # --model for a generator that uses no model
        params = parse_assignments(generator.Params, _checked_utf8(args.param))
        if args.device:
            plugins.settings.device = check_device(args.device)
        if args.output:
            check_output(args.output, generator.kind)
    except (ParamError, DeviceError, OutputFormatError, WriteError) as exc:
        return _error(exc, EXIT_USAGE)
    return _run(plugins, generator, params, args)


def _checked_utf8(assignments: list[str]) -> list[str]:
    """``assignments`` as given, or :class:`ParamError` naming the first one that is not valid UTF-8 (Python
    hands undecodable bytes of the command line over as lone surrogates, which no file or database can hold)."""
    from desktop.api import ParamError

    for assignment in assignments:
        if _is_utf8(assignment):
            continue
        name, _, value = assignment.partition("=")
        if not _is_utf8(name):
            name, value = "--param", assignment
        raise ParamError(name.strip(), os.fsencode(value), "not valid UTF-8 text",
                         hint="Give the text in UTF-8 (check the encoding of your terminal or script).")
    return assignments


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _error(exc, code: int) -> int:
    print(f"studiolo: error: {exc.message}" + (f"\n{exc.hint}" if exc.hint else ""), file=sys.stderr)
    return code


def _run(plugins, generator, params, args) -> int:
    from PySide6.QtCore import QCoreApplication

    from desktop.api import ParamError
    from desktop.cli.interrupt import CtrlC
    from desktop.cli.progress import ProgressBar
    from desktop.engine.engine import Engine

    global _app
    app = _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins)  # its worker processes start with the job, and end with engine.shutdown below
    bar = ProgressBar(generator.id)
    outcome: dict = {}

    def ended(state: str, outputs: list | None = None) -> None:
        outcome["state"], outcome["outputs"] = state, list(outputs or [])  # the engine drops them once saved
        app.quit()

    engine.job_progressed.connect(lambda _id, done, total, message: bar.update(done, total or None, message))
    engine.job_warned.connect(lambda _id, message: print(f"\nnote: {message}", file=sys.stderr))
    engine.job_finished.connect(lambda _id, outputs: ended("done", outputs))
    engine.job_failed.connect(lambda *_: ended("failed"))
    engine.job_cancelled.connect(lambda _id, partial: ended("cancelled", partial))
    code = EXIT_FAILED
    try:  # the engine is shut down on every way out: a Qt thread left running aborts the process, and a worker
        # process left running would hold its model's memory until it noticed this process is gone
        with CtrlC(engine, before_message=bar.finish) as ctrl_c:
            job = engine.submit(generator.id, params, model=args.model, seed=args.seed)
            ctrl_c.follow(job.id, generator.id)
            app.exec()
        bar.finish()
        code = _finish(job, outcome.get("state", "failed"), outcome.get("outputs", []), args)
    except ParamError as exc:
        code = _error(exc, EXIT_USAGE)
    finally:
        stopped = engine.shutdown(timeout=10)
    if not stopped:  # a generator running here that ignores cancel: do not wait for it forever (worker processes
        # are ended by then)
        from desktop.exiting import exit_now

        exit_now(code)
    return code


def _finish(job, state: str, outputs: list, args) -> int:
    """Copy the outputs to ``--output``, report (``outputs``: those the job's last signal delivered), and return the
    exit status."""
    from desktop.api import StudioloError
    from desktop.cli.output_copy import OutputFormatError, copy_outputs

    code = {"done": 0, "cancelled": EXIT_CANCELLED}.get(state, EXIT_FAILED)
    copies, problem = [], None
    if args.output and job.saved:
        try:
            for copy in copy_outputs(job.saved, job.saved_metadata, args.output):
                copies.append(copy)
        except StudioloError as exc:
            problem = exc
            code = EXIT_USAGE if isinstance(exc, OutputFormatError) else EXIT_FAILED
    if args.json:
        print(json.dumps({"job_id": job.id, "state": state, "seed": job.seed, "model": job.model,
                          "device": job.device, "error": job.error, "saved": [str(p) for p in job.saved],
                          "copies": [str(c.path) for c in copies], "copy_error": str(problem) if problem else None,
                          "timings": job.timings}, indent=2))
    else:
        _report(job, state, outputs, copies)
    if problem is not None:
        _error(problem, code)
        print("The output is kept in the library: " + ", ".join(map(str, job.saved)), file=sys.stderr)
    return code


def _report(job, state: str, outputs: list, copies) -> None:
    from desktop.api import TextOutput

    if state == "failed":
        from desktop.logs import log_path

        print(f"studiolo: error: {job.error}", file=sys.stderr)
        if job.error_detail:
            print(f"(the traceback is in {log_path()})", file=sys.stderr)
        return
    for output in outputs:
        if isinstance(output, TextOutput):
            print(output.text)
    for path in job.saved:
        print(f"saved {path}", file=sys.stderr)
    for copy in copies:
        print(f"copied to {copy.path}" + (f" (how it was made: {copy.sidecar})" if copy.sidecar else ""),
              file=sys.stderr)
    if state == "cancelled":
        kept = "partial output kept" if job.saved else "nothing was saved"
        print(f"seed {job.seed} (cancelled: {kept})", file=sys.stderr)
    else:
        print(f"seed {job.seed}", file=sys.stderr)
