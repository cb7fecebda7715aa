"""Shared test set-up: every test runs with its own Studiolo home, offscreen Qt, and no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"

# The helper modules that define fixtures (tiny models, a local hub, pip environments), registered once for every test
# file: a test asks for `tiny_sd` or `hub_server` by name and imports only the helpers' plain names.
pytest_plugins = ["audio_models", "hub_server", "image_models", "pip_env", "text_models"]


@pytest.fixture(autouse=True)
def _isolated_home(studiolo_home: Path) -> Path:
    """No test reads or writes the developer's own settings, library or model cache."""
    return studiolo_home



@pytest.fixture(autouse=True)
def _closed_windows_deleted():
    """After each test, the parentless windows it left closed are deleted (pytest-qt only closes them): otherwise
    they pile up by the thousand and every later theme or style change polishes them all again (seconds a test)."""
    yield
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    for widget in app.topLevelWidgets():
        if widget.parent() is None and not widget.isVisible():
            widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def small_disk(tmp_path: Path):
    """``small_disk(size_kb)`` -> a folder on a filesystem of that size (a tmpfs; root only)."""
    from disk import can_mount, mounted_tmpfs

    stack = []

    def make(size_kb: int = 256) -> Path:
        if not can_mount():
            pytest.skip("mounting a small filesystem needs root; the injected-ENOSPC tests cover this machine")
        context = mounted_tmpfs(tmp_path / f"disk{len(stack)}", size_kb)
        stack.append(context)
        return context.__enter__()

    yield make
    for context in reversed(stack):
        context.__exit__(None, None, None)
