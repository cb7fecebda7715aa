"""Test set-up: this package's plugin, found by its `studiolo` entry point the way Studiolo finds it.

Installed (`pip install -e .`), pip's metadata declares the entry point. Straight from a checkout, the `plugins`
fixture writes the same metadata, read from pyproject.toml, into the temporary plugin folder of Studiolo's
`studiolo_site` fixture; the code itself is imported from this folder (`pythonpath` in pyproject.toml).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PROJECT = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
ENTRY_POINTS = PROJECT["entry-points"]["studiolo"]


@pytest.fixture
def plugins(studiolo_site, studiolo_plugins):
    """A plugin manager with only this package's plugins loaded (no built-ins, no settings from outside the test)."""
    try:
        metadata.distribution(PROJECT["name"])
    except metadata.PackageNotFoundError:
        studiolo_site.install(PROJECT["name"], version=PROJECT["version"], modules={}, entry_points=ENTRY_POINTS,
                              requires=PROJECT["dependencies"])
    manager = studiolo_plugins(*ENTRY_POINTS)
    for record in manager.plugins.values():
        assert record.status == "loaded", f"{record.name}: {record.error}\n{record.traceback}"
        assert not record.warnings, f"{record.name}: {record.warnings}"  # e.g. a heavy import at module level
    return manager
