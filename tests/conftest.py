"""Shared test set-up: every test runs with its own Studiolo home, offscreen Qt, and no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _isolated_home(studiolo_home: Path) -> Path:
    """No test reads or writes the developer's own settings, library or model cache."""
    return studiolo_home

