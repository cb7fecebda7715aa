"""The wheels of a plan: what the install will write, built or fetched before anything is installed.

The dry run says which distributions an install adds; :func:`stage_wheels` puts one wheel of each in the plan's
work folder — a local wheel is copied, anything else (a source folder, a source archive, a package from the index)
goes through ``pip wheel --no-deps`` — so that their files can be checked (:mod:`desktop.install.ownership`) and
exactly those wheels installed afterwards.

A plugin's source folder is never built where it is: :func:`copy_source` copies it into the work folder first
(without build leftovers, caches and virtual environments), so pip's metadata step and the build write their
``build/`` and ``*.egg-info`` there, not in the author's folder.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from desktop.install.pip_runner import PipResult, PipRunner

LineCallback = Callable[[str], None]
# Left out of a copied source folder: anywhere in it, and at its top only.
SKIP_ANYWHERE = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")
SKIP_AT_TOP = ("build", "dist", ".venv", "venv", ".tox", ".nox")


def copy_source(folder: Path, dest: Path) -> Path:
    """A copy of the source ``folder`` at ``dest``, without build leftovers (``build/``, ``dist/``,
    ``*.egg-info``), caches and virtual environments; symbolic links are copied as links."""
    top = folder.resolve()

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in SKIP_ANYWHERE or n.endswith((".egg-info", ".pyc"))}
        if Path(directory).resolve() == top:
            skipped |= {n for n in names if n in SKIP_AT_TOP}
        return skipped

    shutil.copytree(top, dest, symlinks=True, ignore=ignore)
    return dest


@dataclass
class Staged:
    """The wheels staged for a plan, by canonical name, or the failed pip run that should have built them."""

    wheels: dict[str, Path] = field(default_factory=dict)
    failed: PipResult | None = None
    missing: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def stage_wheels(runner: PipRunner, items: Sequence[Mapping[str, Any]], dest: Path, *, build_isolation: bool,
                 on_line: LineCallback | None = None, cancel: threading.Event | None = None) -> Staged:
    """One wheel in ``dest`` for each install item of pip's report (its ``metadata`` and ``download_info``)."""
    dest.mkdir(parents=True, exist_ok=True)
    staged = Staged()
    to_build: list[str] = []
    wanted: dict[str, str] = {}
    for item in items:
        meta = item.get("metadata") or {}
        name, version = str(meta.get("name", "")), str(meta.get("version", ""))
        key = canonicalize_name(name)
        wanted[key] = version
        url = str((item.get("download_info") or {}).get("url", ""))
        local = _local_path(url)
        if local is not None and local.suffix == ".whl" and local.is_file():
            staged.wheels[key] = Path(shutil.copy2(local, dest / local.name))
        elif local is not None:
            to_build.append(str(local))  # a source folder (our copy) or a source archive
        elif item.get("is_direct") and url:
            to_build.append(f"{name} @ {url}")
        else:
            to_build.append(f"{name}=={version}")
    if to_build:
        args = ["wheel", "--no-deps", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
                "--wheel-dir", str(dest)]
        if not build_isolation:
            args.append("--no-build-isolation")
        args += runner.index_args
        result = runner.run([*args, *to_build], on_line=on_line, cancel=cancel, cwd=dest)
        staged.log = result.lines
        if not result.ok:
            staged.failed = result
            return staged
        for wheel in dest.glob("*.whl"):
            found = _wheel_name(wheel)
            if found is not None and found[0] in wanted and found[0] not in staged.wheels \
                    and _same_version(found[1], wanted[found[0]]):
                staged.wheels[found[0]] = wheel
    staged.missing = sorted(key for key in wanted if key not in staged.wheels)
    return staged


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(parsed.path))


def _wheel_name(wheel: Path) -> tuple[str, str] | None:
    try:
        name, version, _build, _tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename:
        return None
    return canonicalize_name(name), str(version)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b
