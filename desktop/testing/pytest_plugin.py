"""Studiolo's pytest plugin (registered as a ``pytest11`` entry point), for testing generator plugins.

Fixtures:

* ``studiolo_home`` — a temporary ``STUDIOLO_HOME`` (and ``HF_HOME``), so tests never touch the user's settings,
  library or model cache.
* ``studiolo_site`` — a :class:`~desktop.testing.PluginSite` on ``sys.path``: ``studiolo_site.install(...)``
  installs a plugin by entry point for the test's duration.
* ``studiolo_plugins`` — ``studiolo_plugins("name", ...)`` returns an isolated, loaded plugin manager with only
  the named plugins (and no settings from outside the test).
* ``studiolo_run`` — :func:`desktop.testing.run_generator`: one job, headless, through the real load/generate.
  ``model`` defaults to ``"default"``: the generator's ``default_model`` (``"demo"``, a path, or None for a
  generator that needs no model).
* ``studiolo_project`` — the plugin package under test: a loaded plugin manager with only the plugins its
  ``pyproject.toml`` declares (``[project.entry-points.studiolo]``), registered without installing the package
  (:func:`desktop.testing.project.register_project`); an installed copy is used as it is. Fails the test's set-up
  when one of them does not load or loads with a warning (a heavy import at module level; a slow import is not
  judged: that depends on the machine).
* ``studiolo_pyproject`` — the ``pyproject.toml`` ``studiolo_project`` reads: the nearest one with a ``[project]``
  table above the test file. Override it in a ``conftest.py`` to test another package.

This module imports only pytest at import time: it is loaded in every pytest run of an environment where
Studiolo is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def studiolo_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("studiolo-home")
    monkeypatch.setenv("STUDIOLO_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE"):
        monkeypatch.delenv(variable, raising=False)  # each would win over HF_HOME: the user's real cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STUDIOLO_LOAD_PLUGINS", raising=False)
    return home


@pytest.fixture
def studiolo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from desktop.testing import PluginSite

    site = PluginSite(tmp_path_factory.mktemp("studiolo-site"))
    site.activate()
    yield site
    site.deactivate()


@pytest.fixture
def studiolo_plugins(studiolo_home: Path) -> Callable[..., Any]:
    from desktop.plugins import PluginManager, discover
    from desktop.settings import Settings

    def make(*names: str) -> PluginManager:
        """A loaded manager over the named entry points only (all of them when no name is given)."""
        eps = [ep for ep in discover() if not names or ep.name in names]
        missing = set(names) - {ep.name for ep in eps}
        if missing:
            raise LookupError(f"no installed plugin named {', '.join(sorted(missing))}")
        return PluginManager(Settings(), entry_points=eps).load()

    return make


@pytest.fixture
def studiolo_run(studiolo_home: Path) -> Callable[..., Any]:
    from desktop.testing import run_generator

    return run_generator


@pytest.fixture
def studiolo_pyproject(request: pytest.FixtureRequest) -> Path:
    """The ``pyproject.toml`` of the plugin package under test: the nearest one with a ``[project]`` table in the
    test file's folder or above it, else in pytest's root folder."""
    from desktop.testing.project import find_pyproject

    found = find_pyproject(Path(request.path).parent) or find_pyproject(request.config.rootpath)
    if found is None:
        pytest.fail(f"No pyproject.toml with a [project] table above {request.path}: studiolo_project needs the "
                    "plugin package's pyproject.toml (or override the studiolo_pyproject fixture).", pytrace=False)
    return found


@pytest.fixture
def studiolo_project(studiolo_pyproject: Path, studiolo_home: Path, studiolo_site: Any,
                     monkeypatch: pytest.MonkeyPatch) -> Any:
    """A loaded plugin manager with only the plugins of the package under test, found by the entry points its
    ``pyproject.toml`` declares, installed or not. How long the import took is not judged (it depends on the
    machine running the tests); a heavy import at module level is."""
    import math

    from desktop.plugins import PluginManager, discover
    from desktop.settings import Settings
    from desktop.testing.project import PluginProject, PluginProjectError, register_project

    try:
        project = PluginProject.read(studiolo_pyproject)
        register_project(project, studiolo_site, monkeypatch.syspath_prepend)
        problem = None
    except PluginProjectError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    eps = [ep for ep in discover() if ep.name in project.entry_points]
    manager = PluginManager(Settings(), entry_points=eps, slow_import=math.inf).load()
    for record in manager.plugins.values():
        if record.status != "loaded":
            pytest.fail(f"The plugin {record.name!r} of {project.name} did not load: {record.error}\n"
                        f"{record.traceback or ''}", pytrace=False)
        if record.warnings:
            pytest.fail(f"The plugin {record.name!r} of {project.name} loaded with warnings: "
                        + "; ".join(record.warnings), pytrace=False)
    return manager
