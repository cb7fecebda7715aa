"""``studiolo gallery list | show ID | export ID PATH | export ID… --out DIR | delete ID… | restore ID… | empty-trash``.

Everything goes through :class:`desktop.library.Gallery`, the service the window's gallery uses. No Qt, no torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop.cli.arg_types import whole_number

if TYPE_CHECKING:
    from desktop.library import Gallery, Item, ItemDetails

_PROMPT_WIDTH = 60
_DATASET_FORMATS = ("imagefolder", "audiofolder", "jsonl", "parquet")  # desktop.batch.dataset.FORMATS (not imported)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("gallery", help="list, show, export and delete what you have made",
                                 description="List, show, export and delete the outputs in your library.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="the library's items, newest first")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--kind", action="append", metavar="KIND", help="only this kind: image, text, audio (repeatable)")
    p.add_argument("--generator", metavar="GENERATOR_ID", help="only items of this generator, e.g. image.diffusers")
    p.add_argument("--model", metavar="MODEL", help="only items made with this model")
    p.add_argument("--tag", metavar="TAG", help="only items with this tag")
    p.add_argument("--search", metavar="TEXT", default="", help="words in the prompt or the generated text")
    p.add_argument("--favourites", action="store_true", help="only favourites")
    p.add_argument("--trash", action="store_true", help="list the trash instead")
    p.add_argument("--limit", type=whole_number, default=50, metavar="N",
                   help="show at most N items (0: all; default 50)")
    p.set_defaults(handler=list_items)

    p = sub.add_parser("show", help="everything about one item")
    p.add_argument("item_id", metavar="ID", type=int)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=show)

    p = sub.add_parser("export", help="copy an item's file (and its metadata sidecar) to a file or folder, or "
                       "export items as a dataset (--out)",
                       usage="%(prog)s ID PATH [--overwrite]\n       %(prog)s ID [ID ...] --out DIR "
                             "[--format FORMAT] [--force]")
    p.add_argument("item_id", metavar="ID", type=int)
    p.add_argument("dest", metavar="PATH", nargs="*",
                   help="a folder (same file name inside it) or a file path; with --out, more item IDs")
    p.add_argument("--overwrite", action="store_true", help="replace a file already there")
    p.add_argument("--out", metavar="DIR", type=Path,
                   help="export the items as a dataset into this folder (new or empty), for Hugging Face datasets")
    p.add_argument("--format", choices=_DATASET_FORMATS, default=None,
                   help="with --out: the dataset's layout (default: imagefolder, audiofolder or jsonl by the "
                        "items' kind)")
    p.add_argument("--force", action="store_true", help="with --out: replace what the folder holds")
    p.set_defaults(handler=lambda args, parser=p: export(args, parser))

    p = sub.add_parser("delete", help="move items to the trash (or, with --now, delete them and their files)")
    p.add_argument("item_ids", metavar="ID", type=int, nargs="+")
    p.add_argument("--now", action="store_true", help="skip the trash: delete the files at once")
    p.set_defaults(handler=delete)

    p = sub.add_parser("restore", help="take items out of the trash")
    p.add_argument("item_ids", metavar="ID", type=int, nargs="+")
    p.set_defaults(handler=restore)

    p = sub.add_parser("empty-trash", help="delete every item in the trash, with its files")
    p.set_defaults(handler=empty_trash)


def _run(action: Any) -> int:
    """Open the library, tidy what an interrupted save left, run ``action(gallery)``, close the library."""
    from desktop.library import Gallery, Library

    with Library() as library:
        _reconcile(library)
        return int(action(Gallery(library)) or 0)


def _reconcile(library: Any) -> None:
    """Tidy the outputs folder (``desktop.library.reconciliation``: cheap when nothing is wrong), with a note on
    stderr when something was; failing to tidy is a warning, never the command's failure."""
    from desktop import paths
    from desktop.api import StudioloError
    from desktop.library import reconcile
    from desktop.settings import Settings

    output_dir = Settings.load().output_dir
    try:
        report = reconcile(library, Path(output_dir) if output_dir else paths.default_output_dir())
    except (StudioloError, OSError) as exc:
        print(f"warning: could not tidy the library: {exc}", file=sys.stderr)
        return
    if report.changed:
        print(report.summary(), file=sys.stderr)


# -- commands ------------------------------------------------------------------------------------------------


def list_items(args: argparse.Namespace) -> int:
    from desktop.library import Query

    query = Query(kinds=tuple(args.kind or ()), generator_id=args.generator, model=args.model, tag=args.tag,
                  search=args.search, favourites_only=args.favourites, trashed=args.trash)

    def action(gallery: Gallery) -> int:
        total = gallery.count(query)
        items = gallery.items(query, limit=args.limit or max(total, 1))
        exists = {item.id: item.path.is_file() for item in items}
        if args.json:
            json.dump([_item_json(item, exists[item.id]) for item in items], sys.stdout, indent=2,
                      ensure_ascii=False)
            sys.stdout.write("\n")
            return 0
        if not items:
            print(_empty_message(args, total))
            return 0
        _print_table(items, exists)
        shown = f"{len(items)} of {total}" if len(items) < total else f"{total}"
        footer = f"\n{shown} item(s)" + (" in the trash" if args.trash else "")
        if not all(exists.values()):
            footer += f"; {_warning()} = file missing (`studiolo gallery delete ID --now` forgets it)"
        print(footer)
        return 0

    return _run(action)


def show(args: argparse.Namespace) -> int:
    def action(gallery: Gallery) -> int:
        details = gallery.details(args.item_id)
        if args.json:
            json.dump(_details_json(details), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            _print_details(details)
        return 0

    return _run(action)


def export(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    error = parser.error if parser is not None else _usage_error
    if args.out is not None:
        return export_dataset(args, error)
    if args.format is not None or args.force:
        error("--format and --force go with --out DIR (a dataset export)")
    if len(args.dest) != 1:
        error("give one PATH to copy the item to, or --out DIR to export items as a dataset")

    def action(gallery: Gallery) -> int:
        print(gallery.export(args.item_id, Path(args.dest[0]), overwrite=args.overwrite))
        return 0

    return _run(action)


def export_dataset(args: argparse.Namespace, error: Any) -> int:
    """``gallery export ID... --out DIR [--format F] [--force]``: the items as a dataset
    (:func:`desktop.batch.dataset.export_items`)."""
    ids = [args.item_id]
    for text in args.dest:
        try:
            ids.append(int(text))
        except ValueError:
            error(f"not an item ID: {text!r} (with --out, every argument is an item ID)")
    if args.overwrite:
        error("--overwrite copies one file; with --out use --force")

    def action(gallery: Gallery) -> int:
        from desktop.batch.dataset import default_format, export_items

        items = [gallery.details(item_id).item for item_id in _known(gallery, ids)]
        command = "studiolo gallery export " + " ".join(str(i) for i in ids) + f" --out {args.out}" + (
            f" --format {args.format}" if args.format else "")
        writer = export_items(items, args.out, args.format, force=args.force, card={"command": command})
        fmt = args.format or default_format(items[0].kind)
        print(f"exported {len(items)} item(s) to {writer.out} as {fmt} (a dataset card in README.md; "
              "`sha256sum -c SHA256SUMS` there checks the files)")
        return 0

    return _run(action)


def _usage_error(message: str) -> None:
    print(f"studiolo gallery export: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def delete(args: argparse.Namespace) -> int:
    def action(gallery: Gallery) -> int:
        ids = _known(gallery, args.item_ids)
        if args.now:
            count = gallery.delete_now(ids)
            print(f"deleted {count} item(s) and their files")
        else:
            gallery.trash(ids)
            print(f"moved {len(ids)} item(s) to the trash; `studiolo gallery restore ID` brings one back, "
                  "`studiolo gallery empty-trash` deletes them for good")
        return 0

    return _run(action)


def restore(args: argparse.Namespace) -> int:
    def action(gallery: Gallery) -> int:
        ids = _known(gallery, args.item_ids)
        gallery.restore(ids)
        print(f"restored {len(ids)} item(s)")
        return 0

    return _run(action)


def empty_trash(args: argparse.Namespace) -> int:
    def action(gallery: Gallery) -> int:
        count = gallery.empty_trash()
        print(f"deleted {count} item(s) from the trash, with their files" if count else "The trash is empty.")
        return 0

    return _run(action)


# -- helpers -------------------------------------------------------------------------------------------------


def _known(gallery: Gallery, item_ids: list[int]) -> list[int]:
    """``item_ids`` without repeats; :class:`LibraryError` naming the first unknown one (nothing done then)."""
    ids = list(dict.fromkeys(item_ids))
    for item_id in ids:
        gallery.details(item_id)  # raises "There is no item N in the library."
    return ids


def _empty_message(args: argparse.Namespace, total: int) -> str:
    if args.trash:
        return "The trash is empty." if not total else "No item in the trash matches."
    filtered = args.kind or args.generator or args.model or args.tag or args.search.strip() or args.favourites
    if filtered:
        return "No item matches."
    return "The library is empty: what you generate (in the app or with `studiolo generate`) appears here."


def _warning() -> str:
    """⚠ where the terminal can show it."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "⚠".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "!"
    return "⚠"


def _date(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp is not None else "-"


def _excerpt(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_table(items: list[Item], exists: dict[int, bool]) -> None:
    warning = _warning()
    rows = [("", "ID", "DATE", "KIND", "GENERATOR", "MODEL", "PROMPT")]
    for item in items:
        rows.append((
            "" if exists[item.id] else warning, str(item.id), _date(item.created), item.kind, item.generator_id,
            _excerpt(item.model, 32) or "-", _excerpt(item.prompt or item.text, _PROMPT_WIDTH) or "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]),
                 *(c.ljust(w) for c, w in zip(row[2:6], widths[2:], strict=True))]
        print("  ".join(cells) + "  " + row[6])


def _print_details(details: ItemDetails) -> None:
    from desktop.engine.memory import human_bytes
    from desktop.library import RECOVERED_TAG

    item = details.item
    if details.exists:
        file_line = f"{item.path} ({human_bytes(details.size_bytes or 0)})"
    else:
        file_line = f"{item.path}  {_warning()} missing (`studiolo gallery delete {item.id} --now` forgets it)"
    generator = item.generator_id + (f" {item.generator_version}" if item.generator_version else "")
    lines = [
        ("kind", item.kind + (" (partial)" if item.partial else "")),
        ("created", _date(item.created)),
        ("generator", generator),
        ("model", item.model or "-"),
        ("prompt", item.prompt or "-"),
        ("seed", "-" if item.seed is None else str(item.seed)),
        ("file", file_line),
        ("tags", ", ".join(details.tags) or "-"),
        *([("recovered", "yes: indexed again from its file after Studiolo stopped while saving it")]
          if RECOVERED_TAG in details.tags else []),
        ("favourite", "yes" if item.favourite else "no"),
    ]
    if item.trashed_at is not None:
        lines.append(("trash", f"since {_date(item.trashed_at)}"))
    parent = details.parent
    if parent is not None:
        state = " (deleted)" if parent.gone else " (in the trash)" if parent.trashed else ""
        lines.append(("parent", f"item {parent.item.id if parent.item else parent.item_id}{state}"))
    if details.derivatives:
        lines.append(("children", f"{details.derivatives} item(s) derived from it"))
    params = item.metadata.get("params")
    if isinstance(params, dict) and params:
        lines.append(("params", json.dumps(params, ensure_ascii=False, sort_keys=True)))
    print(f"Item {item.id}")
    for label, value in lines:
        print(f"  {label:<10} {value}")
    if item.text:
        print("\n" + item.text)


def _item_json(item: Item, exists: bool) -> dict[str, Any]:
    return {
        "id": item.id,
        "created": item.created,
        "created_local": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(item.created)),
        "kind": item.kind,
        "generator_id": item.generator_id,
        "generator_version": item.generator_version,
        "model": item.model,
        "prompt": item.prompt,
        "text": item.text,
        "path": str(item.path),
        "exists": exists,
        "seed": item.seed,
        "partial": item.partial,
        "favourite": item.favourite,
        "trashed_at": item.trashed_at,
        "job_id": item.job_id,
    }


def _details_json(details: ItemDetails) -> dict[str, Any]:
    return {
        **_item_json(details.item, details.exists),
        "size_bytes": details.size_bytes,
        "tags": details.tags,
        "metadata": details.item.metadata,
        "sha256": details.item.sha256,
        "parent": None if details.parent is None else {
            "item_id": details.parent.item.id if details.parent.item else details.parent.item_id,
            "sha256": details.parent.sha256, "deleted": details.parent.gone, "trashed": details.parent.trashed},
        "derivatives": details.derivatives,
    }
