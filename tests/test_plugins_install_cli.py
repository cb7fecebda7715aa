"""`studiolo plugins install SPEC | update NAME | uninstall NAME`, run as a user would (subprocesses), against the
throwaway environment of tests/pip_env.py (`--python`), offline (`--no-index --find-links`)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from helpers import ROOT
from pip_env import PipEnv, Wheels, clean_environ, make_wheel

from desktop import __version__
from desktop.install import acknowledge_notice, notice_acknowledged


def cli(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """`python -m desktop ARGS` without a terminal (stdin is not a tty) and without the machine's pip settings."""
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, stdin=stdin,
                          env=clean_environ(), timeout=240, cwd=ROOT)


def target(env: PipEnv, *folders: Path) -> list[str]:
    return ["--python", str(env.python), "--no-index", *[a for f in folders for a in ("--find-links", str(f))]]


def test_install_update_and_uninstall(pip_env: PipEnv, wheels: Wheels):
    wheel = str(wheels.wheel("studiolo-hello"))
    before = pip_env.freeze()

    unconfirmed = cli("plugins", "install", wheel, *target(pip_env))
    assert unconfirmed.returncode == 1
    assert "Before you install a plugin:" in unconfirmed.stdout and "runs with your rights" in unconfirmed.stdout
    assert "there is no terminal to ask on" in unconfirmed.stderr and "--yes" in unconfirmed.stderr
    assert not notice_acknowledged() and pip_env.freeze() == before

    done = cli("plugins", "install", wheel, "--yes", *target(pip_env))
    assert done.returncode == 0, done.stderr
    assert "runs with your rights" in done.stdout  # shown the first time, even with --yes
    assert "This will install:\n  studiolo-hello 1.0 (the plugin, from a file)\n" in done.stdout
    assert "Installed studiolo-hello 1.0. Plugin(s): hello." in done.stdout
    assert "  | Would install studiolo-hello-1.0" in done.stderr  # pip's log, streamed
    assert "  | Successfully installed studiolo-hello-1.0" in done.stderr
    assert notice_acknowledged() and pip_env.freeze() == {**before, "studiolo-hello": "1.0"}

    update = cli("plugins", "update", "hello", "--yes", *target(pip_env, wheels.v2))
    assert update.returncode == 0, update.stderr
    assert "runs with your rights" not in update.stdout  # once only
    assert "This will update:\n  studiolo-hello 1.0 → 1.1 (the plugin)\n" in update.stdout
    assert pip_env.freeze()["studiolo-hello"] == "1.1"

    removed = cli("plugins", "uninstall", "hello", "--yes", "--python", str(pip_env.python))
    assert removed.returncode == 0, removed.stderr
    assert "Uninstalled studiolo-hello 1.1." in removed.stdout
    assert pip_env.freeze() == before


def test_refusals_exit_1_and_change_nothing(pip_env: PipEnv, wheels: Wheels):
    acknowledge_notice()
    before = pip_env.freeze()

    future = cli("plugins", "install", "studiolo-future", "--yes", *target(pip_env, wheels.main))
    assert future.returncode == 1
    assert "studiolo: error: Cannot install studiolo-future; nothing was changed:\n" \
           f"  - studiolo-future 1.0 is made for Studiolo >=9,<10, but this is Studiolo {__version__}.\n" \
           "Install a version of the plugin made for this Studiolo, or update Studiolo.\n" in future.stderr

    hostile = cli("plugins", "install", "foo; rm -rf /", "--yes", *target(pip_env))
    assert hostile.returncode == 1 and "contains ';'" in hostile.stderr and "==>" not in hostile.stderr

    option = cli("plugins", "install", "--index-url=http://example.invalid", "x", *target(pip_env))
    assert option.returncode == 2 and "unrecognized arguments" in option.stderr

    missing = cli("plugins", "install", "studiolo-nothing-here", "--yes", *target(pip_env, wheels.empty))
    assert missing.returncode == 1
    assert "No package named studiolo-nothing-here was found in the folders searched." in missing.stderr

    not_plugin = cli("plugins", "uninstall", "pluggy", "--yes", "--python", str(pip_env.python))
    assert not_plugin.returncode == 1
    assert f"pluggy {metadata.version('pluggy')} is not a Studiolo plugin" in not_plugin.stderr
    assert pip_env.freeze() == before


def test_a_plugin_whose_hook_fails_is_not_installed(pip_env: PipEnv, wheels: Wheels):
    """The install's check registers the plugin's generators: a register_generators that raises is reported, with
    the plugin's name, the reason and the traceback, and the install is taken back — "Installed" is never said."""
    acknowledge_notice()
    before = pip_env.freeze()
    done = cli("plugins", "install", str(wheels.wheel("studiolo-badhook")), "--yes", *target(pip_env))
    assert done.returncode == 1, done.stderr
    assert "Installed" not in done.stdout
    assert ("studiolo-badhook 1.0 fails to load in Studiolo (plugin badhook: register_generators failed: "
            "RuntimeError: boom in hook). It was uninstalled again; nothing was changed.\n") in done.stdout
    assert "==> Plugin badhook fails to load: register_generators failed: RuntimeError: boom in hook" in done.stderr
    assert "  | RuntimeError: boom in hook" in done.stderr and "  | Traceback (most recent call last):" in done.stderr
    assert "Traceback" not in done.stdout
    assert pip_env.freeze() == before


def test_a_plugin_writing_into_studiolos_package_is_refused(pip_env: PipEnv, tmp_path: Path):
    wheel = make_wheel(tmp_path, "studiolo-evil", files={"desktop/__init__.py": "", "studiolo_evil.py": ""},
                       entry_points={"evil": "studiolo_evil"})
    acknowledge_notice()
    before = pip_env.freeze()
    refused = cli("plugins", "install", str(wheel), "--yes", *target(pip_env))
    assert refused.returncode == 1
    assert "studiolo: error: Cannot install " in refused.stderr and "nothing was changed:\n" \
        f"  - studiolo-evil 1.0 would write files into desktop, which belongs to studiolo {__version__}.\n" \
        in refused.stderr
    assert "Traceback" not in refused.stderr and pip_env.freeze() == before


def test_questions_are_asked_on_a_terminal(pip_env: PipEnv, wheels: Wheels):
    """On a terminal: the notice, then the plan, each with a question; answering no to the second changes
    nothing (the notice stays accepted)."""
    before = pip_env.freeze()
    leader, follower = pty.openpty()
    try:
        os.write(leader, b"y\nn\n")
        answered = cli("plugins", "install", "studiolo-helper-user", *target(pip_env, wheels.main), stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert answered.returncode == 1, answered.stderr
    out = answered.stdout
    assert out.index("runs with your rights") < out.index("Continue? [y/N]") < out.index("This will install:")
    assert "  studiolo-helper-user 1.0 (the plugin)\n  helper-lib 1.0 (a new dependency)\n" in out
    assert out.rstrip().endswith("Install? [y/N] Nothing was changed.")
    assert notice_acknowledged() and pip_env.freeze() == before


def test_plugins_help_lists_every_command():
    result = cli("plugins", "--help")
    assert result.returncode == 0
    for command in ("list", "enable", "disable", "install", "update", "uninstall"):
        assert f"    {command}" in result.stdout
