"""What the window remembers between runs: geometry, the last generator, each page's last params, model and seed.

Stored as JSON in the config folder (``window.json``), written atomically; an unreadable file is ignored.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from desktop import paths
from desktop.api.files import atomic_write_json

log = logging.getLogger(__name__)


def state_path() -> Path:
    return paths.config_dir() / "window.json"


def load_state() -> dict[str, Any]:
    try:
        data = json.loads(state_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        log.warning("window state unreadable (%s); starting fresh", exc)
        return {}


def save_state(state: dict[str, Any]) -> None:
    try:
        atomic_write_json(state_path(), state)
    except OSError as exc:  # a full disk must not stop the app from closing
        log.error("could not save the window state: %s", exc)
