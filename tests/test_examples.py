"""The example plugins in examples/ go through the real pip path, offline, and pass their own tests installed.

pip builds each example with the setuptools already installed (`--no-build-isolation`, `--no-index`: no network)
into a throwaway `--target` folder, never this environment. Each example's tests then run in a fresh interpreter
whose `sys.path` holds that folder and not the example's source, so the installed copy is what they import and
what Studiolo discovers by entry point. Their tiny models are built at test time by their `build_demo_model`.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT

from desktop.plugins import discover
from desktop.testing import PluginSite


@dataclass(frozen=True)
class Example:
    """One example plugin: its folder in examples/ (also its entry-point name), its names, and how many of its
    tests run without a GPU."""

    folder: str
    distribution: str
    module: str
    generator_id: str
    tests: int


EXAMPLES_INSTALLED = [
    Example("patterns", "studiolo-patterns", "studiolo_patterns", "image.patterns", tests=18),
    Example("tinyvae", "studiolo-tinyvae", "studiolo_tinyvae", "image.tinyvae", tests=9),
]
BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info", ".pytest_cache")


def offline_env(**extra: str) -> dict[str, str]:
    """This environment without pip's settings (variables and config files: a find-links folder, an index, a user
    install): pip does only what the command says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.pop("STUDIOLO_LOAD_PLUGINS", None)
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Both examples, copied (pip builds in the source folder) and installed by pip into one `--target` folder."""
    work = tmp_path_factory.mktemp("examples")
    sources = [shutil.copytree(EXAMPLES / e.folder, work / "src" / e.folder, ignore=BUILD_LEFTOVERS)
               for e in EXAMPLES_INSTALLED]
    target = work / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--no-cache-dir", "--target", str(target), *map(str, sources)],
        capture_output=True, text=True, env=offline_env(), cwd=work, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.mark.parametrize("example", EXAMPLES_INSTALLED, ids=lambda e: e.folder)
def test_pip_installs_the_package_with_its_entry_point(site, example):
    dist_info = site / f"{example.module}-1.0.0.dist-info"
    assert (site / example.module / "__init__.py").is_file()
    assert (dist_info / "entry_points.txt").read_text().split() == [
        "[studiolo]", example.folder, "=", example.module]
    assert "Requires-Dist: studiolo<0.3,>=0.2" in (dist_info / "METADATA").read_text()


@pytest.mark.parametrize("example", EXAMPLES_INSTALLED, ids=lambda e: e.folder)
def test_the_installed_example_passes_its_own_tests(site, example, tmp_path):
    run = tmp_path / example.folder  # the tests and pyproject.toml, but not the package's source
    shutil.copytree(EXAMPLES / example.folder / "tests", run / "tests", ignore=BUILD_LEFTOVERS)
    shutil.copy(EXAMPLES / example.folder / "pyproject.toml", run)
    env = offline_env(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), QT_QPA_PLATFORM="offscreen")

    where = subprocess.run([sys.executable, "-c", f"import {example.module}; print({example.module}.__file__)"],
                           capture_output=True, text=True, env=env, cwd=run, timeout=60)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site)

    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(run / "tests")],
                            capture_output=True, text=True, env=env, cwd=run, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed[1]) >= example.tests, summary  # they ran (a GPU test may skip)


def test_an_example_passes_its_own_tests_from_its_source_tree_with_no_conftest(tmp_path):
    """Not installed: Studiolo's `studiolo_project` fixture registers it by the entry point in its pyproject.toml."""
    assert not list(EXAMPLES.rglob("conftest.py"))
    source = shutil.copytree(EXAMPLES / "patterns", tmp_path / "patterns", ignore=BUILD_LEFTOVERS)
    env = offline_env(PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "18 passed" in result.stdout.strip().splitlines()[-1]


@pytest.fixture
def on_path(site):
    """The pip --target folder on sys.path, as Python puts a site folder there; removed afterwards."""
    plugin_site = PluginSite(site)
    plugin_site.activate()
    yield site
    plugin_site.deactivate()
    for example in EXAMPLES_INSTALLED:
        sys.modules.pop(example.module, None)
    importlib.invalidate_caches()


def test_studiolo_discovers_the_installed_examples_by_entry_point(on_path, studiolo_plugins, studiolo_run):
    eps = {ep.name: ep for ep in discover()}
    manager = studiolo_plugins(*(e.folder for e in EXAMPLES_INSTALLED))
    for example in EXAMPLES_INSTALLED:
        assert Path(eps[example.folder].dist.locate_file("")) == on_path
        record = manager.plugins[example.folder]
        assert record.status == "loaded", record.error
        assert (record.distribution, record.version) == (example.distribution, "1.0.0")
        assert record.generators == [example.generator_id] and record.warnings == []  # torch imported lazily
        assert Path(sys.modules[example.module].__file__).is_relative_to(on_path)
    result = studiolo_run(manager.generator("image.patterns"), {"width": 16, "height": 16}, model="demo", seed=1)
    assert result.outputs[0].image.size == (16, 16)


TUTORIAL = (ROOT / "docs" / "plugin-tutorial.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def test_the_authors_guide_covers_every_api_name_every_hook_and_every_fixture():
    import desktop.api
    from desktop.plugins import PluginManager
    from desktop.testing import pytest_plugin

    missing = [name for name in desktop.api.__all__ if f"`{name}`" not in TUTORIAL]
    assert not missing, f"public API names missing from docs/plugin-tutorial.md's reference: {missing}"
    hooks = [h for h in PluginManager().hook_names() if f"### `{h}" not in TUTORIAL]
    assert not hooks, f"hooks without a section in docs/plugin-tutorial.md: {hooks}"
    fixtures = [name for name in dir(pytest_plugin) if name.startswith("studiolo_") and f"`{name}`" not in TUTORIAL]
    assert not fixtures, f"fixtures missing from docs/plugin-tutorial.md: {fixtures}"


def test_the_guides_lead_to_the_tutorial_the_examples_and_publishing():
    assert "(plugin-tutorial.md)" in GUIDE and "studiolo plugins new" in GUIDE
    for example in EXAMPLES_INSTALLED:
        assert f"(../examples/{example.folder})" in GUIDE and f"(../examples/{example.folder})" in TUTORIAL
        assert (EXAMPLES / example.folder / "README.md").is_file()
    assert all(step in TUTORIAL for step in ("python -m build", "twine check", "twine upload", "studiolo>=0.2,<0.3"))
