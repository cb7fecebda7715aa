"""Known-bad plugin packages, refused at install time.

The list ships with Studiolo as ``resources/plugin-blocklist.json``::

    {"version": 1, "updated": "2026-11-29",
     "entries": [{"name": "some-package", "versions": "<1.2", "reason": "why it is refused"}]}

``versions`` is a version range (PEP 440 specifiers) or ``"*"`` for every version. The list is updatable without
a new Studiolo: a copy in the config folder (``<config>/plugin-blocklist.json``, same format) is read too. Its
entries for a name replace the shipped ones for that name (a newer list can narrow an entry once a fixed release
exists), and its other entries are added. A user copy that cannot be read is ignored with a warning; the shipped
list always applies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from desktop import paths
from desktop.resources import resources_dir

log = logging.getLogger(__name__)

FILE_NAME = "plugin-blocklist.json"
FORMAT_VERSION = 1
ALL_VERSIONS = "*"


@dataclass(frozen=True)
class BlockEntry:
    name: str  # canonical
    versions: str  # "*" or a specifier set
    reason: str

    def matches(self, version: str | None) -> bool:
        """Whether this entry refuses ``version``; an unknown version is refused only by a ``"*"`` entry."""
        if self.versions == ALL_VERSIONS:
            return True
        if version is None:
            return False
        try:
            return SpecifierSet(self.versions).contains(Version(version), prereleases=True)
        except InvalidVersion:
            return True  # a version we cannot compare is not given the benefit of the doubt


@dataclass
class Blocklist:
    entries: list[BlockEntry] = field(default_factory=list)
    updated: str | None = None
    warnings: list[str] = field(default_factory=list)

    def check(self, name: str, version: str | None = None) -> str | None:
        """Why ``name`` (at ``version``) is refused, or None when it is not on the list."""
        key = canonicalize_name(name)
        for entry in self.entries:
            if entry.name == key and entry.matches(version):
                shown = f"{name} {version}" if version else name
                return f"{shown} is on Studiolo's blocklist: {entry.reason}"
        return None

    @classmethod
    def from_json(cls, raw: Any, source: str) -> Blocklist:
        """Parse the file format; raise ValueError saying what is wrong."""
        if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
            raise ValueError(f"{source}: not a blocklist (expected an object with an 'entries' list)")
        if raw.get("version") != FORMAT_VERSION:
            raise ValueError(f"{source}: unknown format version {raw.get('version')!r}")
        entries = []
        for i, item in enumerate(raw["entries"]):
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k).strip()
                                                     for k in ("name", "versions", "reason")):
                raise ValueError(f"{source}: entry {i} needs the strings 'name', 'versions' and 'reason'")
            versions = item["versions"].strip()
            if versions != ALL_VERSIONS:
                try:
                    SpecifierSet(versions)
                except InvalidSpecifier:
                    raise ValueError(f"{source}: entry {i} has an invalid version range {versions!r}") from None
            entries.append(BlockEntry(canonicalize_name(item["name"]), versions, item["reason"].strip()))
        updated = raw.get("updated") if isinstance(raw.get("updated"), str) else None
        return cls(entries, updated)

    def merged_with(self, newer: Blocklist) -> Blocklist:
        """This list with ``newer``'s entries replacing this one's for the names it lists, and added otherwise."""
        names = {e.name for e in newer.entries}
        kept = [e for e in self.entries if e.name not in names]
        dates = [d for d in (self.updated, newer.updated) if d]
        return Blocklist(kept + list(newer.entries), max(dates) if dates else None,
                         self.warnings + newer.warnings)


def shipped_path() -> Path:
    return resources_dir() / FILE_NAME


def user_path() -> Path:
    return paths.config_dir() / FILE_NAME


def load_blocklist(shipped: Path | None = None, user: Path | None = None) -> Blocklist:
    """The list in effect: the shipped one, updated by the user copy when there is a valid one."""
    shipped = shipped or shipped_path()
    user = user or user_path()
    try:
        base = Blocklist.from_json(json.loads(shipped.read_text(encoding="utf-8")), str(shipped))
    except (OSError, ValueError) as exc:
        # Studiolo's own file: a broken one is a packaging bug, surfaced in the log and on the list's warnings.
        log.error("the shipped plugin blocklist cannot be read: %s", exc)
        base = Blocklist(warnings=[f"The shipped plugin blocklist cannot be read: {exc}"])
    if not user.is_file():
        return base
    try:
        newer = Blocklist.from_json(json.loads(user.read_text(encoding="utf-8")), str(user))
    except (OSError, ValueError) as exc:
        log.warning("ignoring the plugin blocklist at %s: %s", user, exc)
        base.warnings.append(f"The plugin blocklist at {user} was ignored: {exc}")
        return base
    return base.merged_with(newer)
