"""Starting the app: Qt application, logging, error hooks, translations, theme, built-in plugins, engine, window —
then, in the background once the window is on screen, the third-party plugins and the heavy libraries."""

from __future__ import annotations

import logging
import sys
import threading
import traceback

from PySide6.QtCore import QObject, Qt, QTimer, QtMsgType, Signal, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop.api import StudioloError
from desktop.logs import setup_logging
from desktop.plugins import PluginManager
from desktop.ui.tasks import exit_if_tasks_outlive

log = logging.getLogger("desktop.ui")


GUI_SWITCH_INTERVAL = 0.001


def tune_gil_for_gui() -> None:
    """Let the GUI thread get Python's GIL back within 1 ms (default 5 ms) while workers run Python code.

    Every queued signal and timer the window handles needs the GIL; with the default interval, a worker busy in
    Python (a tokenizer, a Markov chain) makes each of them wait up to 5 ms, and the window stutters (measured in
    benchmarks/window.py). The cost is a little more switching in the workers.
    """
    sys.setswitchinterval(GUI_SWITCH_INTERVAL)


class ErrorRelay(QObject):
    """Carries error reports from any thread to the window (a queued signal)."""

    reported = Signal(str, bool)  # text, show a dialog


def install_error_hooks(window) -> ErrorRelay:
    """Uncaught exceptions (any thread) and Qt warnings are logged and shown; never a silent crash."""
    relay = ErrorRelay(window)
    relay.reported.connect(window.on_error_reported)  # a QObject's method: runs on the GUI thread

    def excepthook(exc_type, exc, tb) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception\n%s", text)
        relay.reported.emit(text, True)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    def qt_messages(kind: QtMsgType, _context, message: str) -> None:
        if kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            log.warning("Qt: %s", message)
            if kind != QtMsgType.QtWarningMsg:
                relay.reported.emit(f"Qt: {message}", False)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    qInstallMessageHandler(qt_messages)
    return relay


def run_app(argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop until it closes. Returns the exit status."""
    from desktop.engine.engine import Engine
    from desktop.ui.i18n import install_translators
    from desktop.ui.main_window import MainWindow
    from desktop.ui.theme import apply_theme

    if QApplication.instance() is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Studiolo")
    app.setOrganizationName("Studiolo")
    app.setDesktopFileName("studiolo")
    setup_logging()
    tune_gil_for_gui()
    translators = install_translators(app)
    plugins = PluginManager().load(third_party=False)  # the others after the window shows (load_plugins)
    apply_theme(app, plugins.settings.theme)
    try:
        engine = Engine(plugins)
    except StudioloError as exc:  # e.g. a library database from a newer Studiolo: say so, change nothing
        log.error("cannot start: %s", exc)
        QMessageBox.critical(None, app.translate("app", "Studiolo cannot start"), str(exc))
        return 1
    window = MainWindow(plugins, engine)
    hooks = install_error_hooks(window)
    for warning in plugins.settings.warnings:
        window.report_error(warning, dialog=False)
    app.aboutToQuit.connect(lambda: engine.shutdown(timeout=10))  # also when quit without closing the window
    window.show()
    QTimer.singleShot(0, window.load_plugins)  # after the first paint: third-party plugins, then the libraries
    try:
        code = app.exec()
        exit_if_tasks_outlive(code)  # e.g. a library import still under way: never destroyed while it runs
        return code
    finally:
        qInstallMessageHandler(None)
        sys.excepthook = sys.__excepthook__
        threading.excepthook = threading.__excepthook__
        del hooks, translators
