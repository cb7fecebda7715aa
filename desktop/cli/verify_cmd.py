"""``studiolo verify FILE...``: check the Content Credentials (C2PA) of files, and look for invisible watermarks.

One line per file (its state and a summary), the manifest's claims below it, then what each generator that marks
outputs found (:mod:`desktop.provenance.watermark_check`: the watermark survives a metadata strip, the manifest
does not), or ``--json``. Exit status 0 when every file is ``valid`` (signed by this Studiolo and unchanged), 1
otherwise. No Qt, no network; torch only when a generator looks for its watermark (``--no-watermark`` skips that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

_CLAIM_ORDER = ("generator", "model", "weights_sha256", "prompt", "digital_source_type", "claim_generator", "signer")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("verify", help="check the Content Credentials (C2PA) of files",
                                 description="Check the Content Credentials of files: valid (signed by this "
                                             "Studiolo, unchanged), tampered, unsigned, other_signer or corrupt. "
                                             "Exit status 0 when all are valid, 1 otherwise.")
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="image or audio files")
    parser.add_argument("--json", action="store_true", help="machine-readable output (a list, one object a file)")
    parser.add_argument("--no-watermark", action="store_true",
                        help="only the Content Credentials: do not look for invisible watermarks (faster)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from desktop.provenance.c2pa_verify import own_keys, verify_file

    keys = own_keys()
    verdicts = [verify_file(path, keys=keys) for path in args.files]
    marks = [[] for _ in verdicts] if args.no_watermark else _watermarks(args.files)
    if args.json:
        print(json.dumps([{**v.to_dict(), "watermarks": [{"generator": generator, **dataclasses.asdict(check)}
                                                         for generator, check in found]}
                          for v, found in zip(verdicts, marks, strict=True)], indent=2, ensure_ascii=False))
    else:
        for verdict, found in zip(verdicts, marks, strict=True):
            print(f"{verdict.path}: {verdict.state} — {verdict.summary}")
            for name in (*_CLAIM_ORDER, *sorted(set(verdict.claims) - set(_CLAIM_ORDER))):
                if name in verdict.claims:
                    value = verdict.claims[name]
                    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    print(f"    {name}: {shown}")
            for generator, check in found:
                said = "detected" if check.detected else "not found"
                print(f"    watermark ({check.method}, {generator}): {said}, score {check.score:.3f}"
                      + (f" — {check.detail}" if check.detail else ""))
    return 0 if verdicts and all(v.valid for v in verdicts) else 1


def _watermarks(files: list[Path]) -> list[list]:
    """What the installed generators' watermark detectors found in each file (see check_watermarks)."""
    from desktop.plugins import PluginManager
    from desktop.provenance.watermark_check import check_watermarks

    plugins = PluginManager().load()
    generators = list(plugins.generators.values())
    return [check_watermarks(path, generators) for path in files]
