"""``studiolo reproduce ID|FILE [--device D] [--json]``: re-run the job that made a library item or a file, compare.

The params, seed, model and generator come from the output's metadata; the re-run is not saved to the library.
Exit status: 0 identical, 1 differs (the largest difference and which recorded facts changed are printed), 2 it
cannot be re-run (no metadata, unknown item, generator not installed, the job failed), 130 cancelled with Ctrl+C.
See :mod:`desktop.provenance.reproduce` and docs/provenance.md.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_IDENTICAL, EXIT_DIFFERS, EXIT_CANNOT, EXIT_CANCELLED = 0, 1, 2, 130
_app = None  # the QCoreApplication lives as long as the process


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("reproduce", help="re-run the job that made an output and check it comes out the same",
                            description="Re-run the job that made a library item or a file (from the metadata it "
                                        "carries) and compare: exit 0 identical, 1 differs, 2 cannot re-run.")
    p.add_argument("source", metavar="ID|FILE", help="a library item ID (`studiolo gallery list`) or an output file")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: from Settings)")
    p.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QCoreApplication

    from desktop.api import StudioloError
    from desktop.cli.interrupt import CtrlC
    from desktop.engine.devices import DeviceError, check_device
    from desktop.engine.engine import Engine
    from desktop.library import Library
    from desktop.plugins import PluginManager
    from desktop.provenance.reproduce import reproduce

    global _app
    plugins = PluginManager().load()
    try:
        if args.device:
            plugins.settings.device = check_device(args.device)
    except DeviceError as exc:
        return _cannot(exc)
    _app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    engine = Engine(plugins, store=None, library=None)  # the re-run is compared, never saved
    code = EXIT_CANNOT
    try:
        with Library() as library, CtrlC(engine) as ctrl_c:
            try:
                report = reproduce(args.source, engine, library,
                                   follow=lambda job: ctrl_c.follow(job.id, job.generator_id))
            except StudioloError as exc:
                report, code = None, EXIT_CANCELLED if ctrl_c.pressed else _cannot(exc)
        if report is not None and args.json:
            print(json.dumps({"source": report.source, "identical": report.identical,
                              "difference": report.difference if report.difference != float("inf") else None,
                              "detail": report.detail, "unrecorded": report.unrecorded,
                              "changes": [{"what": c.what, "recorded": c.recorded, "now": c.now}
                                          for c in report.changes]}, indent=2))
        elif report is not None:
            print(report.summary())
        if report is not None:
            code = EXIT_IDENTICAL if report.identical else EXIT_DIFFERS
    finally:
        stopped = engine.shutdown(timeout=10)
    if not stopped:
        from desktop.exiting import exit_now

        exit_now(code)
    return code


def _cannot(exc) -> int:
    print(f"studiolo: error: {exc.message}" + (f"\n{exc.hint}" if exc.hint else ""), file=sys.stderr)
    return EXIT_CANNOT
