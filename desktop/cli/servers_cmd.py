"""``studiolo servers``: the OpenAI-compatible servers remote generators may use (issue 23).

``list`` shows them (keys never printed whole), ``add NAME URL`` adds one (``--api-key``, or ``--api-key-env VAR``
to read it from the environment rather than the shell's history; ``--concurrency``: how many jobs of a batch it
takes at once), ``remove NAME`` removes one. Nothing here contacts a server: ``studiolo models list`` asks them what
they offer. With no server configured, no remote generator contacts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("servers", help="the remote OpenAI-compatible servers to generate on",
                                 description="List, add and remove the OpenAI-compatible servers (another "
                                             "Studiolo's `studiolo serve`, llama.cpp, vLLM, Ollama, LocalAI…) whose "
                                             "models the remote generators run.")
    actions = parser.add_subparsers(dest="servers_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the configured servers")
    listing.add_argument("--json", action="store_true", help="machine-readable output (keys left out)")
    listing.set_defaults(handler=_list)
    add = actions.add_parser("add", help="add a server")
    add.add_argument("name", help="a short name for it (letters, digits, '.', '_', '-'); models are NAME/…")
    add.add_argument("url", help="its API's base URL, e.g. http://gpubox:8188/v1")
    key = add.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="the key it asks for (Authorization: Bearer)")
    key.add_argument("--api-key-env", metavar="VAR", help="read the key from the environment variable VAR")
    add.add_argument("--concurrency", type=int, default=1, help="jobs of a batch it runs at once (default 1)")
    add.add_argument("--replace", action="store_true", help="replace a server of that name")
    add.set_defaults(handler=_add)
    remove = actions.add_parser("remove", help="remove a server")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)


def _list(args: argparse.Namespace) -> int:
    from desktop.settings import Settings

    settings = Settings.load()
    servers = settings.servers()
    for warning in settings.warnings:
        print(f"note: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"name": s.name, "url": s.url, "has_api_key": bool(s.api_key),
                           "concurrency": s.concurrency} for s in servers], indent=2))
        return 0
    if not servers:
        print("No servers are configured: remote generators contact nothing. Add one with "
              "`studiolo servers add NAME URL`.")
    for server in servers:
        key = f"key …{server.api_key[-4:]}" if server.api_key and len(server.api_key) > 8 else \
            ("key set" if server.api_key else "no key")
        print(f"{server.name}\t{server.url}\t{key}\tconcurrency {server.concurrency}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from desktop.api import StudioloError
    from desktop.cli.generate_cmd import EXIT_USAGE, _error
    from desktop.remote.servers import add_server

    key = args.api_key
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            print(f"studiolo: error: the environment variable {args.api_key_env} is not set.", file=sys.stderr)
            return 2
    try:
        server = add_server(args.name, args.url, api_key=key, concurrency=args.concurrency, replace=args.replace)
    except StudioloError as exc:
        return _error(exc, EXIT_USAGE)
    except OSError as exc:  # the settings could not be written (a WriteError names the file)
        print(f"studiolo: error: {exc}", file=sys.stderr)
        return 1
    print(f"Added {server.name} ({server.url}). Its models: studiolo models list --remote")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from desktop.api import StudioloError
    from desktop.cli.generate_cmd import EXIT_USAGE, _error
    from desktop.remote.servers import remove_server

    try:
        remove_server(args.name)
    except StudioloError as exc:
        return _error(exc, EXIT_USAGE)
    except OSError as exc:
        print(f"studiolo: error: {exc}", file=sys.stderr)
        return 1
    print(f"Removed {args.name}.")
    return 0
