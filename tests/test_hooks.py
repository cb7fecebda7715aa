"""Every hook is documented in docs/plugins.md and exercised here through a plugin installed by entry point."""

from __future__ import annotations

import re

from helpers import ROOT, install_markov

from desktop.plugins import PluginManager, Status

GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
TESTS = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))


def hook_names() -> list[str]:
    return PluginManager().hook_names()


def test_hooks_are_known():
    assert hook_names() == ["register_generators"]


def test_every_hook_is_documented_in_the_plugin_guide():
    undocumented = [h for h in hook_names() if f"### `{h}`" not in GUIDE]
    assert not undocumented, f"hooks missing a '### `name`' section in docs/plugins.md: {undocumented}"


def test_every_hook_has_a_test():
    untested = [h for h in hook_names() if not re.search(rf"^def test_hook_{h}\b", TESTS, flags=re.M)]
    assert not untested, f"hooks without a `test_hook_<name>` test: {untested}"


PAIR = """
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)

class One(Generator):
    id, name, kind, Params = "test.one", "One", "text", Params
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text)]

class Two(One):
    id, name = "test.two", "Two"

@hookimpl
def register_generators(register):
    register(One())
    register(Two())
"""


def test_hook_register_generators(studiolo_site):
    install_markov(studiolo_site)
    studiolo_site.install("studiolo-pair", modules={"pair": PAIR}, entry_points={"pair": "pair"})
    manager = PluginManager().load()
    assert manager.plugins["markov"].generators == ["text.markov"]
    assert manager.plugins["pair"].status == Status.LOADED
    assert manager.plugins["pair"].generators == ["test.one", "test.two"]
    assert type(manager.generator("test.two")).__name__ == "Two"
