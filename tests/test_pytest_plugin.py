"""The pytest plugin Studiolo ships (pytest11): a plugin author's test suite gets its fixtures."""

from __future__ import annotations

import re

from helpers import EXAMPLES, MARKOV_SOURCE, ROOT

GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
MARKOV_PYPROJECT = (EXAMPLES / "markov" / "pyproject.toml").read_text(encoding="utf-8")


def source_tree(pytester, pyproject: str, modules: dict[str, str], tests: dict[str, str]) -> None:
    """A plugin package's source tree in pytester's folder: pyproject.toml, its modules, tests/ and no conftest.py
    (the package is not installed: only the `studiolo_project` fixture can make its entry points known)."""
    (pytester.path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for name, source in modules.items():
        (pytester.path / f"{name}.py").write_text(source, encoding="utf-8")
    (pytester.path / "tests").mkdir()
    for name, source in tests.items():
        (pytester.path / "tests" / f"{name}.py").write_text(source, encoding="utf-8")


def test_the_guides_test_example_passes_from_the_source_tree(pytester):
    example = next(b for b in re.findall(r"```python\n(.*?)```", GUIDE, flags=re.S)
                   if "studiolo_run(" in b and "studiolo_project" in b)
    source_tree(pytester, MARKOV_PYPROJECT, {"studiolo_markov": MARKOV_SOURCE}, {"test_markov": example})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=1)


def test_the_guide_documents_studiolo_runs_real_signature_and_defaults():
    import inspect
    import json

    from desktop.testing import run_generator

    parts = []
    for parameter in inspect.signature(run_generator).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        default = parameter.default
        parts.append(parameter.name if default is parameter.empty else f"{parameter.name}={json.dumps(default)}"
                     .replace("null", "None").replace("false", "False"))
    shown = re.search(r"`studiolo_run\((generator, .*?)\)` —", GUIDE, flags=re.S)[1]
    assert " ".join(shown.split()) == ", ".join(parts)  # model="default": the generator's default_model
    assert 'model="demo", seed=0' not in GUIDE


def test_fixtures_isolate_home_and_install_by_entry_point(pytester):
    pytester.makepyfile(test_author='''
import os
from desktop.api import TextOutput

SOURCE = """
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class P:
    word: str = param("hello", prompt=True)
    times: int = param(2, min=1, max=10)

class Repeat(Generator):
    id, name, kind, Params = "author.repeat", "Repeat", "text", P
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        for i in range(params.times):
            ctx.raise_if_cancelled([TextOutput(text=" ".join([params.word] * i))])
            ctx.progress(i + 1, params.times)
        return [TextOutput(text=" ".join([params.word] * params.times))]

@hookimpl
def register_generators(register):
    register(Repeat())
"""

def test_author(studiolo_home, studiolo_site, studiolo_plugins, studiolo_run):
    assert os.environ["STUDIOLO_HOME"] == str(studiolo_home)
    studiolo_site.install("studiolo-repeat", modules={"repeat_plugin": SOURCE},
                          entry_points={"repeat": "repeat_plugin"})
    manager = studiolo_plugins("repeat")
    assert list(manager.plugins) == ["repeat"]
    generator = manager.generator("author.repeat")
    result = studiolo_run(generator, {"word": "ha", "times": 3}, model=None)
    assert result.outputs[0].text == "ha ha ha" and len(result.progress) == 3
    cancelled = studiolo_run(generator, {"times": 9}, model=None, cancel_after=2)
    assert cancelled.cancelled and cancelled.outputs[0].text == "hello hello"
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


ROLL = '''
import random
from dataclasses import dataclass

from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class P:
    sides: int = param(6, min=2, max=100)

class Roll(Generator):
    id, name, kind, Params, default_model = "text.roll", "Roll", "text", P, None
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        return [TextOutput(text=str(random.Random(ctx.seed).randint(1, params.sides)))]

@hookimpl
def register_generators(register):
    if FAIL:
        raise RuntimeError("no dice today")
    register(Roll())
'''


def roll_pyproject(*, package_dir: str | None = None, entry_points: str = 'roll = "studiolo_roll"') -> str:
    tool = f'\n[tool.setuptools]\npackage-dir = {{"" = "{package_dir}"}}\n' if package_dir else ""
    return (f'[project]\nname = "studiolo-roll"\nversion = "2.3.0"\ndependencies = ["studiolo"]\n\n'
            f"[project.entry-points.studiolo]\n{entry_points}\n{tool}")


ROLL_TEST = '''
from importlib import metadata

def test_roll(studiolo_project, studiolo_run):
    assert list(studiolo_project.plugins) == ["roll"]
    record = studiolo_project.plugins["roll"]
    assert (record.distribution, record.version) == ("studiolo-roll", "2.3.0")
    result = studiolo_run(studiolo_project.generator("text.roll"), {"sides": 6}, seed=4)
    assert 1 <= int(result.outputs[0].text) <= 6
'''


def test_studiolo_project_registers_a_source_tree_without_pythonpath_settings(pytester):
    """A src layout, no pytest settings, no conftest.py: the code is imported from package-dir's folder."""
    source_tree(pytester, roll_pyproject(package_dir="src"), {}, {"test_roll": ROLL_TEST})
    (pytester.path / "src").mkdir()
    (pytester.path / "src" / "studiolo_roll.py").write_text("FAIL = False\n" + ROLL, encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=1)


def test_studiolo_project_fails_the_set_up_naming_a_plugin_that_does_not_load(pytester):
    source_tree(pytester, roll_pyproject(), {"studiolo_roll": "FAIL = True\n" + ROLL}, {"test_roll": ROLL_TEST})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*The plugin 'roll' of studiolo-roll did not load: register_generators failed: "
                                 "RuntimeError: no dice today*"])


def test_studiolo_project_refuses_an_install_older_than_the_source_tree(pytester, studiolo_site, monkeypatch):
    studiolo_site.install("studiolo-roll", version="2.2.0", modules={"studiolo_roll": "FAIL = False\n" + ROLL},
                          entry_points={"dice": "studiolo_roll"})
    monkeypatch.setenv("PYTHONPATH", studiolo_site.env()["PYTHONPATH"])
    source_tree(pytester, roll_pyproject(), {"studiolo_roll": "FAIL = False\n" + ROLL}, {"test_roll": ROLL_TEST})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*The installed studiolo-roll * declares the plugins {'dice': 'studiolo_roll'}, "
                                 "but * declares {'roll': 'studiolo_roll'}.*",
                                 "*Install it again (pip install -e .), or uninstall it*"])


def test_studiolo_project_says_what_a_pyproject_without_a_plugin_lacks(pytester):
    source_tree(pytester, '[project]\nname = "studiolo-roll"\nversion = "1"\n', {}, {"test_roll": ROLL_TEST})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*declares no plugin for Studiolo.*",
                                 '*Add [[]project.entry-points.studiolo] with a line NAME = "your_module".*'])
