"""``studiolo models list [--json] | files REPO [--json] | pull REF [--for GENERATOR_ID] |
import PATH [--name NAME] [--for GENERATOR_ID] | remove REF | demo [GENERATOR_ID …]``.

A hub reference may name one file of a repo (``org/name/model-Q4_K_M.gguf``): ``pull`` then downloads only that
file, ``files`` lists a repo's files with their sizes to choose from, and ``list`` shows each such file as its own
model with the facts its generator gives (``Generator.describe_model``: architecture, quantisation…). ``--for``
also takes a generator's add-on list, ``GENERATOR_ID+KIND`` (``image.diffusers+controlnet``:
:mod:`desktop.models.addons`)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop.models.store import InstalledModel


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="list, download, import and remove models",
                                 description="List, download, import and remove models.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = sub.add_parser("list", help="the models on this machine")
    p.add_argument("--json", action="store_true")
    p.add_argument("--remote", action="store_true",
                   help="instead, the models the configured servers offer (`studiolo servers`), asked now")
    p.set_defaults(handler=list_models)
    p = sub.add_parser("files", help="list the files of a Hugging Face hub repo, with their sizes")
    p.add_argument("ref", metavar="REPO", help="repo id, e.g. Qwen/Qwen2.5-0.5B-Instruct-GGUF (or org/name@revision)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=files)
    p = sub.add_parser("pull", help="download a model from the Hugging Face hub (resumes an interrupted one)")
    p.add_argument("ref", metavar="REF", help="repo id, e.g. stabilityai/sd-turbo (or org/name@revision), or one "
                                              "file of a repo: org/name/path/in/repo.gguf")
    p.add_argument("--for", dest="generator_id", metavar="GENERATOR_ID",
                   help="list it under this generator (or add-on list, GENERATOR_ID+KIND: "
                        "image.diffusers+controlnet) in the model manager before its first use")
    p.set_defaults(handler=pull)
    p = sub.add_parser("import", help="copy a local model file or folder into Studiolo's model folder")
    p.add_argument("path", metavar="PATH", type=Path)
    p.add_argument("--name", help="the name to use it by (default: the file or folder name)")
    p.add_argument("--for", dest="generator_id", metavar="GENERATOR_ID",
                   help="list it under this generator in the model manager before its first use")
    p.set_defaults(handler=import_)
    p = sub.add_parser("remove", help="delete an installed model (as `models list` names it)")
    p.add_argument("ref", metavar="REF")
    p.set_defaults(handler=remove)
    p = sub.add_parser("demo", help="build the tiny offline demo models (all generators and their add-on kinds, or "
                                     "those named: GENERATOR_ID or GENERATOR_ID+KIND)")
    p.add_argument("generator_ids", metavar="GENERATOR_ID", nargs="*")
    p.set_defaults(handler=demo)


def list_models(args: argparse.Namespace) -> int:
    from desktop.engine.memory import human_bytes
    from desktop.models.inventory import details_text, with_details
    from desktop.models.store import list_installed

    if getattr(args, "remote", False):  # (a handler called with the flags of `models list` only)
        return _list_remote(args)
    generators = _generators_for_details()
    patterns = sorted({p for g in generators for p in g.model_file_patterns})
    models = with_details(list_installed(file_patterns=patterns), generators)
    if args.json:
        print(json.dumps([m.to_json() for m in models], indent=2))
        return 0
    if not models:
        print("No models installed yet. `studiolo models demo` builds small offline demo models; "
              "`studiolo models pull REPO_ID` downloads one.")
        return 0
    described = any(m.details for m in models)  # a DETAILS column only when a generator said something
    rows = [(m.ref, m.source, human_bytes(m.size_bytes), _generators(m), _when(m.last_used),
             *([details_text(m.details) or "-"] if described else []), str(m.path)) for m in models]
    header = ("REF", "SOURCE", "SIZE", "GENERATOR", "LAST USED", *(["DETAILS"] if described else []), "PATH")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        padded = enumerate(zip(row[:-1], widths, strict=True))  # the last column (the path) is not padded
        cells = [cell.rjust(w) if i == 2 else cell.ljust(w) for i, (cell, w) in padded]
        print("  ".join(cells + [row[-1]]))
    print(f"\n{len(models)} model(s), {human_bytes(sum(m.size_bytes for m in models))} on disk")
    return 0


def _list_remote(args: argparse.Namespace) -> int:
    """``models list --remote``: what each remote generator (``ModelSource.REMOTE``) finds on the servers; a server
    that cannot be asked is named on stderr (status 1 when one could not), the others still listed."""
    from desktop.api import ModelSource

    generators = [g for g in _generators_for_details() if ModelSource.REMOTE in g.model_sources]
    rows, problems = [], []
    for generator in generators:
        listing = generator.remote_models()
        rows += [(model.ref, generator.id, model.kind or "-", model.server) for model in listing.models]
        problems += [p for p in listing.problems if p not in problems]
    for problem in problems:
        print(f"studiolo: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"ref": r, "generator": g, "kind": k, "server": s} for r, g, k, s in rows], indent=2))
    elif not rows and not problems:
        print("No remote models: no server is configured (`studiolo servers add NAME URL`), or they offer none.")
    else:
        header = ("REF", "GENERATOR", "KIND", "SERVER")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 1 if problems else 0


def _generators_for_details() -> list:
    """The plugins' generators, to describe the models with (none when the plugins cannot be loaded: the list is
    still printed, without details)."""
    from desktop.plugins import PluginManager

    try:
        return list(PluginManager().load().generators.values())
    except Exception:  # a broken plugin setup must not stop `models list`
        import logging

        logging.getLogger(__name__).warning("could not load the plugins to describe the models", exc_info=True)
        return []


def files(args: argparse.Namespace) -> int:
    from desktop.engine.memory import human_bytes
    from desktop.models import hub
    from desktop.settings import Settings

    repo, _, revision = args.ref.partition("@")
    listing = hub.list_repo_files(repo, revision or None, Settings.load().hf_token)
    if args.json:
        print(json.dumps([{"path": f.path, "size_bytes": f.size_bytes, "ref": hub.file_ref(repo, f.path, revision
                                                                                          or None)}
                          for f in listing], indent=2))
        return 0
    width = max((len(f.path) for f in listing), default=4)
    for f in listing:
        print(f"{f.path.ljust(width)}  {human_bytes(f.size_bytes).rjust(9)}")
    print(f"\n{len(listing)} file(s). Download one with `studiolo models pull {repo}/FILE`.")
    return 0


def _generators(model: InstalledModel) -> str:
    return ",".join(model.used_by) or model.generator_id or "-"


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "never"


def pull(args: argparse.Namespace) -> int:
    from desktop.api import JobCancelled
    from desktop.cli.progress import ProgressBar
    from desktop.engine.memory import human_bytes
    from desktop.models import hub
    from desktop.models.resolver import parse_ref
    from desktop.settings import Settings

    ref = parse_ref(args.ref)
    if ref.source != "hub":
        print(f"studiolo: error: {args.ref!r} is not a hub repo id (it is a local {ref.source}).", file=sys.stderr)
        return 2
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    bar = ProgressBar(args.ref.strip())

    def progress(done: int, total: int | None, message: str) -> None:
        bar.update(done, total, f"{human_bytes(done)}" + (f" of {human_bytes(total)}" if total else ""))

    try:
        if ref.filename is not None:
            path = hub.download_file(ref.value, ref.filename, revision=ref.revision, token=Settings.load().hf_token,
                                     cancel=cancel, on_progress=progress)
        else:
            path = hub.download(ref.value, revision=ref.revision, token=Settings.load().hf_token, cancel=cancel,
                                on_progress=progress)
    except JobCancelled:
        bar.finish()
        print("Download cancelled; run the same command again to resume it.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.finish()  # an error message then starts on a line of its own
    if args.generator_id:
        from desktop.models import usage

        usage.tag(args.generator_id, args.ref.strip())
    print(path)
    return 0


def import_(args: argparse.Namespace) -> int:
    from desktop.models.store import import_model
    from desktop.settings import Settings

    model = import_model(args.path, name=args.name, allow_pickle=Settings.load().allow_pickle,
                         generator_id=args.generator_id)
    print(f"imported as {model.ref!r} ({model.path}); use it with --model {model.ref}")
    return 0


def remove(args: argparse.Namespace) -> int:
    from desktop.engine.memory import human_bytes
    from desktop.models.store import remove_model

    freed = remove_model(args.ref)
    print(f"removed {args.ref} ({human_bytes(freed)} freed)")
    return 0


def demo(args: argparse.Namespace) -> int:
    from desktop.models.addons import model_lists
    from desktop.models.store import build_demo_models
    from desktop.plugins import PluginManager

    plugins = PluginManager().load()
    lists = {g.id: g for g in model_lists(plugins.generators.values())}  # generators and their add-on lists
    generators = [lists[g] if g in lists else plugins.generator(g) for g in args.generator_ids] or list(lists.values())
    without = [g.id for g in generators if not g.has_demo_model]
    for generator, path in build_demo_models(generators):
        print(f"{generator.id}: {path}")
    if args.generator_ids and without:
        print(f"studiolo: error: no demo model for {', '.join(without)}", file=sys.stderr)
        return 1
    return 0
