"""Studiolo's pytest plugin (registered as a ``pytest11`` entry point), for testing generator plugins.

Fixtures:

* ``studiolo_home`` — a temporary ``STUDIOLO_HOME`` (and ``HF_HOME``), so tests never touch the user's settings,
  library or model cache.
* ``studiolo_site`` — a :class:`~desktop.testing.PluginSite` on ``sys.path``: ``studiolo_site.install(...)``
  installs a plugin by entry point for the test's duration.
* ``studiolo_plugins`` — ``studiolo_plugins("name", ...)`` returns an isolated, loaded plugin manager with only
  the named plugins (and no settings from outside the test).
* ``studiolo_run`` — :func:`desktop.testing.run_generator`: one job, headless, through the real load/generate.

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
