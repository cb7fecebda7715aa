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
from typing import TYPE_CHECKING, Any

from desktop import paths
from desktop.api.files import atomic_write_json

if TYPE_CHECKING:
    from desktop.api.remote import RemoteServer

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
THEMES = ("system", "light", "dark")
"""The values of the ``theme`` setting."""


@dataclass
class Settings:
    """Typed view of the settings file. ``warnings`` collects problems met while reading it.

    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. ``memory_budget_mb``: how much memory loaded
    models may take before the least recently used is unloaded (None: half the machine's RAM).
    ``idle_unload_minutes``: unload a model nobody used for this long (0: never). ``allow_pickle``: load
    pickle-format weights (off: they can run code). ``output_dir``: where outputs are saved (None: the data
    folder). ``hf_token``: a Hugging Face token for gated models (``HF_TOKEN`` is used when unset).
    ``first_run_done``: the welcome page was dealt with (models set up or skipped); it is not shown again.
    ``cancel_grace_seconds``: how long a cancelled job's generator is given to stop on its own before its worker
    process is ended (the job then ends cancelled with what it had made).
    ``theme``: ``system`` (light or dark as the system's colour scheme says), ``light`` or ``dark``.
    Provenance (docs/provenance.md): ``sign_outputs``: add Content Credentials (C2PA) to every image and audio
    output; ``sign_include_prompt``: record the prompts in them; ``signing_certificate``/``signing_key``: PEM files
    of the user's own certificate chain and key (None: Studiolo's own, made on first use); ``watermark``: ask
    generators to mark their outputs with an invisible watermark (off by default).
    ``remote_servers``: the OpenAI-compatible servers the user added (Settings → Servers, ``studiolo servers``), each
    ``{"name", "url", "api_key", "concurrency"}`` (:class:`desktop.api.RemoteServer`); read them with
    :meth:`servers`. The file is owner-only, so their keys are kept as the Hugging Face token is.
    """

    disabled_plugins: list[str] = field(default_factory=list)
    device: str = "auto"
    memory_budget_mb: int | None = None
    idle_unload_minutes: float = 15.0
    allow_pickle: bool = False
    output_dir: str | None = None
    hf_token: str | None = None
    first_run_done: bool = False
    cancel_grace_seconds: float = 5.0
    theme: str = "system"
    sign_outputs: bool = True
    sign_include_prompt: bool = True
    signing_certificate: str | None = None
    signing_key: str | None = None
    watermark: bool = False
    remote_servers: list[dict[str, Any]] = field(default_factory=list)
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
        settings = cls()
        for name in _TYPED:
            if name not in raw:
                continue
            value = raw.pop(name)
            if _valid(name, value):
                setattr(settings, name, sorted(set(value)) if name == "disabled_plugins" else value)
            else:
                settings.warnings.append(f"Ignored the setting {name}={value!r} (not a valid value).")
        settings.extra = raw
        return settings

    def save(self) -> None:
        """Write the settings atomically. A full disk, or a file where the config folder should be, raises
        :class:`~desktop.destinations.WriteError` (also an ``OSError``) naming the file; the old file is kept."""
        from desktop.destinations import write_error

        values = {name: getattr(self, name) for name in _TYPED}
        values["disabled_plugins"] = sorted(set(self.disabled_plugins))
        path = self.path()
        try:
            atomic_write_json(path, {**self.extra, **values})
        except OSError as exc:
            raise write_error(exc, path, what="the settings") from exc

    def servers(self) -> list[RemoteServer]:
        """The configured remote servers (:class:`desktop.api.RemoteServer`); an entry that cannot be used is left
        out with a warning in ``warnings``, as is a second server of the same name."""
        from desktop.api.remote import RemoteServer

        servers: list[RemoteServer] = []
        for entry in self.remote_servers:
            try:
                server = RemoteServer.from_json(entry)
            except ValueError as exc:
                self.warnings.append(f"Ignored a remote server: {exc}.")
                continue
            if any(s.name == server.name for s in servers):
                self.warnings.append(f"Ignored a second remote server named {server.name!r}.")
                continue
            servers.append(server)
        return servers

    def memory_budget_bytes(self) -> int | None:
        if self.memory_budget_mb is not None:
            return self.memory_budget_mb * 1024 * 1024
        from desktop.engine.memory import total_ram

        total = total_ram()
        return total // 2 if total else None


_TYPED = {f: None for f in ("disabled_plugins", "device", "memory_budget_mb", "idle_unload_minutes", "allow_pickle",
                            "output_dir", "hf_token", "first_run_done", "cancel_grace_seconds", "theme",
                            "sign_outputs", "sign_include_prompt", "signing_certificate", "signing_key",
                            "watermark", "remote_servers")}


def _valid(name: str, value: Any) -> bool:
    if name == "disabled_plugins":
        return isinstance(value, list) and all(isinstance(n, str) for n in value)
    if name == "device":
        from desktop.engine.devices import is_device_name

        return isinstance(value, str) and is_device_name(value)
    if name == "memory_budget_mb":
        return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
    if name in ("idle_unload_minutes", "cancel_grace_seconds"):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if name in ("allow_pickle", "first_run_done", "sign_outputs", "sign_include_prompt", "watermark"):
        return isinstance(value, bool)
    if name == "theme":
        return value in THEMES
    if name == "remote_servers":
        return isinstance(value, list) and all(isinstance(entry, dict) for entry in value)
    return value is None or isinstance(value, str)
