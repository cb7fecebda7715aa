"""The main window as the tests open it: over the plugins installed so far, the first-run page dealt with, shown and
active (keyboard shortcuts reach the active window only)."""

from __future__ import annotations

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow


def open_window(qtbot, *, in_process: bool = False) -> MainWindow:
    """The real window on a real engine; ``in_process``: generators run in this process (torch is imported here
    already; no worker process to start), for tests of what the window does with jobs, not of the processes."""
    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache(), in_process=in_process))
    qtbot.addWidget(window)
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    return window
