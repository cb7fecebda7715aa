"""`studiolo --help` and `studiolo plugins list | enable | disable`, run as a user would, in subprocesses."""

from __future__ import annotations

import json
import os

import pytest
from helpers import install_markov, run_cli, run_python
from plugin_sources import install_broken

HEAVY = ("torch", "diffusers", "transformers", "PySide6")


@pytest.fixture
def env(studiolo_site):
    install_markov(studiolo_site)
    install_broken(studiolo_site, ["import_error", "raising_hook"])
    return studiolo_site.env()


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "plugins list, enable, disable, install, update, uninstall and write plugins" in text
    assert "Without a command, opens the app" in text
    result = run_cli("plugins", "--help")
    assert result.returncode == 0 and all(w in result.stdout for w in ("list", "enable", "disable", "install", "update",
                                                                 "uninstall", "new"))


@pytest.mark.parametrize("argv", [["--help"], ["plugins", "list"], ["plugins", "list", "--json"],
                                  ["plugins", "disable", "markov"]])
def test_the_cli_never_imports_torch_or_qt(env, argv):
    code = (
        "import sys\n"
        "from desktop.cli import main\n"
        "try:\n"
        f"    rc = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    rc = exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stderr  # the probe ran, and found none of them


def test_plugins_list_shows_good_and_broken_side_by_side(env):
    result = run_cli("plugins", "list", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    markov = next(line for line in lines if line.startswith("markov "))
    assert "1.0.0" in markov and "loaded" in markov and "text.markov" in markov
    assert any(line.startswith("import_error ") and "failed" in line for line in lines)
    assert "import_error: import failed: ModuleNotFoundError: No module named 'studiolo_no_such_module_xyz'" \
        in result.stdout
    assert "raising_hook: register_generators failed: RuntimeError: boom in hook" in result.stdout
    assert "Traceback" not in result.stdout and "--verbose" in result.stdout

    verbose = run_cli("plugins", "list", "--verbose", env=env)
    assert verbose.returncode == 0 and "Traceback (most recent call last)" in verbose.stdout


def test_plugins_list_json(env):
    result = run_cli("plugins", "list", "--json", env=env)
    assert result.returncode == 0
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["markov"]["status"] == "loaded" and records["markov"]["generators"] == ["text.markov"]
    assert records["import_error"]["status"] == "failed"
    assert "Traceback" in records["import_error"]["traceback"]
    assert set(records["markov"]) >= {"name", "version", "status", "generators", "error", "traceback"}


def test_enable_and_disable_by_name(env):
    result = run_cli("plugins", "disable", "markov", env=env)
    assert result.returncode == 0 and "markov disabled" in result.stdout
    listing = json.loads(run_cli("plugins", "list", "--json", env=env).stdout)
    assert next(r for r in listing if r["name"] == "markov")["status"] == "disabled"
    assert "already disabled" in run_cli("plugins", "disable", "markov", env=env).stdout
    assert run_cli("plugins", "enable", "markov", env=env).returncode == 0
    listing = json.loads(run_cli("plugins", "list", "--json", env=env).stdout)
    assert next(r for r in listing if r["name"] == "markov")["status"] == "loaded"


def test_unknown_plugin_name_is_a_clear_error(env):
    result = run_cli("plugins", "enable", "markvo", env=env)
    assert result.returncode == 1
    assert "studiolo: error: No plugin named 'markvo'." in result.stderr
    assert "Known plugins:" in result.stderr and "markov" in result.stderr and "import_error" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_plugins_installed(monkeypatch):
    env = dict(os.environ, STUDIOLO_LOAD_PLUGINS="")
    result = run_cli("plugins", "list", env=env)
    assert result.returncode == 0


def test_usage_errors_exit_2():
    result = run_cli("plugins", "frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr
