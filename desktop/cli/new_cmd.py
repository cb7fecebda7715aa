"""``studiolo plugins new NAME [--kind text|image|audio] [--dir DIR] [--author AUTHOR]``: start a plugin package.

``plugins_cmd.add_parser`` calls :func:`add_new_parser` with its subcommands object. The work is
:func:`desktop.scaffold.scaffold`; this module only parses and prints the next steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ("text", "image", "audio")  # the same as desktop.scaffold.KINDS, kept here so --help imports nothing


def add_new_parser(plugins_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``new`` to the ``studiolo plugins`` subcommands; returns its parser."""
    parser = plugins_subparsers.add_parser(
        "new", help="create a plugin package to start from (a working generator, its tests, a README)",
        description="Create studiolo-NAME/: a plugin package with a working generator of the chosen kind, its "
                    "pyproject.toml (entry point, Studiolo range), tests using Studiolo's pytest fixtures and a "
                    "README on installing, testing and publishing it.")
    parser.add_argument("name", metavar="NAME",
                        help="the plugin's name: lower-case letters, digits, '-' and '_' (e.g. tiles, sea-sounds)")
    parser.add_argument("--kind", choices=KINDS, default="text", help="the kind of generator to start from "
                        "(default: text)")
    parser.add_argument("--dir", dest="dest", metavar="DIR", type=Path, default=Path("."),
                        help="the folder to create studiolo-NAME/ in (default: the current folder)")
    parser.add_argument("--author", metavar="AUTHOR", help="the author's name for pyproject.toml")
    parser.set_defaults(handler=new_plugin)
    return parser


def new_plugin(args: argparse.Namespace) -> int:
    from desktop.scaffold import plugin_names, scaffold

    root = scaffold(args.name, args.dest, kind=args.kind, author=args.author)
    names = plugin_names(args.name, args.kind)
    print(f"Created {root}/ — the {names.kind} generator {names.generator_id} in {names.module}/__init__.py.")
    print()
    print("Next steps:")
    print(f"  cd {root}")
    print("  pip install -e '.[test]'      # into Studiolo's environment; then: studiolo plugins list")
    print("  pytest                        # its tests, through Studiolo's pytest fixtures")
    print(f"  studiolo generate {names.generator_id} --model demo --seed 1")
    print()
    print("README.md says how to publish it; the plugin author's guide is docs/plugin-tutorial.md.")
    return 0
