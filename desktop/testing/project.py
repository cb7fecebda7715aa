"""The plugin package under test, registered by the entry points its ``pyproject.toml`` declares, without pip.

A plugin's tests must find its generators the way Studiolo does: through the ``studiolo`` entry points of an
installed distribution. :func:`register_project` makes that true for a package straight from its source tree:

* when the distribution is installed (``pip install -e .``, or a copy pip put on ``sys.path``), its own metadata
  is used, after checking that it declares the entry points ``pyproject.toml`` declares (a stale install is an
  error that says so, never a test of old code);
* otherwise a ``.dist-info`` folder built from ``[project]`` (name, version, dependencies, the ``studiolo``
  entry points) is written into a :class:`~desktop.testing.PluginSite`, and the folder holding the code (the
  project's root, or ``[tool.setuptools] package-dir``'s) is put on ``sys.path`` if it is not there yet.

Used by the ``studiolo_project`` fixture of Studiolo's pytest plugin (:mod:`desktop.testing.pytest_plugin`).
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from desktop.api.errors import StudioloError

__all__ = ["ENTRY_POINT_GROUP", "PluginProject", "PluginProjectError", "find_pyproject", "register_project"]

ENTRY_POINT_GROUP = "studiolo"
"""The entry-point group Studiolo discovers plugins by."""


class PluginProjectError(StudioloError):
    """The package under test cannot be registered: no ``pyproject.toml``, no ``studiolo`` entry point, or an
    installed copy that declares other entry points."""


@dataclass(frozen=True)
class PluginProject:
    """What a plugin package's ``pyproject.toml`` says about it."""

    pyproject: Path  #: the file read
    name: str  #: the distribution's name (``[project] name``)
    version: str  #: ``[project] version``; ``0`` when it is dynamic
    entry_points: dict[str, str]  #: ``[project.entry-points.studiolo]``: plugin name → module (``"pkg"``)
    requires: tuple[str, ...]  #: ``[project] dependencies``: the Studiolo range among them
    import_root: Path  #: the folder the package's code is imported from in a source tree

    @classmethod
    def read(cls, pyproject: Path) -> PluginProject:
        """Read ``pyproject`` or raise :class:`PluginProjectError` saying what is missing and what to do."""
        pyproject = Path(pyproject).resolve()
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PluginProjectError(f"Cannot read {pyproject}: {exc}.",
                                     hint="Fix the file, or point the studiolo_pyproject fixture at another one.") \
                from exc
        project = data.get("project")
        if not isinstance(project, dict) or not isinstance(project.get("name"), str):
            raise PluginProjectError(f"{pyproject} has no [project] table with a name.",
                                     hint="A plugin package declares its name, version and entry points there.")
        entry_points = project.get("entry-points", {}).get(ENTRY_POINT_GROUP)
        if not isinstance(entry_points, dict) or not entry_points:
            raise PluginProjectError(
                f"{pyproject} declares no plugin for Studiolo.",
                hint=f'Add [project.entry-points.{ENTRY_POINT_GROUP}] with a line NAME = "your_module".')
        version = project.get("version")
        return cls(pyproject=pyproject, name=project["name"], version=version if isinstance(version, str) else "0",
                   entry_points={str(k): str(v).strip() for k, v in entry_points.items()},
                   requires=tuple(str(r) for r in project.get("dependencies", ())),
                   import_root=_import_root(pyproject.parent, data.get("tool", {})))

    def installed(self) -> metadata.Distribution | None:
        """The installed distribution of this name visible on ``sys.path``, or None."""
        try:
            return metadata.distribution(self.name)
        except metadata.PackageNotFoundError:
            return None


def _import_root(root: Path, tool: dict[str, Any]) -> Path:
    """Where the code lives: ``[tool.setuptools] package-dir = {"" = "src"}`` or ``packages.find.where``, else the
    project's root."""
    setuptools = tool.get("setuptools", {}) if isinstance(tool, dict) else {}
    package_dir = setuptools.get("package-dir", {})
    if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
        return root / package_dir[""]
    packages = setuptools.get("packages")
    where = packages.get("find", {}).get("where") if isinstance(packages, dict) else None
    if isinstance(where, list) and where and isinstance(where[0], str):
        return root / where[0]
    return root


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[project]`` table in ``start`` or a folder above it, or None."""
    start = Path(start).resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                if "project" in tomllib.loads(candidate.read_text(encoding="utf-8")):
                    return candidate
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
    return None


def register_project(project: PluginProject, site: Any, syspath_prepend: Any) -> str:
    """Make ``project``'s entry points discoverable: ``"installed"`` when an installed copy already declares them,
    ``"source"`` when they were registered in ``site`` (a :class:`~desktop.testing.PluginSite` on ``sys.path``).

    ``syspath_prepend(path)`` puts the folder holding the code on ``sys.path`` (pytest's
    ``monkeypatch.syspath_prepend``, undone after the test) when it is not there already.
    """
    dist = project.installed()
    if dist is not None:
        declared = {ep.name: ep.value.strip() for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
        if declared != project.entry_points:
            raise PluginProjectError(
                f"The installed {project.name} ({dist.locate_file('')}) declares the plugins {declared or 'none'}, "
                f"but {project.pyproject} declares {project.entry_points}.",
                hint="Install it again (pip install -e .), or uninstall it to test it from its source tree.")
        return "installed"
    site.install(project.name, version=project.version, modules={}, entry_points=project.entry_points,
                 requires=list(project.requires))
    if str(project.import_root) not in sys.path:
        syspath_prepend(str(project.import_root))
    return "source"
