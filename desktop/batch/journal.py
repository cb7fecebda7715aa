"""A batch's run journal, in ``OUT/.studiolo-batch/`` (a dot folder: the ``datasets`` loaders skip it).

* ``plan.json`` — the batch's :class:`~desktop.batch.plan.BatchPlan` (``to_json``), written once, atomically, before
  any job is submitted: a resumed batch runs the very same items (same params, same seeds, same file names).
* ``inputs/`` — the plan's flipped/cropped input pictures, written while the plan is made (before the folder is
  opened: :func:`~desktop.batch.run.open_batch` counts them as the new batch's own, and keeps them when it replaces
  what the folder held).
* ``done.jsonl`` — one JSON line per finished item, ``{"index": N, "files": [{"name", "sha256", "size"}]}``, appended
  and fsync'd *after* the item's files and metadata row are durable. A line torn by a crash is ignored.

On resume an item counts as done only when its line exists and every file it lists is there with that SHA-256
(:meth:`Journal.verified_done`); every other item runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from desktop.api import atomic_write_json

__all__ = ["JOURNAL_DIR", "INPUTS_DIR", "Journal", "file_sha256"]

JOURNAL_DIR = ".studiolo-batch"
INPUTS_DIR = "inputs"
"""In the journal's folder: the plan's flipped/cropped input pictures (``make_plan``'s ``work_dir``)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Journal:
    """The journal of the batch writing to ``out``."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.dir = self.out / JOURNAL_DIR
        self.plan_path = self.dir / "plan.json"
        self.inputs_dir = self.dir / INPUTS_DIR  # flipped/cropped input pictures, written while the plan is made
        self.done_path = self.dir / "done.jsonl"

    def exists(self) -> bool:
        """Whether a batch was started here (its plan was written)."""
        return self.plan_path.is_file()

    def start(self, plan_json: dict[str, Any]) -> None:
        """A new batch: write its plan (atomically) and an empty list of done items."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.plan_path, plan_json)
        with open(self.done_path, "wb") as f:
            os.fsync(f.fileno())

    def read_plan(self) -> dict[str, Any]:
        with open(self.plan_path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        return data

    def append_done(self, index: int, files: list[dict[str, Any]]) -> None:
        """Record item ``index`` as done with ``files`` (call after they and their metadata row are durable)."""
        line = json.dumps({"index": index, "files": files}, sort_keys=True) + "\n"
        with open(self.done_path, "ab") as f:
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def read_done(self) -> dict[int, list[dict[str, Any]]]:
        """Every item the journal lists as done (the last line counts), a torn or garbled line skipped."""
        done: dict[int, list[dict[str, Any]]] = {}
        try:
            raw = self.done_path.read_bytes()
        except FileNotFoundError:
            return done
        for line in raw.splitlines():
            try:
                entry = json.loads(line)
                done[int(entry["index"])] = list(entry["files"])
            except (ValueError, KeyError, TypeError):
                continue  # torn by a crash while it was written: that item runs again
        return done

    def verified_done(self) -> dict[int, list[dict[str, Any]]]:
        """The done items whose files are all there, each with the size and SHA-256 the journal recorded."""
        verified = {}
        for index, files in self.read_done().items():
            if all(self._intact(entry) for entry in files):
                verified[index] = files
        return verified

    def _intact(self, entry: dict[str, Any]) -> bool:
        try:
            path = self.out / str(entry["name"])
            return (path.is_file() and path.stat().st_size == int(entry["size"])
                    and file_sha256(path) == entry["sha256"])
        except (OSError, KeyError, TypeError, ValueError):
            return False

    def rewrite_done(self, done: dict[int, list[dict[str, Any]]]) -> None:
        """Keep only ``done`` in the journal (atomically; on resume, after dropping the items not intact)."""
        from desktop.api import atomic_write_bytes

        lines = "".join(json.dumps({"index": i, "files": done[i]}, sort_keys=True) + "\n" for i in sorted(done))
        atomic_write_bytes(self.done_path, lines.encode("utf-8"))
