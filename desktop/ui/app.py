"""Start the Qt application and show the main window."""

from __future__ import annotations

import sys

from desktop.plugins import PluginManager


def run_app(argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop until it closes. Returns the exit status."""
    from PySide6.QtWidgets import QApplication

    from desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Studiolo")
    app.setOrganizationName("Studiolo")
    window = MainWindow(PluginManager().load())
    window.show()
    return app.exec()
