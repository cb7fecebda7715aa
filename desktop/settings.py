"""The user's settings, stored as JSON in the config folder.

Unknown keys are kept as they are (a newer Studiolo's settings survive a round trip through an older one). A
corrupt file is moved aside (``settings.json.corrupt``) and defaults are used, with a warning the UI can show —
never a crash at start.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop import paths
from desktop.fileio import atomic_write_json

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"


@dataclass
class Settings:
    """Typed view of the settings file. ``warnings`` collects problems met while reading it."""

    disabled_plugins: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def path(cls) -> Path:
        return paths.config_dir() / SETTINGS_FILE

    @classmethod
    def load(cls) -> Settings:
        path = cls.path()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            return cls()
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            aside = path.with_name(SETTINGS_FILE + ".corrupt")
            try:
                path.replace(aside)
            except OSError:
                aside = path
            message = f"The settings file {path} could not be read ({exc}); defaults are used. It was kept as {aside}."
            log.warning(message)
            return cls(warnings=[message])
        disabled = raw.pop("disabled_plugins", [])
        if not (isinstance(disabled, list) and all(isinstance(n, str) for n in disabled)):
            disabled = []
        return cls(disabled_plugins=sorted(set(disabled)), extra=raw)

    def save(self) -> None:
        atomic_write_json(self.path(), {**self.extra, "disabled_plugins": sorted(set(self.disabled_plugins))})
