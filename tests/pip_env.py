"""A throwaway Python environment for the plugin-installer tests, made once per test session — never the
developer's ``.venv`` — and tiny plugin packages built at test time.

The environment is ``python -m venv --without-pip`` made with the base interpreter of the running Python, with:

* pip and setuptools copied from the running environment into a ``tools`` folder the venv reads through a
  ``.pth`` file (copies: nothing done in the throwaway environment can reach the ``.venv``; and no index is
  needed to set it up);
* pluggy, filelock and packaging copied into its site-packages as ordinary installed distributions (the constraint
  tests need a real installed package a plugin can conflict with; the installer's load check runs Studiolo's plugin
  loader, which needs them);
* a stand-in for Studiolo's distribution: the name, version and built-in entry points of the real one, without its
  dependencies, and — like the editable install of a development checkout — the checkout's ``desktop`` and
  ``plugins`` packages importable through a ``.pth`` file and named in its ``top_level.txt``. (A real editable
  install would bring PySide6, numpy, … as requirements, and pip's resolver checks an installed distribution's own
  requirements, which cannot be met offline in a throwaway env.)

Each test gets a copy of that environment (:func:`pip_env`: a few kB; the big ``tools`` folder is shared), so tests
that install do not see each other's plugins. Every pip run gets an environment without the machine's pip
configuration (``PIP_CONFIG_FILE`` set to the null device, no ``PIP_*`` variables), and ``--no-index`` with explicit
``--find-links`` folders: nothing touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from plugin_sources import echo

from desktop import __version__
from desktop.install import Blocklist, Installer, PipRunner

ROOT = Path(__file__).resolve().parent.parent
STUDIOLO_RANGE = "studiolo>=0.2,<0.3"
TOP_LEVEL = ("desktop", "plugins")  # Studiolo's import packages


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without the machine's pip configuration (PIP_FIND_LINKS, index URLs, config files, global
    constraints) and without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra or {})
    return env


@dataclass
class PipEnv:
    """A throwaway virtual environment."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @property
    def site_packages(self) -> Path:
        return Path(self.run_python("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())

    def runner(self, *find_links: Path, index_args: Sequence[str] | None = None) -> PipRunner:
        """A runner for this environment; by default offline (``--no-index``) with the given wheel folders."""
        if index_args is None:
            index_args = ["--no-index"] + [a for d in find_links for a in ("--find-links", str(d))]
        return PipRunner(self.python, index_args=index_args, env=clean_environ())

    def installer(self, *find_links: Path, blocklist: Blocklist | None = None,
                  index_args: Sequence[str] | None = None) -> Installer:
        return Installer(self.runner(*find_links, index_args=index_args), build_isolation=False,
                         blocklist=blocklist)

    def freeze(self) -> dict[str, str]:
        return self.runner().freeze()

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), "-m", "pip", *args], capture_output=True, text=True,
                              env=clean_environ(), timeout=300, check=False)

    def pip_background(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(self.python), "-m", "pip", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=clean_environ())

    def run_python(self, code: str) -> str:
        done = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, env=clean_environ(),
                              timeout=120, check=True)
        return done.stdout

    def entry_points(self) -> dict[str, str]:
        """The ``studiolo`` entry points this environment's Python sees: {name: distribution}."""
        code = ("import json; from importlib import metadata\n"
                "print(json.dumps({ep.name: ep.dist.name for ep in metadata.entry_points(group='studiolo')}))")
        return json.loads(self.run_python(code))

    def copy(self, dest: Path) -> PipEnv:
        shutil.copytree(self.root, dest, symlinks=True)
        return PipEnv(dest)


def _base_python() -> str:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


def _copy_distribution(name: str, dest: Path) -> None:
    """Copy an installed distribution's top-level files (package folders, the .dist-info) into ``dest``."""
    dist = metadata.distribution(name)
    site = Path(dist.locate_file(""))
    tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
    for top in sorted(tops):
        source = site / top
        if source.is_dir():
            shutil.copytree(source, dest / top, symlinks=True, dirs_exist_ok=True)
        elif source.is_file() and source.suffix != ".pth":
            shutil.copy2(source, dest / top)


def _studiolo_stand_in(site: Path, sources: Path) -> None:
    """The studiolo distribution's metadata (name, version, built-in entry points), none of its dependencies; its
    packages are the checkout's, linked from ``sources`` (a folder a ``.pth`` file puts on the path)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    builtins = project["entry-points"]["studiolo"]
    sources.mkdir()
    for package in TOP_LEVEL:
        (sources / package).symlink_to(ROOT / package, target_is_directory=True)
    pth = f"__editable__.studiolo-{__version__}.pth"
    (site / pth).write_text(f"{sources}\n", encoding="utf-8")
    info = site / f"studiolo-{__version__}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: studiolo\nVersion: {__version__}\n"
                                   "Summary: stand-in for the installer tests\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[studiolo]\n" + "".join(f"{k} = {v}\n" for k, v in builtins.items()),
                                           encoding="utf-8")
    (info / "INSTALLER").write_text("studiolo-tests\n", encoding="utf-8")
    (info / "top_level.txt").write_text("".join(f"{p}\n" for p in TOP_LEVEL), encoding="utf-8")
    files = ["METADATA", "entry_points.txt", "INSTALLER", "top_level.txt", "RECORD"]
    (info / "RECORD").write_text(f"{pth},,\n" + "".join(f"{info.name}/{f},,\n" for f in files), encoding="utf-8")


def make_base_env(folder: Path) -> PipEnv:
    tools = folder / "tools"
    tools.mkdir(parents=True)
    for name in ("pip", "setuptools"):
        _copy_distribution(name, tools)
    root = folder / "base"
    subprocess.run([_base_python(), "-m", "venv", "--without-pip", str(root)], check=True, timeout=120,
                   env=clean_environ())
    env = PipEnv(root)
    site = env.site_packages
    (site / "studiolo-test-tools.pth").write_text(str(tools) + "\n", encoding="utf-8")
    for name in ("pluggy", "filelock", "packaging"):
        _copy_distribution(name, site)
    _studiolo_stand_in(site, folder / "studiolo-sources")
    return env


# -- tiny plugin packages ----------------------------------------------------------------------------------------


def plugin_source(name: str, register: str = "register(Echo())") -> str:
    """A working plugin module for the distribution ``name``: one text generator, ``test.<name>``; ``register``
    is its hook's body (tests/plugin_sources.py)."""
    return echo("test." + name.replace("-", "_"), register=register)


def write_project(folder: Path, name: str, version: str = "1.0", *, dependencies: Sequence[str] = (STUDIOLO_RANGE,),
                  entry_point: bool = True, source: str | None = None, setup_py: str | None = None,
                  packages: Sequence[str] = ()) -> Path:
    """A plugin project: pyproject.toml (setuptools) and one module named after the distribution — by default a
    working plugin (:func:`plugin_source`) when it has an entry point, a plain module otherwise — and the
    (empty) ``packages`` named."""
    module = name.replace("-", "_")
    if source is None:
        source = plugin_source(name) if entry_point else "VALUE = 1\n"
    project = folder / f"{name}-{version}"
    project.mkdir(parents=True)
    deps = ", ".join(json.dumps(d) for d in dependencies)
    eps = f'\n[project.entry-points.studiolo]\n{module.removeprefix("studiolo_")} = "{module}"\n' if entry_point else ""
    if setup_py is None:
        (project / "pyproject.toml").write_text(
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n{eps}\n'
            f'[tool.setuptools]\npy-modules = ["{module}"]\npackages = {json.dumps(list(packages))}\n',
            encoding="utf-8")
    else:
        (project / "setup.py").write_text(setup_py, encoding="utf-8")
    (project / f"{module}.py").write_text(source, encoding="utf-8")
    for package in packages:
        (project / package).mkdir()
        (project / package / "__init__.py").write_text("", encoding="utf-8")
    return project


def make_wheel(folder: Path, name: str, version: str = "1.0", *, files: dict[str, str],
               requires: Sequence[str] = (STUDIOLO_RANGE,), entry_points: dict[str, str] | None = None) -> Path:
    """A wheel written directly (no build): ``files`` (path in the wheel: text), its metadata and RECORD."""
    base = f"{name.replace('-', '_')}-{version}"
    info = f"{base}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    contents = dict(files)
    contents[f"{info}/METADATA"] = meta
    contents[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: studiolo-tests\nRoot-Is-Purelib: true\n"
                                 "Tag: py3-none-any\n")
    if entry_points:
        contents[f"{info}/entry_points.txt"] = "[studiolo]\n" + "".join(f"{k} = {v}\n"
                                                                        for k, v in entry_points.items())
    record = "".join(f"{path},,\n" for path in contents) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{base}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


@dataclass
class Wheels:
    """Plugin wheels built once per session: ``main`` holds one version of each; ``v2`` newer versions."""

    main: Path
    v2: Path
    foreign: Path  # a wheel renamed to another platform's tag
    projects: Path  # source folders (install-from-folder tests)
    empty: Path

    def wheel(self, name: str, folder: Path | None = None) -> Path:
        prefix = name.replace("-", "_") + "-"
        return next(p for p in (folder or self.main).iterdir() if p.name.startswith(prefix))


FAIL_IN_BUILD = """\
import sys
from setuptools import setup
if "bdist_wheel" in sys.argv:
    raise RuntimeError("this plugin cannot be built here")
setup(name="studiolo-failbuild", version="1.0", py_modules=["studiolo_failbuild"],
      install_requires=["studiolo>=0.2,<0.3"], entry_points={"studiolo": ["failbuild = studiolo_failbuild"]})
"""

FAIL_IN_METADATA = """\
raise RuntimeError("setup.py refuses to run")
"""


def build_wheels(env: PipEnv, folder: Path) -> Wheels:
    projects = folder / "projects"
    main, v2, foreign, empty = (folder / n for n in ("wheels", "wheels-v2", "foreign", "empty"))
    for d in (main, v2, foreign, empty):
        d.mkdir(parents=True)
    to_main = [
        write_project(projects, "studiolo-hello"),
        write_project(projects, "studiolo-helper-user", dependencies=[STUDIOLO_RANGE, "helper-lib>=1"]),
        write_project(projects, "helper-lib", dependencies=[], entry_point=False),
        write_project(projects, "studiolo-raises", source='raise RuntimeError("broken on purpose")\n'),
        write_project(projects, "studiolo-badhook",
                      source=plugin_source("studiolo-badhook", register="raise RuntimeError('boom in hook')")),
        write_project(projects, "studiolo-badgen", source=plugin_source("studiolo-badgen", register="register(Echo)")),
        write_project(projects, "studiolo-no-entry", entry_point=False),
        write_project(projects, "not-a-plugin", dependencies=[]),
        write_project(projects, "studiolo-future", dependencies=["studiolo>=9,<10"]),
        write_project(projects, "studiolo-api-one", dependencies=["studiolo>=0.1,<0.2"]),  # made for API 0.1
        write_project(projects, "studiolo-old-pluggy", dependencies=[STUDIOLO_RANGE, "pluggy<0.1"]),
    ]
    to_v2 = [write_project(projects / "v2", "studiolo-hello", "1.1")]
    half = len(to_main) // 2
    builds = [env.pip_background("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dest),
                                 *map(str, sources))
              for dest, sources in ((main, to_main[:half]), (main, to_main[half:]), (v2, to_v2))]
    for build in builds:  # in parallel: each build is mostly waiting on setuptools subprocesses
        out, _ = build.communicate(timeout=300)
        assert build.returncode == 0, out
    write_project(projects, "studiolo-failbuild", setup_py=FAIL_IN_BUILD)
    write_project(projects, "studiolo-failmeta", setup_py=FAIL_IN_METADATA)
    hello = next(main.glob("studiolo_hello-1.0-*.whl"))
    shutil.copy(hello, foreign / "studiolo_hello-1.0-py3-none-win_arm64.whl")
    return Wheels(main, v2, foreign, projects, empty)


_SESSION: dict[str, tuple[PipEnv, Wheels]] = {}


@pytest.fixture(scope="session")
def pip_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipEnv, Wheels]:
    """The base throwaway environment and the plugin wheels, made once per test session (shared by every test
    module that imports this fixture)."""
    if "made" not in _SESSION:
        folder = tmp_path_factory.mktemp("pip-session")
        env = make_base_env(folder)
        _SESSION["made"] = (env, build_wheels(env, folder))
    return _SESSION["made"]


@pytest.fixture
def pip_env(pip_session: tuple[PipEnv, Wheels], tmp_path: Path) -> PipEnv:
    """A fresh copy of the throwaway environment for one test."""
    return pip_session[0].copy(tmp_path / "env")


@pytest.fixture
def wheels(pip_session: tuple[PipEnv, Wheels]) -> Wheels:
    return pip_session[1]
