"""``studiolo generate GENERATOR_ID [--model REF] [--param k=v …] [--seed N] [--output PATH]``: one job, headless.

Runs the same engine the window uses, with a Qt event loop but no window. Progress goes to stderr; the text of
text outputs to stdout, and the path of every saved output to stderr. Exit status: 0 done, 1 the job failed,
2 a usage error (unknown generator, invalid parameter), 130 cancelled with Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130
_app = None  # the QCoreApplication lives as long as the process


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("generate", help="run one job without the window",
                            description="Run one job without the window; the output is saved to the library.")
    p.add_argument("generator_id", metavar="GENERATOR_ID", help="e.g. text.markov (`studiolo plugins list`)")
    p.add_argument("--model", metavar="REF", help="hub repo id, local folder or file, or 'demo' "
                                                  "(default: the generator's default model)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter (repeatable); `--param help` lists them")
    p.add_argument("--seed", type=int, default=None, help="seed (default: random; the seed used is printed)")
    p.add_argument("--output", "-o", type=Path, metavar="PATH", help="also copy the output(s) here")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: from Settings)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout instead")
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
    from desktop.api import ParamError, PluginError, parse_assignments
    from desktop.plugins import PluginManager

    plugins = PluginManager().load()
    try:
        generator = plugins.generator(args.generator_id)
    except PluginError as exc:
        print(f"studiolo: error: {exc.message}\n{exc.hint}", file=sys.stderr)
        return EXIT_USAGE
    if args.param == ["help"]:
        print(_param_help(generator))
        return 0
    try:
        params = parse_assignments(generator.Params, args.param)
    except ParamError as exc:
        print(f"studiolo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.device:
        plugins.settings.device = args.device
    return _run(plugins, generator, params, args)


def _run(plugins, generator, params, args) -> int:
    import os

    from PySide6.QtCore import QCoreApplication, QTimer

    from desktop.api import ParamError
    from desktop.api.files import atomic_write_bytes
    from desktop.cli.progress import ProgressBar
    from desktop.engine.engine import Engine

    global _app
    app = _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins)
    bar = ProgressBar(generator.id)
    outcome: dict = {}

    def ended(state: str, job_id: str, payload) -> None:
        outcome.update(state=state, payload=payload)
        app.quit()

    engine.job_progressed.connect(lambda _id, done, total, message: bar.update(done, total or None, message))
    engine.job_warned.connect(lambda _id, message: print(f"\nnote: {message}", file=sys.stderr))
    engine.job_finished.connect(lambda job_id, outputs: ended("done", job_id, outputs))
    engine.job_failed.connect(lambda job_id, message: ended("failed", job_id, message))
    engine.job_cancelled.connect(lambda job_id, partial: ended("cancelled", job_id, partial))
    try:
        job = engine.submit(generator.id, params, model=args.model, seed=args.seed)
    except ParamError as exc:
        engine.shutdown()
        print(f"studiolo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGINT, lambda *_: engine.cancel(job.id))
    wake = QTimer()  # lets Python run the Ctrl+C handler while Qt's loop waits
    wake.start(200)
    try:
        app.exec()
    finally:
        signal.signal(signal.SIGINT, previous)
        wake.stop()
        bar.finish()
    state = outcome.get("state", "failed")
    copies = _copy_outputs(job.saved, args.output, atomic_write_bytes) if args.output and job.saved else []
    if args.json:
        print(json.dumps({"job_id": job.id, "state": state, "seed": job.seed, "model": job.model,
                          "device": job.device, "error": job.error, "saved": [str(p) for p in job.saved],
                          "copies": [str(p) for p in copies], "timings": job.timings}, indent=2))
    else:
        _report(job, state, copies, generator)
    stopped = engine.shutdown(timeout=10)
    del engine  # before the application object: Qt objects must go before their QCoreApplication
    code = {"done": 0, "cancelled": EXIT_CANCELLED}.get(state, EXIT_FAILED)
    if not stopped:  # a generator ignoring cancel: do not wait for it forever
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _report(job, state: str, copies: list[Path], generator) -> None:
    from desktop.api import TextOutput

    if state == "failed":
        from desktop.logs import log_path

        print(f"studiolo: error: {job.error}", file=sys.stderr)
        if job.error_detail:
            print(f"(the traceback is in {log_path()})", file=sys.stderr)
        return
    for output in job.outputs:
        if isinstance(output, TextOutput):
            print(output.text)
    for path in job.saved:
        print(f"saved {path}", file=sys.stderr)
    for path in copies:
        print(f"copied to {path}", file=sys.stderr)
    print(f"seed {job.seed}" + (" (cancelled: partial output kept)" if state == "cancelled" else ""),
          file=sys.stderr)


def _copy_outputs(saved: list[Path], target: Path, write) -> list[Path]:
    """Copy saved outputs to ``target``: a folder (kept names), or a file name (numbered if several)."""
    copies = []
    for index, path in enumerate(saved):
        if target.is_dir():
            dest = target / path.name
        elif len(saved) == 1:
            dest = target
        else:
            dest = target.with_name(f"{target.stem}-{index + 1}{target.suffix or path.suffix}")
        if not dest.suffix:
            dest = dest.with_suffix(path.suffix)
        write(dest, path.read_bytes())
        copies.append(dest)
    return copies
