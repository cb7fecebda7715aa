"""The main window as the tests open it: over the plugins installed so far, the first-run page dealt with, shown and
active (keyboard shortcuts reach the active window only)."""

from __future__ import annotations

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow


def open_window(qtbot) -> MainWindow:
    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(window)
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    return window
