"""The first window: generators grouped by kind, or a page explaining how to add one."""

from __future__ import annotations

from helpers import install_markov
from plugin_sources import install_broken
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from desktop.plugins import PluginManager
from desktop.ui.app import run_app
from desktop.ui.main_window import MainWindow


def test_generators_are_listed_by_kind(qtbot, studiolo_site, studiolo_plugins):
    install_markov(studiolo_site)
    install_broken(studiolo_site, ["import_error"])
    window = MainWindow(studiolo_plugins("markov", "import_error"))
    qtbot.addWidget(window)
    window.show()
    assert window.pages.currentWidget() is window.generator_tree
    kind = window.generator_tree.topLevelItem(0)
    assert kind.text(0) == "Text" and kind.child(0).text(0) == "Markov chain" and kind.child(0).text(1) == "markov"
    assert "import_error" in window.statusBar().currentMessage()
    assert not window.grab().toImage().isNull()


def test_with_no_generators_a_page_explains_how_to_add_one(qtbot, monkeypatch):
    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", "")
    window = MainWindow(PluginManager().load())
    qtbot.addWidget(window)
    assert window.pages.currentWidget() is window.empty_page
    assert "No generators installed" in window.empty_page.text()


def test_run_app_shows_the_main_window_and_returns_on_quit(qapp, studiolo_site):
    install_markov(studiolo_site)
    seen = []

    def look_and_quit():
        seen.extend(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        for w in seen:
            w.close()  # closing the last window ends the event loop

    QTimer.singleShot(0, look_and_quit)
    assert run_app() == 0
    assert len(seen) == 1 and seen[0].windowTitle() == "Studiolo"
    assert "text.markov" in seen[0].manager.generators
