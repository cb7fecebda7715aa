"""The pytest plugin Studiolo ships (pytest11): a plugin author's test suite gets its fixtures."""

from __future__ import annotations

import re

from helpers import ROOT, install_markov

GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def test_the_guides_test_example_passes_in_an_authors_suite(pytester, studiolo_site, monkeypatch):
    install_markov(studiolo_site)
    monkeypatch.setenv("PYTHONPATH", studiolo_site.env()["PYTHONPATH"])
    example = next(b for b in re.findall(r"```python\n(.*?)```", GUIDE, flags=re.S) if "studiolo_run(" in b)
    pytester.makepyfile(test_markov=example)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


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
