"""``studiolo verify FILE...``: check the Content Credentials (C2PA) of files.

One line per file (its state and a summary) and the manifest's claims below it, or ``--json``. Exit status 0 when
every file is ``valid`` (signed by this Studiolo and unchanged), 1 otherwise. No Qt, no torch, no network.
"""

from __future__ import annotations

import argparse
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from desktop.provenance.c2pa_verify import own_keys, verify_file

    keys = own_keys()
    verdicts = [verify_file(path, keys=keys) for path in args.files]
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2, ensure_ascii=False))
    else:
        for verdict in verdicts:
            print(f"{verdict.path}: {verdict.state} — {verdict.summary}")
            for name in (*_CLAIM_ORDER, *sorted(set(verdict.claims) - set(_CLAIM_ORDER))):
                if name in verdict.claims:
                    value = verdict.claims[name]
                    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    print(f"    {name}: {shown}")
    return 0 if verdicts and all(v.valid for v in verdicts) else 1
