"""The window is on screen before the third-party plugins are imported; a hung or stopped plugin never leaves a
blank screen, and the Plugins page shows slow and skipped plugins and lifts a skip."""

from __future__ import annotations

import pytest
from helpers import builtin_plugins, install_markov, run_python
from plugin_sources import echo

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugin_journal import LoadJournal
from desktop.plugins import PluginManager, Status
from desktop.settings import Settings
from desktop.ui.generator_page import GeneratorPage
from desktop.ui.main_window import MainWindow
from desktop.ui.plugins_view import PluginsView

WAIT = 60_000
GATE = "import threading\nSTARTED = threading.Event()\nRELEASE = threading.Event()\n"
WAITS = "import studiolo_test_gate as gate\ngate.STARTED.set()\ngate.RELEASE.wait(120)\n"


@pytest.fixture
def gate(studiolo_site):
    """A plugin `late` whose import waits until the test sets ``gate.RELEASE`` (it sets ``gate.STARTED`` first)."""
    install_markov(studiolo_site)
    studiolo_site.install("studiolo-test-gate", modules={"studiolo_test_gate": GATE}, entry_points={})
    studiolo_site.install("studiolo-late", modules={"late": WAITS + echo("test.late")},
                          entry_points={"late": "late"})
    import studiolo_test_gate

    yield studiolo_test_gate
    studiolo_test_gate.RELEASE.set()  # whatever happened, the import thread ends


@pytest.fixture
def start(qtbot):
    """Start as the app does: built-in plugins, the window shown, then the third-party plugins in the background."""
    windows = []

    def make(**manager_options) -> MainWindow:
        settings = Settings.load()
        settings.first_run_done = True
        settings.save()
        plugins = PluginManager(**manager_options).load(third_party=False)
        window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
        qtbot.addWidget(window)
        window.show()
        window.load_plugins()
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.isVisible():
            window.close()


def sidebar_texts(window: MainWindow) -> list[str]:
    texts = []
    for i in range(window.sidebar.topLevelItemCount()):
        top = window.sidebar.topLevelItem(i)
        texts += [top.text(0)] + [top.child(j).text(0) for j in range(top.childCount())]
    return texts


def test_the_window_shows_while_a_plugin_is_importing_and_its_generator_arrives_after(gate, start, qtbot):
    window = start()
    qtbot.waitUntil(gate.STARTED.is_set, timeout=WAIT)
    assert window.isVisible() and isinstance(window.current_page(), GeneratorPage)  # a built-in generator
    assert "Loading plugins…" in sidebar_texts(window)
    assert window.plugins_label.text() == "Loading plugin late…"  # then markov, in name order
    assert "test.late" not in window.plugins.generators
    assert window.plugins.plugins["late"].status == Status.LOADING

    with qtbot.waitSignal(window.plugins_loaded, timeout=WAIT):
        gate.RELEASE.set()
    assert "Echo" in sidebar_texts(window) and "Loading plugins…" not in sidebar_texts(window)
    assert window.plugins_label.text() == ""
    assert window.plugins.plugins["late"].status == Status.LOADED
    page = window.show_page("test.late")
    assert isinstance(page, GeneratorPage) and page.generator.id == "test.late"


def test_a_hung_import_is_skipped_after_the_bound_and_the_rest_still_arrives(gate, start, qtbot):
    window = start(import_timeout=0.5)  # `late` never returns while the window waits; `markov` comes after it
    with qtbot.waitSignal(window.plugins_loaded, timeout=WAIT):
        pass
    late = window.plugins.plugins["late"]
    assert late.status == Status.FAILED and late.error.startswith("still importing after")
    assert "text.markov" in window.plugins.generators and "Plugins ⚠ 1" in sidebar_texts(window)


def test_closing_the_window_during_an_import_does_not_blame_the_plugin(gate, start, qtbot):
    window = start()
    qtbot.waitUntil(gate.STARTED.is_set, timeout=WAIT)
    window.close()  # returns although the import still waits
    assert not list(LoadJournal().folder.glob("*.mark.json"))
    assert "late" not in LoadJournal().stopped()


STARTUP = """
import sys, threading
from desktop.ui import app as app_module
from desktop.ui.main_window import MainWindow

seen = {}
load = MainWindow.load_plugins

def load_spy(window):
    import studiolo_test_gate as gate
    seen["shown_before_import"] = window.isVisible() and "late" in window.plugins.pending()
    window.plugins_loaded.connect(lambda: (seen.update(page=window.current_page_id()), window.close()))
    load(window)
    gate.STARTED.wait(60)
    seen["shown_while_importing"] = window.isVisible() and "test.late" not in window.plugins.generators
    gate.RELEASE.set()

MainWindow.load_plugins = load_spy
rc = app_module.run_app(["studiolo"])
print(seen)
sys.exit(rc)
"""


def test_the_app_starts_the_window_before_third_party_plugins(gate, studiolo_site):
    settings = Settings.load()
    settings.first_run_done = True
    settings.disabled_plugins = [*builtin_plugins(), "markov"]  # no library to preload: the window closes
    settings.save()  # as soon as the plugins are in (closing while torch imports is another story)
    result = run_python(STARTUP, env=studiolo_site.env())
    assert result.returncode == 0, result.stderr
    seen = eval(result.stdout.strip().splitlines()[-1])
    assert seen == {"shown_before_import": True, "shown_while_importing": True, "page": "test.late"}


SLOW = "import studiolo_test_clock\nstudiolo_test_clock.advance(5.3)\n"
CLOCK = "NOW = [100.0]\ndef now():\n    return NOW[0]\ndef advance(seconds):\n    NOW[0] += seconds\n"


def test_the_plugins_page_shows_a_slow_import_and_lifts_a_skip(studiolo_site, qtbot):
    install_markov(studiolo_site)
    studiolo_site.install("studiolo-test-clock", modules={"studiolo_test_clock": CLOCK}, entry_points={})
    studiolo_site.install("studiolo-slow", modules={"slow": SLOW + echo("test.slow")}, entry_points={"slow": "slow"})
    journal = LoadJournal()
    journal.folder.mkdir(parents=True)
    (journal.folder / "1-dead.mark.json").write_text('{"plugin": "markov", "started": 0}')  # nobody holds 1-dead
    import studiolo_test_clock

    view = PluginsView(PluginManager(clock=studiolo_test_clock.now).load())
    qtbot.addWidget(view)
    view.show()
    view.select("slow")
    assert view.detail_labels["warnings"].text() == "imported in 5.3 s, which slows Studiolo's start"

    view.select("markov")
    assert view.detail_labels["error"].text().startswith("Studiolo stopped while loading this plugin (at ")
    assert view.toggle_button.text() == "Enable"
    view.toggle_button.click()
    assert view.status_text(view.record("markov")) == "failed → enabled after restart"
    assert view.toggle_button.text() == "Disable" and view.restart_needed()
    assert LoadJournal().stopped() == {}
    assert PluginManager().load().plugins["markov"].status == Status.LOADED
