"""The errors of installing, updating and uninstalling plugins."""

from __future__ import annotations

from desktop.api.errors import StudioloError


class PluginInstallError(StudioloError):
    """A plugin cannot be installed, updated or uninstalled: a bad spec, a refused plan, a missing environment.
    The message says what was wrong; nothing in the environment was changed unless it says so."""


class InstallCancelled(PluginInstallError):
    """The user cancelled before the install started; nothing was changed."""

    def __init__(self, message: str = "Cancelled before anything was installed; nothing was changed.") -> None:
        super().__init__(message)
