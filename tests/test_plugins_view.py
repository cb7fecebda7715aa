"""The Plugins page: statuses, a failed plugin's traceback, enabling and disabling (saved, after a restart)."""

from __future__ import annotations

import pytest
from helpers import install_markov
from plugin_sources import echo, install_broken
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPlainTextEdit

from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.plugins_view import PluginsView



@pytest.fixture
def view(qtbot, studiolo_site):
    install_markov(studiolo_site)
    install_broken(studiolo_site, ["import_error", "raising_hook"])
    widget = PluginsView(PluginManager(Settings()).load())
    qtbot.addWidget(widget)
    widget.show()
    return widget


def rows(view: PluginsView) -> dict[str, list[str]]:
    table = view.table
    return {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, table.columnCount())]
            for r in range(table.rowCount())}


def test_the_table_lists_each_plugin_with_version_status_and_generators(view):
    listed = rows(view)
    assert listed["markov"] == ["1.0.0", "loaded", "text.markov"]
    assert listed["import_error"] == ["0.1.0", "failed", ""]
    assert listed["raising_hook"] == ["0.1.0", "failed", ""]
    assert [view.table.horizontalHeaderItem(c).text() for c in range(4)] == [
        "Name", "Version", "Status", "Generators"]


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
