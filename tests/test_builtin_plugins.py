"""The built-in plugins play by the third-party rules: registered by entry point, `desktop.api` only, no heavy
imports at import time."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT, run_python

from desktop.plugins import PluginManager, Status

BUILTINS = ROOT / "plugins"


def host_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [m for m in found if m == "desktop" or m.startswith("desktop.")]


def test_built_in_plugins_import_nothing_from_the_host_but_the_api():
    offenders = {str(p.relative_to(ROOT)): [m for m in host_imports(p) if m.split(".")[:2] != ["desktop", "api"]]
                 for p in BUILTINS.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_built_in_plugins_load_through_their_entry_points():
    manager = PluginManager().load()
    builtins = {name: r for name, r in manager.plugins.items() if r.builtin}
    assert builtins and all(r.status == Status.LOADED for r in builtins.values()), builtins
    assert "image.diffusers" in manager.generators and manager.plugin_of("image.diffusers").builtin


def test_loading_the_built_in_plugins_imports_no_heavy_library():
    code = ("import sys\nfrom desktop.plugins import PluginManager\nm = PluginManager().load()\n"
            "assert 'image.diffusers' in m.generators\n"
            "print([x for x in ('torch', 'diffusers', 'transformers', 'PySide6') if x in sys.modules])\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
