"""The notice shown once before the first plugin install: plugins run with the user's rights.

Whether it was acknowledged is kept in a small JSON file of its own in the config folder
(``<config>/plugin-install.json``), so installing never rewrites the settings file.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from desktop import paths
from desktop.api.files import atomic_write_json

STATE_FILE = "plugin-install.json"
KEY = "rights_notice_acknowledged"

RIGHTS_NOTICE = (
    "Plugins are programs. A plugin you install runs with your rights on this computer: it can read, change "
    "and delete your files, use the network and start other programs, like any program you install yourself. "
    "Studiolo checks that a plugin fits this Studiolo and is not on its list of known-bad packages, but it cannot "
    "check what a plugin does. Install plugins only from people you trust."
)


def _state_path(folder: Path | None) -> Path:
    return (folder if folder is not None else paths.config_dir()) / STATE_FILE


def _read(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return raw if isinstance(raw, dict) else {}


def notice_acknowledged(folder: Path | None = None) -> bool:
    """Whether the user has seen and accepted :data:`RIGHTS_NOTICE` (``folder``: the config folder)."""
    return bool(_read(_state_path(folder)).get(KEY))


def acknowledge_notice(folder: Path | None = None) -> None:
    """Remember that the user accepted :data:`RIGHTS_NOTICE`; it is not shown again."""
    path = _state_path(folder)
    state = _read(path)
    state[KEY] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(path, state)
