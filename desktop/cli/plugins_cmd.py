"""``studiolo plugins list | enable NAME | disable NAME | install SPEC | uninstall NAME | update NAME | new NAME``.

Install and update first show, once, that plugins run with the user's rights; then what pip's dry run says the
install would change (or why it is refused); then, after a confirmation (``--yes`` skips it; without a terminal
it is required), the install with pip's log streamed. Ctrl+C cancels while checking; once pip installs, the
install finishes (pip cannot roll back a half-done install). Exit status: 0 done, 1 refused or failed, 130
cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop.install import Installer, Plan
    from desktop.plugins import PluginRecord

CANCELLED = 130


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("plugins",
                                 help="list, enable, disable, install, update, uninstall and write plugins",
                                 description="List, enable, disable, install, update and uninstall plugins.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = sub.add_parser("list", help="every plugin with its version, status and generators")
    listing.add_argument("--json", action="store_true", help="machine-readable output (tracebacks included)")
    listing.add_argument("-v", "--verbose", action="store_true", help="show the full traceback of failed plugins")
    listing.set_defaults(handler=list_plugins)

    for verb, enabled in (("enable", True), ("disable", False)):
        p = sub.add_parser(verb, help=f"{verb} a plugin by name (takes effect the next time Studiolo starts)")
        p.add_argument("name", metavar="NAME")
        p.set_defaults(handler=lambda args, enabled=enabled: set_enabled(args, enabled))

    install = sub.add_parser("install", help="install a plugin: a package name, a wheel, an archive or a folder",
                             description="Install a plugin after checking, with a dry run, that it fits this "
                                         "Studiolo and changes no installed package.")
    install.add_argument("spec", metavar="SPEC", help="a package name with an optional version range "
                         "(studiolo-markov, studiolo-markov==1.0), a .whl or .tar.gz file, or a plugin's folder")
    _add_pip_options(install)
    install.set_defaults(handler=install_plugin)

    update = sub.add_parser("update", help="update an installed plugin to its newest compatible version",
                            description="Update a plugin; every other installed package stays as it is.")
    update.add_argument("name", metavar="NAME", help="the plugin's name or package name")
    _add_pip_options(update)
    update.set_defaults(handler=update_plugin)

    uninstall = sub.add_parser("uninstall", help="uninstall a third-party plugin",
                               description="Uninstall a plugin (its dependencies stay installed).")
    uninstall.add_argument("name", metavar="NAME", help="the plugin's name or package name")
    uninstall.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    uninstall.add_argument("--python", metavar="PY", help="the Python environment to change (default: Studiolo's)")
    uninstall.set_defaults(handler=uninstall_plugin)

    from desktop.cli.new_cmd import add_new_parser

    add_new_parser(sub)


def _add_pip_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true",
                        help="do not ask for confirmation (needed when there is no terminal to ask on)")
    parser.add_argument("--python", metavar="PY", help="the Python environment to install into (default: Studiolo's)")
    parser.add_argument("--no-index", action="store_true", help="do not use the package index (offline installs)")
    parser.add_argument("--find-links", metavar="DIR", action="append", default=[],
                        help="also look for packages in this folder of wheels (repeatable)")
    parser.add_argument("--no-build-isolation", action="store_true",
                        help="build folders and source archives with the build tools already installed")


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
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
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


# -- install, update, uninstall ----------------------------------------------------------------------------------


def install_plugin(args: argparse.Namespace) -> int:
    from desktop.install import InstallCancelled, parse_spec

    request = parse_spec(args.spec)  # a bad spec is refused before anything else
    installer = _installer(args)
    _accept_rights_notice(args.yes)
    try:
        plan = installer.plan(request, on_line=_log_line)
    except (InstallCancelled, KeyboardInterrupt):
        return _cancelled()
    return _confirm_and_install(installer, plan, args.yes, verb="install")


def update_plugin(args: argparse.Namespace) -> int:
    from desktop.install import InstallCancelled, validate_name

    validate_name(args.name)
    installer = _installer(args)
    _accept_rights_notice(args.yes)
    try:
        plan = installer.plan_update(args.name, on_line=_log_line)
    except (InstallCancelled, KeyboardInterrupt):
        return _cancelled()
    return _confirm_and_install(installer, plan, args.yes, verb="update")


def uninstall_plugin(args: argparse.Namespace) -> int:
    from desktop.install import Installer, PipRunner

    installer = Installer(PipRunner(args.python or sys.executable))
    plugin = installer.plugin(args.name)
    names = ", ".join(plugin.plugin_names)
    print(f"This will uninstall {plugin.name} {plugin.version} (plugin: {names}); its dependencies stay installed.")
    if not _confirm("Uninstall?", args.yes):
        print("Nothing was changed.")
        return 1
    result = installer.uninstall(plugin.key, on_line=_log_line)
    print(result.message)
    if result.hint:
        print(result.hint)
    return 0 if result.ok else 1


def _installer(args: argparse.Namespace) -> Installer:
    from desktop.install import Installer, PipRunner, PluginInstallError

    index_args: list[str] = ["--no-index"] if args.no_index else []
    for folder in args.find_links:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise PluginInstallError(f"--find-links {folder}: there is no folder {path}.")
        index_args += ["--find-links", str(path)]
    runner = PipRunner(args.python or sys.executable, index_args=index_args)
    installer = Installer(runner, build_isolation=not args.no_build_isolation)
    for warning in installer.blocklist.warnings:
        print(f"studiolo: warning: {warning}", file=sys.stderr)
    return installer


def _accept_rights_notice(yes: bool) -> None:
    from desktop.install import RIGHTS_NOTICE, PluginInstallError, acknowledge_notice, notice_acknowledged

    if notice_acknowledged():
        return
    print("Before you install a plugin:\n" + textwrap.fill(RIGHTS_NOTICE, width=100, initial_indent="  ",
                                                          subsequent_indent="  ") + "\n")
    if not yes and not sys.stdin.isatty():
        raise PluginInstallError("Not installing: the notice above needs your confirmation, and there is no "
                                 "terminal to ask on.", hint="Run again with --yes to accept it.")
    if not _confirm("Continue?", yes):
        raise PluginInstallError("Not installing: the notice was not accepted. Nothing was changed.")
    acknowledge_notice()


def _confirm_and_install(installer: Installer, plan: Plan, yes: bool, verb: str) -> int:
    from desktop.install import InstallCancelled, PluginInstallError

    if not plan.ok:
        reasons = "\n".join(f"  - {reason}" for reason in plan.reasons)
        raise PluginInstallError(f"Cannot {verb} {plan.request.text}; nothing was changed:\n{reasons}",
                                 hint=plan.hint)
    if plan.nothing_to_do:
        print(plan.note or "Nothing to install.")
        return 0
    print(f"This will {verb}:")
    for line in plan.summary():
        print(f"  {line}")
    if not _confirm(verb.capitalize() + "?", yes):
        print("Nothing was changed.")
        return 1
    try:
        result = installer.install(plan, on_line=_log_line)
    except InstallCancelled:
        return _cancelled()
    print(result.message)
    if result.hint:
        print(result.hint)
    return 0 if result.ok else 1


def _confirm(question: str, yes: bool) -> bool:
    from desktop.install import PluginInstallError

    if yes:
        return True
    if not sys.stdin.isatty():
        raise PluginInstallError(f"{question} — cannot ask: there is no terminal.",
                                 hint="Run again with --yes to confirm.")
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, KeyboardInterrupt):  # Ctrl+D or Ctrl+C at the question: a no
        print()
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _log_line(line: str) -> None:
    print(line if line.startswith("==>") else f"  | {line}", file=sys.stderr, flush=True)


def _cancelled() -> int:
    print("Cancelled; nothing was changed.", file=sys.stderr)
    return CANCELLED
