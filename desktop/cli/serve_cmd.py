"""``studiolo serve [--host 127.0.0.1] [--port 8188] [--api-key KEY] [--require-key] [--max-body-mb 32]
[--rate-limit 120]``: the engine behind an OpenAI-compatible HTTP API (see :mod:`desktop.serve` and
``docs/serve.md``). Runs until Ctrl+C or SIGTERM (exit status 0). Imports nothing of the server until it runs."""

from __future__ import annotations

import argparse

from desktop.cli.arg_types import whole_number


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("serve", help="serve the generators over an OpenAI-compatible API",
                            description="Serve the generators over an OpenAI-compatible HTTP API (chat, completions, "
                                        "images, speech, and Studiolo's own jobs with progress). Outputs are saved "
                                        "to the library as any job's. Listens on this machine only unless --host "
                                        "says otherwise; then an API key is required.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; any other address requires "
                        "the API key)")
    p.add_argument("--port", type=_port, default=8188, help="port (default 8188; 0 picks a free one)")
    p.add_argument("--api-key", metavar="KEY",
                   help="the key clients must send (default: $STUDIOLO_API_KEY, else one generated into the config "
                        "folder when a key is required); giving one requires it")
    p.add_argument("--require-key", action="store_true", help="require the API key on loopback too")
    p.add_argument("--max-body-mb", type=_positive_float, default=32, metavar="MB",
                   help="largest request body in MiB (default 32; larger is refused with 413)")
    p.add_argument("--rate-limit", type=whole_number, default=120, metavar="N",
                   help="requests a minute per client (default 120; more get 429; 0: no limit)")
    p.set_defaults(handler=serve)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _port(text: str) -> int:
    value = whole_number(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be from 0 to 65535")
    return value


def serve(args: argparse.Namespace) -> int:
    from desktop.serve.server import ServeOptions, run

    return run(ServeOptions(host=args.host, port=args.port, api_key=args.api_key, require_key=args.require_key,
                            max_body_mb=args.max_body_mb, rate_limit=args.rate_limit))
