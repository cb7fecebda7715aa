"""``studiolo plugins list | enable NAME | disable NAME``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop.plugins import PluginRecord


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("plugins", help="list, enable and disable plugins",
                                 description="List, enable and disable plugins.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = sub.add_parser("list", help="every plugin with its version, status and generators")
    listing.add_argument("--json", action="store_true", help="machine-readable output (tracebacks included)")
    listing.add_argument("-v", "--verbose", action="store_true", help="show the full traceback of failed plugins")
    listing.set_defaults(handler=list_plugins)

    for verb, enabled in (("enable", True), ("disable", False)):
        p = sub.add_parser(verb, help=f"{verb} a plugin by name (takes effect the next time Studiolo starts)")
        p.add_argument("name", metavar="NAME")
        p.set_defaults(handler=lambda args, enabled=enabled: set_enabled(args, enabled))


def list_plugins(args: argparse.Namespace) -> int:
    from desktop.plugins import PluginManager, Status

    manager = PluginManager().load()
    records = list(manager.plugins.values())
    if args.json:
        json.dump([r.to_json() for r in records], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not records:
        print("No plugins are installed. A plugin is a Python package with a 'studiolo' entry point; "
              "see docs/plugins.md.")
        return 0
    rows = [("NAME", "VERSION", "STATUS", "GENERATORS")]
    rows += [(r.name, r.version or "-", r.status + (" (built-in)" if r.builtin else ""),
              ", ".join(r.generators) or "-") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    for record in records:
        _print_problems(record, args.verbose)
    if any(r.status == Status.FAILED for r in records) and not args.verbose:
        print("\n(run `studiolo plugins list --verbose` for the tracebacks)")
    return 0


def _print_problems(record: PluginRecord, verbose: bool) -> None:
    from desktop.plugins import Status

    if record.status == Status.FAILED:
        print(f"\n{record.name}: {record.error}")
        if verbose and record.traceback:
            print("  " + record.traceback.rstrip().replace("\n", "\n  "))
    elif record.status == Status.SKIPPED:
        print(f"\n{record.name}: skipped, {record.error}")
    for warning in record.warnings:
        print(f"\n{record.name}: warning: {warning}")


def set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    from desktop.plugins import PluginManager

    manager = PluginManager()
    changed = manager.set_enabled(args.name, enabled)
    state = "enabled" if enabled else "disabled"
    print(f"{args.name} {state}" + ("" if changed else f" (it was already {state})")
          + "; the change takes effect the next time Studiolo starts.")
    return 0
