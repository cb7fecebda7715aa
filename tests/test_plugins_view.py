"""The Plugins page: statuses, a failed plugin's traceback, enabling and disabling (saved, after a restart), and
installing, updating and uninstalling plugins — with real pip runs in the throwaway environment of tests/pip_env.py
(offline, with the plugin wheels built for the session); the developer's .venv is never changed."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from helpers import install_markov
from pip_env import PipEnv, Wheels
from plugin_sources import echo, install_broken
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QPlainTextEdit

from desktop import __version__
from desktop.install import (
    RIGHTS_NOTICE,
    Installer,
    PipRunner,
    Plan,
    PlannedPackage,
    acknowledge_notice,
    notice_acknowledged,
    parse_spec,
)
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.plugin_install import pip_tasks
from desktop.ui.plugins_view import PluginsView

PIP_WAIT_MS = 120_000  # a generous limit for one pip step on a slow machine (a step takes about a second)


def no_installer() -> Installer:
    """The installer of pages that must not install: the default one would change this test run's own .venv."""
    raise AssertionError("this page was not meant to run pip")


@pytest.fixture
def view(qtbot, studiolo_site):
    install_markov(studiolo_site)
    install_broken(studiolo_site, ["import_error", "raising_hook"])
    widget = PluginsView(PluginManager(Settings()).load(), installer_factory=no_installer)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def rows(view: PluginsView, columns: tuple[str, ...] = ("Version", "Status", "Generators")) -> dict[str, list[str]]:
    """{plugin name: [the text of each of ``columns``]} for every row of the table."""
    table = view.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    wanted = [headers.index(name) for name in columns]
    return {table.item(r, 0).text(): [table.item(r, c).text() for c in wanted] for r in range(table.rowCount())}


def test_the_table_lists_each_plugin_with_version_status_and_generators(view):
    listed = rows(view)
    assert listed["markov"] == ["1.0.0", "loaded", "text.markov"]
    assert listed["import_error"] == ["0.1.0", "failed", ""]
    assert listed["raising_hook"] == ["0.1.0", "failed", ""]
    assert [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())] == [
        "Name", "Version", "Author", "Summary", "Generators", "Status"]
    assert rows(view, ("Author", "Summary"))["markov"] == ["Example Author", "A Markov-chain text generator"]


def test_the_details_of_a_loaded_plugin(view):
    assert view.select("markov")
    labels = view.detail_labels
    assert labels["distribution"].text() == "studiolo-markov"
    assert labels["author"].text() == "Example Author"
    assert labels["summary"].text() == "A Markov-chain text generator"
    assert labels["hooks"].text() == "register_generators"
    assert view.traceback_edit.isHidden() and view.copy_button.isHidden()
    assert view.toggle_button.text() == "Disable" and view.toggle_button.isEnabled()


@pytest.mark.parametrize(("name", "error"), [
    ("import_error", "import failed: ModuleNotFoundError"),
    ("raising_hook", "register_generators failed: RuntimeError: boom in hook"),
])
def test_a_failed_plugin_shows_its_error_and_full_traceback(view, name, error):
    assert view.select(name)
    assert error in view.detail_labels["error"].text()
    edit = view.findChild(QPlainTextEdit, "plugin_traceback")
    assert edit is view.traceback_edit and edit.isVisible() and edit.isReadOnly()
    text = edit.toPlainText()
    assert "Traceback (most recent call last)" in text and error.split(": ", 1)[1] in text
    assert text == view.manager.plugins[name].traceback
    assert edit.font().fixedPitch()
    view.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith(view.manager.plugins[name].error) and "Traceback (most recent call last)" in copied


def test_selecting_another_plugin_replaces_the_details(view):
    view.select("import_error")
    view.select("markov")
    assert view.traceback_edit.toPlainText() == "" and not view.traceback_edit.isVisible()
    assert view.detail_labels["error"].text() == "—"


def test_disabling_and_enabling_is_saved_and_applies_after_a_restart(view, qtbot):
    assert view.select("markov")
    assert not view.notice.isVisible()
    with qtbot.waitSignal(view.enabled_changed) as disabled:
        view.toggle_button.click()
    assert disabled.args == ["markov", False]
    assert Settings.load().disabled_plugins == ["markov"]
    assert rows(view)["markov"][1] == "loaded → disabled after restart"
    assert view.notice.isVisible() and "restart" in view.notice.text()
    assert view.selected_name() == "markov" and view.toggle_button.text() == "Enable"
    assert PluginManager(Settings.load()).load().plugins["markov"].status == "disabled"  # after a restart

    with qtbot.waitSignal(view.enabled_changed) as enabled:
        view.toggle_button.click()
    assert enabled.args == ["markov", True]
    assert Settings.load().disabled_plugins == []
    assert rows(view)["markov"][1] == "loaded"
    assert not view.notice.isVisible() and view.toggle_button.text() == "Disable"


def test_a_disabled_plugin_can_be_enabled_for_the_next_start(qtbot, studiolo_site):
    install_markov(studiolo_site)
    settings = Settings(disabled_plugins=["markov"])
    settings.save()
    view = PluginsView(PluginManager(settings).load())
    qtbot.addWidget(view)
    view.show()
    assert rows(view)["markov"] == ["1.0.0", "disabled", ""]
    view.select("markov")
    assert view.toggle_button.text() == "Enable"
    view.toggle_button.click()
    assert Settings.load().disabled_plugins == []
    assert rows(view)["markov"][1] == "disabled → enabled after restart"
    assert view.notice.isVisible()


def test_an_error_from_the_manager_is_shown_not_raised(view, qtbot):
    with qtbot.assertNotEmitted(view.enabled_changed):
        assert view.set_enabled("no_such_plugin", False) is False
    assert view.notice.isVisible() and "No plugin named 'no_such_plugin'" in view.notice.text()
    assert Settings.load().disabled_plugins == []


def test_a_plugin_with_warnings_shows_them(qtbot, studiolo_site, studiolo_plugins, monkeypatch):
    # a plugin that imports a "heavy" library at import time is loaded with a warning
    monkeypatch.setattr("desktop.plugins.HEAVY_MODULES", ("studiolo_fake_heavy",))
    studiolo_site.install("studiolo-heavy-lib", modules={"studiolo_fake_heavy": "X = 1\n"}, entry_points={})
    source = "import studiolo_fake_heavy\n" + echo("test.heavy")
    studiolo_site.install("studiolo-heavy", modules={"studiolo_heavy": source},
                          entry_points={"heavy": "studiolo_heavy"})
    view = PluginsView(studiolo_plugins("heavy"))
    qtbot.addWidget(view)
    view.show()
    assert rows(view)["heavy"] == ["0.1.0", "loaded", "test.heavy"]
    view.select("heavy")
    assert "imports studiolo_fake_heavy when it is loaded" in view.detail_labels["warnings"].text()
    assert view.detail_labels["warnings"].isVisible()


# -- installing, updating, uninstalling ------------------------------------------------------------------------


@pytest.fixture
def make_view(qtbot, studiolo_site, pip_env: PipEnv, wheels: Wheels):
    """``make_view(factory=None)``: a Plugins page (markov loaded) whose installer works on this test's throwaway
    environment, offline, with the session's plugin wheels (version 1.0 of each, and 1.1 of studiolo-hello)."""
    install_markov(studiolo_site)
    views: list[PluginsView] = []

    def make(factory: Callable[[], Installer] | None = None) -> PluginsView:
        view = PluginsView(PluginManager(Settings()).load(),
                           installer_factory=factory or (lambda: pip_env.installer(wheels.main, wheels.v2)))
        qtbot.addWidget(view)
        view.show()
        views.append(view)
        return view

    yield make
    for view in views:  # before the widgets go: no pip run outlives its test
        assert view.shutdown(PIP_WAIT_MS)


def plan(view: PluginsView, qtbot, spec: str):
    """Start installing ``spec`` and wait for the dry run's verdict; returns the Plan."""
    with qtbot.waitSignal(view.plan_ready, timeout=PIP_WAIT_MS) as planned:
        assert view.start_install(spec)
    return planned.args[0]


def confirm(view: PluginsView, qtbot) -> tuple[str, bool]:
    """Press "Install now" and wait for the install to end; returns the ``message`` it sent."""
    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        assert view.confirm_install()
        cancel = view.installs.cancel_button
        assert cancel.isVisible() and not cancel.isEnabled() and "cannot be stopped half-way" in cancel.toolTip()
    return said.args[0], said.args[1]


def test_install_from_a_wheel_file_then_uninstall_it(make_view, qtbot, pip_env: PipEnv, wheels: Wheels):
    acknowledge_notice()
    view = make_view()
    changed: list[bool] = []
    view.plugins_changed.connect(lambda: changed.append(True))
    before = pip_env.freeze()
    wheel = wheels.wheel("studiolo-hello")

    view.installs.file_button.click()  # the file chooser opens without blocking
    dialog = view.installs.file_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(view.plan_ready, timeout=PIP_WAIT_MS) as planned:
        dialog.selectFile(str(wheel))
        dialog.accept()
        assert view.installs.is_busy() and not view.installs.install_button.isEnabled()
        assert view.installs.cancel_button.isEnabled()  # the dry run can be cancelled
    the_plan = planned.args[0]
    assert the_plan.ok and the_plan.request.arg == str(wheel)
    log = view.installs.log_view.toPlainText()
    assert "==> Checking what installing the wheel" in log and "Would install studiolo-hello-1.0" in log
    status = view.installs.status_label.text()
    assert status.startswith("This will install:") and "studiolo-hello 1.0 (the plugin, from a file)" in status
    assert view.installs.confirm_button.isVisible() and pip_env.freeze() == before  # nothing installed yet
    assert "hello" not in rows(view)

    text, error = confirm(view, qtbot)
    assert not error and text.startswith("Installed studiolo-hello 1.0") and "Restart Studiolo" in text
    assert "Successfully installed studiolo-hello-1.0" in view.installs.log_view.toPlainText()
    assert view.installs.log_view.maximumBlockCount() == 3000  # a long log keeps its last lines only
    assert pip_env.freeze() == {**before, "studiolo-hello": "1.0"}
    assert changed and rows(view)["hello"] == ["1.0", "installed — restart Studiolo to load it", ""]
    assert view.selected_name() == "hello" and view.detail_labels["distribution"].text() == "studiolo-hello"
    assert view.notice.isVisible() and "restart" in view.notice.text()
    assert not view.installs.cancel_button.isVisible() and not view.installs.is_busy()

    # Uninstall: asked first from the button (No: nothing happens), at once with confirm=False.
    assert view.uninstall_button.isEnabled()
    view.uninstall_button.click()
    box = view.findChild(QMessageBox, "uninstall_confirm")
    assert box is not None and box.isVisible() and "studiolo-hello (plugin hello)" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert not view.installs.is_busy() and "studiolo-hello" in pip_env.freeze()
    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        assert view.start_uninstall("hello", confirm=False)
    assert said.args == ["Uninstalled studiolo-hello 1.0. Restart Studiolo for it to take effect.", False]
    assert "Successfully uninstalled studiolo-hello-1.0" in view.installs.log_view.toPlainText()
    assert pip_env.freeze() == before
    assert "hello" not in rows(view) and not view.notice.isVisible() and len(changed) == 2


def test_install_from_a_folder_is_planned_and_can_still_be_dropped(make_view, qtbot, pip_env: PipEnv, wheels: Wheels):
    acknowledge_notice()
    threads: list[threading.Thread] = []

    def factory() -> Installer:
        threads.append(threading.current_thread())
        return pip_env.installer()

    view = make_view(factory)
    before = pip_env.freeze()
    folder = wheels.projects / "studiolo-hello-1.0"
    view.installs.folder_button.click()
    dialog = view.installs.folder_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(view.plan_ready, timeout=PIP_WAIT_MS) as planned:
        dialog.selectFile(str(folder))
        dialog.accept()
    assert planned.args[0].ok and planned.args[0].request.kind == "folder"
    assert threads and threading.main_thread() not in threads  # pip runs on a worker, never on the GUI thread
    assert view.installs.spec_edit.text() == str(folder)
    assert view.installs.confirm_button.isVisible() and view.installs.cancel_button.isEnabled()
    with qtbot.waitSignal(view.message) as said:
        view.installs.cancel_button.click()  # before the install starts, the plan can still be dropped
    assert said.args == ["Not installed; nothing was changed.", False]
    assert not view.confirm_install() and not view.installs.confirm_button.isVisible()
    assert pip_env.freeze() == before and "hello" not in rows(view)


def test_an_incompatible_plugin_is_refused_with_the_reasons_and_nothing_changes(make_view, qtbot, pip_env: PipEnv):
    acknowledge_notice()
    view = make_view()
    before = pip_env.freeze()
    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        assert view.start_install("studiolo-future")
    text, error = said.args
    assert error and text.startswith("Cannot install studiolo-future; nothing was changed:")
    reason = f"studiolo-future 1.0 is made for Studiolo >=9,<10, but this is Studiolo {__version__}."
    status = view.installs.status_label.text().splitlines()
    assert status[0] == "Cannot install studiolo-future; nothing was changed:" and status[1] == f"• {reason}"
    assert "made for this Studiolo" in status[2]  # the hint
    assert not view.installs.confirm_button.isVisible() and not view.confirm_install()
    assert pip_env.freeze() == before and "future" not in rows(view)


class GatedRunner(PipRunner):
    """Holds pip's dry run, once pip has printed its first line, until the test cancels it."""

    def run(self, args, *, on_line=None, cancel=None, **kwargs):
        if cancel is None or "--dry-run" not in args:
            return super().run(args, on_line=on_line, cancel=cancel, **kwargs)

        def gated(line: str) -> None:
            on_line(line)
            cancel.wait(PIP_WAIT_MS / 1000)  # pip is running; the test cancels after it saw this line

        return super().run(args, on_line=gated, cancel=cancel, **kwargs)


def test_cancel_while_planning_installs_nothing(make_view, qtbot, pip_env: PipEnv, wheels: Wheels):
    acknowledge_notice()
    plain = pip_env.runner(wheels.main)
    view = make_view(lambda: Installer(GatedRunner(plain.python, index_args=plain.index_args, env=plain.env),
                                       build_isolation=False))
    before = pip_env.freeze()
    with qtbot.assertNotEmitted(view.plan_ready), qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        assert view.start_install("studiolo-helper-user")
        qtbot.waitUntil(lambda: "Looking in links" in view.installs.log_view.toPlainText(), timeout=PIP_WAIT_MS)
        assert view.installs.cancel_button.isEnabled()
        view.installs.cancel_button.click()
        assert not view.installs.cancel_button.isEnabled() and view.installs.status_label.text() == "Cancelling…"
    assert said.args == ["Cancelled; nothing was changed.", False]
    assert "Would install" not in view.installs.log_view.toPlainText()
    assert not view.installs.is_busy() and not view.installs.confirm_button.isVisible()
    assert pip_env.freeze() == before


class PlanAfterCancel(Installer):
    """A dry run that has ended (a plan is ready, no pip needed) but is reported only after the user's Cancel."""

    def plan(self, spec, *, on_line=None, cancel=None):
        on_line("the dry run has ended")
        cancel.wait(PIP_WAIT_MS / 1000)  # the test presses Cancel now
        return Plan(parse_spec(spec), True, packages=[PlannedPackage("studiolo-x", "1.0", requested=True)])


def test_cancel_pressed_as_the_dry_run_ends_drops_the_plan(make_view, qtbot, pip_env: PipEnv):
    acknowledge_notice()
    view = make_view(lambda: PlanAfterCancel(pip_env.runner()))
    with qtbot.assertNotEmitted(view.plan_ready), qtbot.waitSignal(view.message, timeout=10_000) as said:
        assert view.start_install("studiolo-x")
        qtbot.waitUntil(lambda: "the dry run has ended" in view.installs.log_view.toPlainText(), timeout=10_000)
        view.installs.cancel_button.click()
    assert said.args == ["Cancelled; nothing was changed.", False]
    assert not view.installs.is_busy() and not view.installs.confirm_button.isVisible() and not view.confirm_install()


def test_the_rights_notice_is_shown_once(make_view, qtbot):
    view = make_view()
    assert not notice_acknowledged()
    with qtbot.waitSignal(view.message) as said:
        assert view.start_install("studiolo-diffusers-free")
        box = view.findChild(QMessageBox, "rights_notice")
        assert box is not None and box.isVisible() and box.text() == RIGHTS_NOTICE
        assert view.installs.is_busy() and pip_tasks().running() == 0  # nothing runs before the answer
        box.button(QMessageBox.StandardButton.Cancel).click()
    assert said.args == ["Not installing: the notice was not accepted. Nothing was changed.", False]
    assert not notice_acknowledged() and not view.installs.is_busy()

    # Accepted: remembered, and the install goes on (a blocklisted name: refused before pip runs).
    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        assert view.start_install("studiolo-diffusers-free")
        assert view.accept_notice()
    assert notice_acknowledged()
    assert said.args[1] and "on Studiolo's blocklist" in said.args[0]

    for page in (view, make_view()):  # not again, not even on a new page
        with qtbot.waitSignal(page.message, timeout=PIP_WAIT_MS):
            assert page.start_install("studiolo-diffusers-free")
            assert page.installs.notice_box is None and not page.accept_notice()


def test_a_package_or_file_that_does_not_exist_gets_a_clear_message(make_view, qtbot, pip_env: PipEnv, wheels: Wheels,
                                                                     tmp_path):
    acknowledge_notice()
    view = make_view(lambda: pip_env.installer(wheels.empty))
    before = pip_env.freeze()
    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        view.start_install("studiolo-no-such-plugin")
    text, error = said.args
    assert error and text.startswith("Cannot install studiolo-no-such-plugin; nothing was changed: No package named "
                                     "studiolo-no-such-plugin was found in the folders searched.")
    assert "No package named studiolo-no-such-plugin" in view.installs.status_label.text()

    missing = tmp_path / "studiolo_gone-1.0-py3-none-any.whl"
    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        view.start_install(str(missing))
    assert said.args[1] and said.args[0].startswith(f"There is no file or folder {missing}.")
    assert view.installs.status_label.text().startswith(f"There is no file or folder {missing}.")
    assert not view.start_install("   ") and "Type the name of a package" in view.installs.status_label.text()
    assert pip_env.freeze() == before


def test_built_in_plugins_cannot_be_uninstalled_or_updated(make_view, qtbot):
    view = make_view()
    assert view.select("markov")  # a third-party plugin can be
    assert view.uninstall_button.isEnabled() and view.update_button.isEnabled()
    assert view.select("text") and "(built-in)" in rows(view)["text"][1]
    for button in (view.uninstall_button, view.update_button):
        assert not button.isEnabled() and "Built-in plugins are part of Studiolo" in button.toolTip()
    with qtbot.waitSignal(view.message) as said:
        assert not view.start_uninstall("text")
    assert said.args == ["text is a built-in plugin, part of Studiolo: it cannot be uninstalled. To turn it off, "
                         "select it and press Disable.", True]
    assert not view.start_update("text")
    assert not view.installs.is_busy() and pip_tasks().running() == 0


def test_update_and_uninstall_of_a_loaded_plugin_apply_after_a_restart(make_view, qtbot, studiolo_site,
                                                                      pip_env: PipEnv, wheels: Wheels):
    # The running app has loaded studiolo-hello 1.0; the same version is installed in the target environment.
    studiolo_site.install("studiolo-hello", version="1.0", modules={"studiolo_hello": echo("test.hello")},
                          entry_points={"hello": "studiolo_hello"}, requires=["studiolo>=0.2,<0.3"])
    installer = pip_env.installer(wheels.main)
    assert installer.install(installer.plan(str(wheels.wheel("studiolo-hello")))).ok
    acknowledge_notice()
    view = make_view()
    assert rows(view)["hello"] == ["1.0", "loaded", "test.hello"]

    with qtbot.waitSignal(view.plan_ready, timeout=PIP_WAIT_MS) as planned:
        assert view.select("hello")
        view.update_button.click()
    assert planned.args[0].summary() == ["studiolo-hello 1.0 → 1.1 (the plugin)"]
    assert view.installs.confirm_button.text() == "Update now"
    text, error = confirm(view, qtbot)
    assert not error and "studiolo-hello 1.0 → 1.1" in text
    assert pip_env.freeze()["studiolo-hello"] == "1.1"
    assert rows(view)["hello"] == ["1.0", "loaded → version 1.1 after restart", "test.hello"]
    assert view.notice.isVisible()

    with qtbot.waitSignal(view.message, timeout=PIP_WAIT_MS) as said:
        assert view.start_uninstall("studiolo-hello")  # by its package name
    assert not said.args[1] and "studiolo-hello" not in pip_env.freeze()
    assert rows(view)["hello"][1] == "loaded → uninstalled after restart"
    view.select("hello")
    assert not view.uninstall_button.isEnabled() and "restart Studiolo" in view.uninstall_button.toolTip()
