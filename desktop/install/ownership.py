"""Import-name safety: a plugin's packages must not write into import names other distributions own.

Two distributions that write into the same package (a plugin shipping ``desktop/`` or ``plugins/``, Studiolo's
own, or ``pluggy/``) overwrite each other's files, and uninstalling one breaks the other. Before an install, the
files of every wheel the plan would install are compared with the installed distributions':

* a distribution's **import units** are the shallowest regular packages its files lie in (a folder with an
  ``__init__``), and its top-level modules and files; files in a namespace folder (no ``__init__``, like
  ``google/`` or ``nvidia/``, which many distributions share) are units by their own path;
* two units **clash** when one is the other or lies inside it: ``desktop`` and ``desktop.evil``, ``nvidia`` (a
  wheel making the shared folder its own package) and ``nvidia.cublas``;
* what an installed distribution owns is read from its ``RECORD`` (its file list) and, for names its files do
  not show (an editable install such as Studiolo's in a development checkout), from its ``top_level.txt``;
* a package folder several installed distributions already share (the ``nvidia/__init__.py`` every CUDA wheel
  ships) is treated as a namespace: what is inside it still belongs to each.

A wheel's files are its archive's members (what pip writes, whatever its ``RECORD`` says), the ``.data/purelib``
and ``.data/platlib`` folders counted in site-packages.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

Unit = tuple[str, ...]
MODULE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pyd")
SITE_DATA = ("purelib", "platlib")  # the .data folders a wheel installs into site-packages


@dataclass(frozen=True)
class Owner:
    """A distribution and the import units its files occupy."""

    name: str
    version: str
    units: frozenset[Unit]

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def describe(self) -> str:
        return f"{self.name} {self.version}"


def wheel_files(wheel: Path) -> list[str]:
    """The paths, relative to site-packages, that installing ``wheel`` writes (its ``.data`` folders that go
    elsewhere — scripts, headers, data — are left out)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    files = []
    for name in names:
        if name.endswith("/"):
            continue
        top, _, rest = name.partition("/")
        if top.endswith(".data"):
            kind, _, inner = rest.partition("/")
            if kind in SITE_DATA and inner:
                files.append(inner)
            continue
        files.append(name)
    return files


def _module_name(file_name: str) -> str:
    """``foo.py``, ``foo.cpython-311-x86_64-linux-gnu.so`` → ``foo``; other files keep their name."""
    if file_name.endswith(MODULE_SUFFIXES):
        return file_name.split(".", 1)[0]
    return file_name


def import_units(files: Iterable[str], namespaces: Collection[Unit] = ()) -> set[Unit]:
    """The import units (see the module's docstring) that ``files`` (paths relative to site-packages) occupy;
    the package folders in ``namespaces`` count as namespace folders."""
    paths = []
    for text in files:
        parts = tuple(part for part in text.replace("\\", "/").split("/") if part not in ("", "."))
        if (not parts or text.startswith(("/", "\\")) or ":" in parts[0] or parts[0] == ".."
                or "__pycache__" in parts or parts[0].endswith((".dist-info", ".egg-info", ".data"))):
            continue  # absolute, outside site-packages (scripts), compiled caches, metadata
        paths.append(parts)
    namespaces = set(namespaces)
    packages = {parts[:-1] for parts in paths if len(parts) > 1 and _module_name(parts[-1]) == "__init__"}
    packages -= namespaces
    units: set[Unit] = set()
    for parts in paths:
        if parts[:-1] in namespaces and _module_name(parts[-1]) == "__init__":
            continue  # the shared folder's __init__, which each of them ships
        package = next((parts[:i] for i in range(1, len(parts)) if parts[:i] in packages), None)
        units.add(package if package is not None else parts[:-1] + (_module_name(parts[-1]),))
    return units


@dataclass(frozen=True)
class Installed:
    """The installed distributions with their import units, and the package folders several of them share."""

    owners: list[Owner]
    shared: frozenset[Unit]


def installed_owners(sys_path: Sequence[str], *, skip: Iterable[str] = ()) -> Installed:
    """The distributions installed on ``sys_path`` (the target environment's), each with its import units;
    those named in ``skip`` (about to be replaced) are left out."""
    skipped = {canonicalize_name(name) for name in skip}
    found: dict[str, tuple[metadata.Distribution, list[str]]] = {}
    for dist in metadata.distributions(path=list(sys_path)):
        name = dist.metadata["Name"]
        if name and canonicalize_name(name) not in found:  # the first one on the path is the one imported
            found[canonicalize_name(name)] = (dist, _record(dist))
    first = [import_units(files) for _dist, files in found.values()]
    shared = frozenset(unit for unit in set().union(*first) if sum(unit in units for units in first) > 1)
    owners = []
    for key, (dist, files) in found.items():
        if key in skipped:
            continue
        units = import_units(files, shared)
        tops = {unit[0] for unit in units}
        declared = (dist.read_text("top_level.txt") or "").split()
        units |= {(top,) for top in declared if top not in tops}  # an editable install's packages
        owners.append(Owner(dist.metadata["Name"], dist.version, frozenset(units)))
    return Installed(owners, shared)


def _record(dist: metadata.Distribution) -> list[str]:
    """The paths a distribution's RECORD lists (read directly: ``dist.files`` is slow on large ones)."""
    text = dist.read_text("RECORD")
    if text is None:
        return [str(f) for f in dist.files or ()]
    return [row[0] for row in csv.reader(text.splitlines()) if row]


def wheel_owner(wheel: Path, name: str, version: str, installed: Installed) -> Owner:
    """The import units the wheel of ``name`` ``version`` would occupy."""
    return Owner(name, version, frozenset(import_units(wheel_files(wheel), installed.shared)))


def clashes(new: Sequence[Owner], installed: Installed) -> list[str]:
    """Why installing the ``new`` distributions (one :class:`Owner` per wheel) would write into import names
    others own — the installed distributions' and each other's; empty when nothing clashes."""
    reasons: list[str] = []
    for i, wheel in enumerate(new):
        others = [o for o in installed.owners if o.key != wheel.key] + list(new[i + 1:])
        for other in others:
            for unit in sorted(wheel.units):
                reason = _clash(wheel, unit, other)
                if reason and reason not in reasons:
                    reasons.append(reason)
    return reasons


def _clash(wheel: Owner, unit: Unit, other: Owner) -> str | None:
    for theirs in sorted(other.units):
        if unit[:len(theirs)] == theirs:  # inside (or equal to) what the other owns
            return (f"{wheel.describe()} would write files into {'.'.join(theirs)}, which belongs to "
                    f"{other.describe()}.")
        if theirs[:len(unit)] == unit:  # it would make its own package of a folder the other has files in
            return (f"{wheel.describe()} would make {'.'.join(unit)} its own package, but {other.describe()} has "
                    f"{'.'.join(theirs)} there.")
    return None
