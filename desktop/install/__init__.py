"""Installing, updating and uninstalling third-party plugins safely (no Qt here: the GUI runs it on a worker).

* :func:`parse_spec` validates what to install (a name with an optional version range, a wheel, a source archive
  or a plugin folder) and refuses anything that could smuggle options or URLs to pip.
* :class:`Installer` plans an install with pip's dry run under constraints that pin every installed package,
  refuses plans that would change the environment or do not fit this Studiolo, installs accepted plans and
  checks the result; it also updates and uninstalls plugins. Its helpers: :mod:`desktop.install.staging` (the
  plan's wheels; a source folder built from a copy), :mod:`desktop.install.ownership` (no wheel writes into a
  package another distribution owns), :mod:`desktop.install.load_check` (the installed plugin loads as Studiolo
  would load it, hooks included).
* :class:`PipRunner` runs pip in the target environment as a subprocess, streaming its output.
* :mod:`desktop.install.blocklist` holds the known-bad packages; :data:`RIGHTS_NOTICE` is shown once before the
  first install.
"""

from desktop.install.blocklist import BlockEntry, Blocklist, load_blocklist
from desktop.install.errors import InstallCancelled, PluginInstallError
from desktop.install.installer import (
    InstalledPlugin,
    Installer,
    InstallResult,
    Plan,
    PlannedPackage,
    UninstallResult,
)
from desktop.install.notice import RIGHTS_NOTICE, acknowledge_notice, notice_acknowledged
from desktop.install.pip_runner import PipResult, PipRunner
from desktop.install.specs import InstallRequest, Kind, parse_spec, validate_name

__all__ = [
    "BlockEntry",
    "Blocklist",
    "InstallCancelled",
    "InstallRequest",
    "InstallResult",
    "InstalledPlugin",
    "Installer",
    "Kind",
    "PipResult",
    "PipRunner",
    "Plan",
    "PlannedPackage",
    "PluginInstallError",
    "RIGHTS_NOTICE",
    "UninstallResult",
    "acknowledge_notice",
    "load_blocklist",
    "notice_acknowledged",
    "parse_spec",
    "validate_name",
]
