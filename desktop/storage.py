"""Per-generator persistent storage for panels (drafts, presets): JSON values by key plus a folder of files."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from desktop import paths
from desktop.api import PanelStorage
from desktop.api.files import atomic_write_json

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class JsonPanelStorage(PanelStorage):
    """Values live in ``DATA/panels/<generator id>/values.json`` (written atomically on every set); files in the
    same folder. A corrupt values file is set aside and starts empty rather than failing the panel."""

    def __init__(self, generator_id: str, root: Path | None = None) -> None:
        self._dir = (root or paths.data_dir() / "panels") / _SAFE.sub("_", generator_id)
        self._lock = threading.Lock()
        self._values: dict[str, Any] | None = None

    @property
    def directory(self) -> Path:
        self._dir.mkdir(parents=True, exist_ok=True)
        return self._dir

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            path = self._dir / "values.json"
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._values = data if isinstance(data, dict) else {}
            except FileNotFoundError:
                self._values = {}
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                log.warning("panel storage %s unreadable (%s); set aside", path, exc)
                try:
                    path.replace(path.with_name("values.json.corrupt"))
                except OSError:
                    pass
                self._values = {}
        return self._values

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._load().get(key, default)

    def set(self, key: str, value: Any) -> None:
        json.dumps(value)  # refuse what cannot be stored before changing anything
        with self._lock:
            values = dict(self._load())
            values[key] = value
            atomic_write_json(self.directory / "values.json", values)
            self._values = values

    def delete(self, key: str) -> None:
        with self._lock:
            values = dict(self._load())
            if values.pop(key, None) is not None or key in self._load():
                atomic_write_json(self.directory / "values.json", values)
            self._values = values

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._load())
