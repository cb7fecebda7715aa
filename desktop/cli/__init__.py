"""The ``studiolo`` command: the app by default, headless subcommands otherwise.

Each subcommand lives in its own module with an ``add_parser(subparsers)`` function that sets ``handler`` on
its parser. Nothing here imports Qt, torch or a generator's libraries until a command needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from desktop import __version__
from desktop.api.errors import StudioloError
from desktop.cli import (
    batch_cmd,
    explore_cmd,
    gallery_cmd,
    generate_cmd,
    models_cmd,
    plugins_cmd,
    reproduce_cmd,
    serve_cmd,
    servers_cmd,
    train_cmd,
    verify_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studiolo",
        description="Studiolo: an offline studio for generative AI. Without a command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"studiolo {__version__}")
    parser.add_argument("--verbose", dest="show_library_output", action="store_true",
                        help="show the libraries' warnings and progress bars on the terminal (otherwise they go to "
                             "the log file only), in worker processes too")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    generate_cmd.add_parser(commands)
    models_cmd.add_parser(commands)
    plugins_cmd.add_parser(commands)
    gallery_cmd.add_parser(commands)
    explore_cmd.add_parser(commands)
    batch_cmd.add_parser(commands)
    reproduce_cmd.add_parser(commands)
    verify_cmd.add_parser(commands)
    train_cmd.add_parser(commands)
    serve_cmd.add_parser(commands)
    servers_cmd.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a clear error, 2 a usage error)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra  # `studiolo train`'s --NAME VALUE training parameters
    handler = getattr(args, "handler", None)
    from desktop.logs import VERBOSE_ENV, setup_logging

    if getattr(args, "show_library_output", False):
        os.environ[VERBOSE_ENV] = "1"  # read by setup_logging, and by the worker processes, which inherit it
    setup_logging()
    try:
        if handler is None:
            from desktop.ui.app import run_app

            return run_app()
        return int(handler(args) or 0)
    except StudioloError as exc:
        print(f"studiolo: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return 1
    except BrokenPipeError:  # `studiolo plugins list | head`
        return 0
    except KeyboardInterrupt:  # Ctrl+C outside a job (a job handles its own: desktop.cli.interrupt)
        print("\nstudiolo: cancelled", file=sys.stderr)
        return 130
