"""`studiolo plugins new`: the package it writes installs by entry point, loads, and passes its own tests as written."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import ROOT
from packaging.specifiers import SpecifierSet

from desktop import __version__
from desktop.api import API_VERSION, StudioloError
from desktop.cli import new_cmd
from desktop.plugins import discover
from desktop.scaffold import (
    KINDS,
    RESERVED_NAMES,
    ScaffoldError,
    plugin_names,
    scaffold,
    studiolo_range,
)

TESTS_PER_KIND = {"text": 5, "image": 6, "audio": 6}


def run_generated_tests(package: Path) -> subprocess.CompletedProcess:
    """The generated package's own test suite, in a fresh interpreter that imports it from its folder."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([str(package), str(ROOT)]))
    env.pop("STUDIOLO_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
                          capture_output=True, text=True, env=env, cwd=package.parent, timeout=300)


def read_pyproject(package: Path) -> dict:
    return tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_package_passes_its_own_tests_as_written(tmp_path, kind):
    package = scaffold(f"my-{kind}", tmp_path, kind=kind)
    assert package == tmp_path / f"studiolo-my-{kind}"
    assert {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", ".gitignore", f"studiolo_my_{kind}/__init__.py", "tests/test_generator.py"}
    # No conftest.py: Studiolo's `studiolo_project` fixture registers the package by the entry point in its
    # pyproject.toml. The package is not installed, so these tests pass only if that registration works.
    result = run_generated_tests(package)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{TESTS_PER_KIND[kind]} passed" in result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_package_installs_by_entry_point_and_runs(tmp_path, kind, studiolo_site, studiolo_plugins,
                                                                studiolo_run):
    package = scaffold("sea-sounds", tmp_path, kind=kind, author="Ann O'Hara \"AJ\"")
    project = read_pyproject(package)["project"]
    assert project["name"] == "studiolo-sea-sounds"
    assert project["dependencies"][0] == f"studiolo{studiolo_range()}"
    assert project["authors"] == [{"name": "Ann O'Hara \"AJ\""}]
    assert project["entry-points"]["studiolo"] == {"sea-sounds": "studiolo_sea_sounds"}
    source = (package / "studiolo_sea_sounds" / "__init__.py").read_text(encoding="utf-8")
    studiolo_site.install(project["name"], version=project["version"], modules={"studiolo_sea_sounds": source},
                          entry_points=project["entry-points"]["studiolo"], requires=project["dependencies"])

    manager = studiolo_plugins("sea-sounds")
    record = manager.plugins["sea-sounds"]
    assert record.status == "loaded", record.error
    assert record.generators == [f"{kind}.sea_sounds"] and record.warnings == []
    result = studiolo_run(manager.generator(f"{kind}.sea_sounds"), model="demo", seed=1)
    assert len(result.outputs) == 1 and result.outputs[0].metadata and result.progress


def test_names_derive_from_the_plugin_name():
    names = plugin_names("sea-sounds", "audio")
    assert (names.distribution, names.module, names.generator_id, names.class_prefix, names.title) == (
        "studiolo-sea-sounds", "studiolo_sea_sounds", "audio.sea_sounds", "SeaSounds", "Sea sounds")


@pytest.mark.parametrize("name", ["", "Tiles", "my plugin", "tiles!", "3d", "a--b", "tiles-", "_tiles", "x" * 41,
                                  "../evil", "a/b", "a\\b", ".hidden", "studiolo", "studiolo-tiles", "image", "text"])
def test_a_bad_name_is_refused_with_a_hint_and_nothing_is_written(tmp_path, name):
    with pytest.raises(ScaffoldError) as info:
        scaffold(name, tmp_path / "out")
    assert info.value.hint and isinstance(info.value, StudioloError)
    assert not (tmp_path / "out").exists()


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ScaffoldError, match="Unknown kind 'video'"):
        scaffold("tiles", tmp_path, kind="video")
    assert list(tmp_path.iterdir()) == []


def test_the_reserved_names_cover_the_built_in_plugins():
    builtins = {ep.name for ep in discover() if ep.dist is not None and ep.dist.metadata["Name"] == "studiolo"}
    assert builtins and builtins <= RESERVED_NAMES


def test_an_existing_folder_is_never_overwritten(tmp_path):
    first = scaffold("tiles", tmp_path, kind="image")
    module = first / "studiolo_tiles" / "__init__.py"
    module.write_text("# my own work\n", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold("tiles", tmp_path, kind="text")
    assert module.read_text(encoding="utf-8") == "# my own work\n"
    (tmp_path / "studiolo-empty").mkdir()
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold("empty", tmp_path)
    assert list((tmp_path / "studiolo-empty").iterdir()) == []


def test_a_failure_halfway_leaves_nothing_behind(tmp_path, monkeypatch):
    import desktop.scaffold as scaffold_module

    monkeypatch.setattr(scaffold_module, "render", lambda names, author=None: {"tests": "x", "tests/a.py": "y"})
    with pytest.raises(OSError):
        scaffold("tiles", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("version", "expected", "excluded"), [
    ("0.1.0", ">=0.1,<0.2", "0.2.0"),
    ("0.4.7", ">=0.4,<0.5", "0.5.0"),
    ("1.2.3", ">=1.2,<2", "2.0.0"),
    ("2.0.0", ">=2.0,<3", "3.0.0"),
    ("0.2.0.dev1", ">=0.2.0.dev0,<0.3", "0.3.0"),
])
def test_the_studiolo_range_follows_the_api_versioning_policy(version, expected, excluded):
    assert studiolo_range(version) == expected
    spec = SpecifierSet(expected)
    assert spec.contains(version, prereleases=True) and not spec.contains(excluded, prereleases=True)


def test_the_generated_range_accepts_this_studiolo_and_starts_at_its_api_version(tmp_path):
    dependency = read_pyproject(scaffold("tiles", tmp_path))["project"]["dependencies"][0]
    assert dependency.startswith(f"studiolo>={API_VERSION},<")
    assert SpecifierSet(dependency.removeprefix("studiolo")).contains(__version__, prereleases=True)


def plugins_parser() -> argparse.ArgumentParser:
    """`studiolo plugins …` with only `new` registered, the way plugins_cmd.add_parser registers it."""
    parser = argparse.ArgumentParser(prog="studiolo plugins")
    new_cmd.add_new_parser(parser.add_subparsers(title="commands", metavar="COMMAND", required=True))
    return parser


def test_plugins_new_creates_the_package_and_prints_the_next_steps(tmp_path, capsys):
    args = plugins_parser().parse_args(["new", "tiles", "--kind", "image", "--dir", str(tmp_path / "work"),
                                        "--author", "Ann"])
    assert args.handler(args) == 0
    package = tmp_path / "work" / "studiolo-tiles"
    assert read_pyproject(package)["project"]["authors"] == [{"name": "Ann"}]
    assert "ImageOutput" in (package / "studiolo_tiles" / "__init__.py").read_text(encoding="utf-8")
    out = capsys.readouterr().out
    assert f"cd {package}" in out and "pip install -e '.[test]'" in out and "pytest" in out
    assert "studiolo generate image.tiles --model demo" in out


def test_plugins_new_refuses_what_it_cannot_make(tmp_path):
    parser = plugins_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["new", "tiles", "--kind", "video"])
    args = parser.parse_args(["new", "Bad Name", "--dir", str(tmp_path)])
    with pytest.raises(ScaffoldError, match="not a valid plugin name"):
        args.handler(args)
    assert list(tmp_path.iterdir()) == []


def test_new_cmd_offers_the_scaffolds_kinds():
    assert new_cmd.KINDS == KINDS


def test_studiolo_plugins_new_on_the_command_line(tmp_path, capsys):
    from desktop.cli import build_parser, main

    plugins = next(a for a in build_parser()._subparsers._group_actions[0].choices["plugins"]._actions
                   if isinstance(a, argparse._SubParsersAction))
    assert "new" in plugins.choices
    assert main(["plugins", "new", "tiles", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "studiolo-tiles" / "pyproject.toml").is_file()
    assert main(["plugins", "new", "tiles", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_the_tutorial_shows_what_the_scaffold_writes(tmp_path):
    tutorial = (ROOT / "docs" / "plugin-tutorial.md").read_text(encoding="utf-8")
    package = scaffold("tiles", tmp_path, kind="image")
    for path in package.rglob("*"):
        if path.is_file():
            assert path.relative_to(package).as_posix() in tutorial, path
    assert 'tiles = "studiolo_tiles"' in (package / "pyproject.toml").read_text(encoding="utf-8")
    assert 'tiles = "studiolo_tiles"' in tutorial
    for kind in KINDS:
        assert f"`{kind}`" in tutorial
