"""The public plugin API is small, documented and the only thing plugins use: every name in ``desktop.api.__all__``
(and ``desktop.api.widgets.__all__``) is documented where it is defined and in the guide's table, nothing else is
exported, and the built-in plugins, the examples and the scaffold import nothing else from ``desktop``."""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path

import pytest
from helpers import ROOT

import desktop.api as api
from desktop.scaffold import KINDS, scaffold

GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
TABLE = GUIDE[GUIDE.index("## Every public name"):GUIDE.index("## Testing your plugin")]


def widgets_names() -> list[str]:
    import desktop.api.widgets as widgets

    return list(widgets.__all__)


def test_desktop_api_exports_exactly_its_all():
    exported = {name for name in vars(api) if not name.startswith("_") and name != "annotations"
                and not isinstance(getattr(api, name), types.ModuleType)}
    assert exported == set(api.__all__)
    assert len(api.__all__) == len(set(api.__all__)) == 69  # 0.2: 48; 0.2.1 +6, 0.2.2 +1, 0.2.3 +1, 0.2.4 +6, 0.2.5 +7


@pytest.mark.parametrize("member", ["input_modes", "params_for_input", "input_file"])
def test_the_use_as_input_members_of_generator_are_documented(member):
    """API 0.2.1 (issue 18): the refinement loop's members are in the guide's table of Generator members and
    documented where they are defined; ``Output.saved_path`` is documented on ``Output``."""
    generators = GUIDE[GUIDE.index("## Generators"):GUIDE.index("### Generators without a model")]
    assert f"`{member}" in generators
    value = getattr(api.Generator, member)
    assert member in (inspect.getdoc(api.Generator) or "") if not callable(value) else inspect.getdoc(value)
    assert "saved_path" in (inspect.getdoc(api.Output) or "") and "Output.saved_path" in GUIDE


@pytest.mark.parametrize("name", [*api.__all__, *widgets_names()])
def test_every_public_name_is_in_the_guides_table(name):
    assert re.search(rf"`[^`|]*\b{re.escape(name)}\b[^`|]*`", TABLE), f"{name} is not in docs/plugins.md's table"


@pytest.mark.parametrize("name", [*api.__all__, *widgets_names()])
def test_every_public_class_and_function_has_a_docstring(name):
    module = api if name in api.__all__ else __import__("desktop.api.widgets", fromlist=["x"])
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert (inspect.getdoc(value) or "").strip(), f"{name} has no docstring"
    else:  # a constant: documented by the string literal after its assignment in its module
        source = inspect.getsource(api if name in ("API_VERSION", "PROJECT_NAME", "hookimpl") else
                                   next(m for m in vars(api).values() if isinstance(m, types.ModuleType)
                                        and name in getattr(m, "__all__", ())))
        assert re.search(rf"^{name} = .*\n\"\"\"", source, re.MULTILINE), f"{name} has no docstring after it"


def imported_desktop_names(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for each ``from desktop... import name`` in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "desktop"
            for alias in node.names]


def plugin_sources() -> list[Path]:
    files = [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]
    return [p for p in files if "tests" not in p.parts]


def test_plugins_and_examples_import_only_the_public_api():
    allowed = {"desktop.api": set(api.__all__), "desktop.api.widgets": set(widgets_names())}
    wrong = [f"{path.relative_to(ROOT)}: from {module} import {name}" for path in plugin_sources()
             for module, name in imported_desktop_names(path)
             if name not in allowed.get(module, set())]
    assert wrong == []
    assert len(plugin_sources()) > 20  # the scan found the plugins


@pytest.mark.parametrize("kind", KINDS)
def test_the_scaffold_writes_only_public_imports(tmp_path, kind):
    folder = scaffold("acme-things", tmp_path, kind=kind)
    allowed = {"desktop.api": set(api.__all__), "desktop.api.widgets": set(widgets_names()),
               "desktop.testing": None}  # a plugin's own tests may use the shipped test helpers
    found = [(path, module, name) for path in folder.rglob("*.py") for module, name in imported_desktop_names(path)]
    assert found  # the scan saw the scaffold's imports
    for path, module, name in found:
        assert module in allowed and (allowed[module] is None or name in allowed[module]), (path, module, name)
