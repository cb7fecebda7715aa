"""A plugin cannot take start-up down: the load journal, bounded and quiet imports, slow imports reported.

Real processes for a plugin that ends the process (``os._exit``) or hangs at import; the journal's marks are real
files with real OS locks, so "the process is gone" is a process that really is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, install_markov, run_cli
from plugin_sources import echo

from desktop.plugin_journal import LoadJournal
from desktop.plugins import PluginManager, Status

STOPPED = "Studiolo stopped while loading this plugin (at "


@pytest.fixture
def site(studiolo_site):
    install_markov(studiolo_site)
    return studiolo_site


def listing(result) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)}


def leave_mark(plugin: str) -> None:
    """A process that begins importing ``plugin`` and ends at once, as a plugin calling os._exit() would."""
    code = (f"import os\nfrom desktop.plugin_journal import LoadJournal\njournal = LoadJournal()\n"
            f"journal.begin({plugin!r}, 'x')\nos._exit(0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_plugin_that_ends_the_process_at_import_is_skipped_until_enabled_again(site):
    site.install("studiolo-exits", modules={"exits_now": "import os\nos._exit(3)\n"},
                 entry_points={"exits": "exits_now"})
    env = site.env()
    first = run_cli("plugins", "list", "--json", env=env)
    assert first.returncode == 3 and first.stdout == ""  # nothing can be said: the plugin ended the process

    second = run_cli("plugins", "list", env=env)
    assert second.returncode == 0, second.stderr
    assert STOPPED in second.stdout and "studiolo plugins enable exits" in second.stdout
    plugins = listing(run_cli("plugins", "list", "--json", env=env))
    assert plugins["exits"]["status"] == Status.FAILED and plugins["exits"]["quarantined"]
    assert plugins["exits"]["error"].startswith(STOPPED)
    assert plugins["markov"]["status"] == Status.LOADED

    enabled = run_cli("plugins", "enable", "exits", env=env)
    assert enabled.returncode == 0 and "exits enabled" in enabled.stdout
    assert run_cli("plugins", "list", "--json", env=env).returncode == 3  # tried again: it ends the process again


def test_a_plugin_whose_import_hangs_is_skipped_after_the_bound(site, tmp_path):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    site.install("studiolo-hangs", modules={"hangs_now": f"open({str(fifo)!r}).read()\n" + echo("test.hangs")},
                 entry_points={"hangs": "hangs_now"})
    env = {**site.env(), "STUDIOLO_PLUGIN_IMPORT_TIMEOUT": "1"}
    plugins = listing(run_cli("plugins", "list", "--json", env=env))  # run_cli's timeout bounds the test
    assert plugins["hangs"]["status"] == Status.FAILED
    assert plugins["hangs"]["error"].startswith("still importing after 1 s; skipped")
    assert plugins["markov"]["status"] == Status.LOADED and plugins["markov"]["generators"] == ["text.markov"]

    again = listing(run_cli("plugins", "list", "--json", env=env))  # that process ended with the import running
    assert again["hangs"]["quarantined"]
    assert again["hangs"]["error"].startswith(STOPPED) and "its import was still running after 1 s" in \
        again["hangs"]["error"]


def test_what_a_plugin_prints_does_not_corrupt_json(site):
    site.install("studiolo-chatty", entry_points={"chatty": "chatty"}, modules={"chatty": (
        "print('hello from the import')\n"
        + echo("test.chatty", register="print('hello from the hook'); register(Echo())"))})
    result = run_cli("plugins", "list", "--json", env=site.env())
    plugins = listing(result)  # stdout is JSON and only JSON
    assert plugins["chatty"]["status"] == Status.LOADED
    assert "hello from the import" in result.stderr and "hello from the hook" in result.stderr


def test_keyboard_interrupt_at_import_is_a_failure_like_any_other(site):
    site.install("studiolo-interrupts", modules={"interrupts": "raise KeyboardInterrupt\n"},
                 entry_points={"interrupts": "interrupts"})
    plugins = listing(run_cli("plugins", "list", "--json", env=site.env()))
    assert plugins["interrupts"]["status"] == Status.FAILED
    assert plugins["interrupts"]["error"] == "import failed: KeyboardInterrupt"
    assert "Traceback" in plugins["interrupts"]["traceback"]
    assert plugins["markov"]["status"] == Status.LOADED


SLOW = "import studiolo_test_clock\nstudiolo_test_clock.advance({seconds})\n"
CLOCK = "NOW = [100.0]\ndef now():\n    return NOW[0]\ndef advance(seconds):\n    NOW[0] += seconds\n"


def test_a_slow_import_is_reported_with_its_time(site, caplog):
    site.install("studiolo-test-clock", modules={"studiolo_test_clock": CLOCK}, entry_points={})
    site.install("studiolo-slow", modules={"slow": SLOW.format(seconds=5.3) + echo("test.slow")},
                 entry_points={"slow": "slow"})
    site.install("studiolo-quick", modules={"quick": SLOW.format(seconds=1.5) + echo("test.quick")},
                 entry_points={"quick": "quick"})
    import studiolo_test_clock

    manager = PluginManager(clock=studiolo_test_clock.now, slow_import=2.0).load()
    slow, quick = manager.plugins["slow"], manager.plugins["quick"]
    assert slow.status == quick.status == Status.LOADED
    assert slow.import_seconds == pytest.approx(5.3) and quick.import_seconds == pytest.approx(1.5)
    assert slow.warnings == ["imported in 5.3 s, which slows Studiolo's start"]
    assert quick.warnings == []
    assert "plugin slow imported in 5.3 s" in caplog.text


def test_plugins_list_shows_the_import_time_of_slow_plugins(site):
    verbose = run_cli("plugins", "list", "--verbose", env={**site.env(), "STUDIOLO_PLUGIN_SLOW_IMPORT": "0"})
    assert verbose.returncode == 0
    line = next(line for line in verbose.stdout.splitlines() if line.startswith("markov:"))
    assert line.startswith("markov: warning: imported in ") and line.endswith(" s, which slows Studiolo's start")


def test_a_mark_of_a_process_still_running_is_not_a_stop(site):
    code = ("import sys\nfrom desktop.plugin_journal import LoadJournal\njournal = LoadJournal()\n"
            "journal.begin('markov', 'x')\nprint('marked', flush=True)\nsys.stdin.readline()\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline() == "marked\n"
        assert PluginManager().load().plugins["markov"].status == Status.LOADED  # another Studiolo is loading it
    finally:
        child.kill()  # the way a plugin's hang ends when the user kills Studiolo
        child.wait(timeout=60)
    record = PluginManager().load().plugins["markov"]
    assert record.status == Status.FAILED and record.quarantined and record.error.startswith(STOPPED)


def test_enabling_releases_the_plugin_and_it_loads_again(site):
    leave_mark("markov")
    manager = PluginManager().load()
    assert manager.plugins["markov"].quarantined and "text.markov" not in manager.generators
    assert PluginManager().set_enabled("markov", True) is True  # it was not disabled: the skip is what changes
    assert LoadJournal().stopped() == {} and list(LoadJournal().folder.iterdir()) == []
    assert PluginManager().load().plugins["markov"].status == Status.LOADED


def test_a_builtin_plugin_is_never_skipped(site):
    leave_mark("text")
    record = PluginManager().load().plugins["text"]
    assert record.builtin and record.status == Status.LOADED and "text.transformers" in record.generators
    assert record.warnings and record.warnings[0].startswith("Studiolo stopped while loading this plugin at ")
    assert PluginManager().load().plugins["text"].warnings == []  # said once


def test_imports_leave_no_mark_and_restore_stdout(site):
    stdout = sys.stdout
    manager = PluginManager().load()
    assert manager.plugins["markov"].status == Status.LOADED
    assert LoadJournal().stopped() == {} and not list(LoadJournal().folder.glob("*.mark.json"))
    assert sys.stdout is stdout
