"""Where Studiolo keeps its files.

By default the platform's usual places (platformdirs): config (settings, enabled plugins), data (library,
outputs, drafts, demo models) and cache. ``STUDIOLO_HOME`` relocates all three under one folder (tests, portable
installs). Hub models stay in the standard Hugging Face cache (``HF_HOME``), which is not Studiolo's to move.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "studiolo"
HOME_ENV = "STUDIOLO_HOME"


def studiolo_home() -> Path | None:
    """The folder named by ``STUDIOLO_HOME``, or None when it is not set."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def _dir(kind: str) -> Path:
    home = studiolo_home()
    if home is not None:
        return home / kind
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Settings and the enabled/disabled plugin choices."""
    return _dir("config")


def data_dir() -> Path:
    """The library, outputs, drafts, demo models and the log."""
    return _dir("data")


def cache_dir() -> Path:
    """Thumbnails and other things that can be rebuilt."""
    return _dir("cache")


def default_output_dir() -> Path:
    """Where outputs are saved when the user chose no folder in Settings."""
    return data_dir() / "outputs"
