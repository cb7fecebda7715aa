"""What panel authors get from desktop.api, used by a real plugin's panel in the real window: the host's form
(``ParamsForm``), the job follower (``JobFollower``), and the host's signals declared once (``QtPanelHost``)."""

from __future__ import annotations

import inspect
import re
import textwrap

import pytest
from helpers import ROOT
from plugin_sources import install_form_panel
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit, QSpinBox
from windows import open_window

import desktop.api.panel
from desktop.api import to_json
from desktop.api.widgets import ParamsForm, QtPanelHost
from desktop.testing.panel_host import RecordingPanelHost
from desktop.ui.main_window import MainWindow
from desktop.ui.panel_host import GeneratorHost

WAIT = 60_000
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
GUIDE_PANEL_PLUGIN = '''
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)

class Echo(Generator):
    id, name, kind, Params = "test.guidepanel", "Guide panel", "text", Params
    runs_in_process = True
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text)]
%s
@hookimpl
def register_generators(register):
    register(Echo())
'''


@pytest.fixture
def make_window(studiolo_site, qtbot):
    """The main window over the plugins installed so far (the first-run page dealt with)."""
    windows = []

    def make() -> MainWindow:
        window = open_window(qtbot)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def window(studiolo_site, make_window):
    install_form_panel(studiolo_site)
    return make_window()


def test_a_plugin_panel_builds_the_host_form_and_follows_only_its_own_jobs(window, qtbot):
    page = window.show_page("test.formpanel")
    panel = page.custom_panel
    assert panel is not None and panel.objectName() == "form_panel"
    form = panel.form
    assert isinstance(form, ParamsForm) and form.field_names() == ["text", "times"]
    text, times = form.field_widget("text"), form.field_widget("times")
    assert isinstance(text, QPlainTextEdit) and isinstance(times, QSpinBox)
    assert (times.minimum(), times.maximum(), times.toolTip()) == (1, 5, "How many times to say it.")

    text.clear()
    qtbot.keyClicks(text, "hey")
    times.setValue(3)
    with qtbot.waitSignal(panel.jobs.finished, timeout=WAIT):
        qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # the panel's generate()
    job_id = panel.events[1][1]
    assert panel.events == [("running", True), ("queued", job_id), ("progressed", job_id, "halfway"),
                            ("finished", job_id, "hey hey hey"), ("running", False)]
    assert panel.result.text() == "hey hey hey" and not panel.jobs.is_running()

    # a job of the same generator that the panel did not submit (the Activity view's "run again"): the host
    # reports it, the panel's follower does not
    seen_by_host = []
    page.host.job_finished.connect(lambda job, outputs: seen_by_host.append(job))
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
        other = window.engine.submit("test.formpanel", {"text": "not mine"}).id
    assert seen_by_host == [other]
    assert len(panel.events) == 5 and panel.result.text() == "hey hey hey"


def test_reused_params_fill_the_plugin_form_and_keep_the_fields_it_does_not_show(window, qtbot):
    page = window.show_page("test.formpanel")
    panel = page.custom_panel
    page.host.apply_params({"text": "again", "times": 2, "shout": True})  # e.g. "reuse parameters" in the gallery
    assert panel.form.field_widget("text").toPlainText() == "again"
    assert panel.form.field_widget("times").value() == 2
    assert panel.form.values() == {"text": "again", "times": 2}
    assert to_json(panel.form.params()) == {"text": "again", "times": 2, "shout": True}
    with qtbot.waitSignal(panel.jobs.finished, timeout=WAIT):
        panel.generate()
    assert panel.result.text() == "AGAIN AGAIN"  # shout, which the form does not show, came with the params


def test_the_guides_custom_panel_example_works_in_the_window(studiolo_site, make_window, qtbot):
    block = next(code for code in re.findall(r"```python\n(.*?)```", GUIDE, re.DOTALL)
                 if "def create_panel(self, host):" in code)
    studiolo_site.install("studiolo-test-guide-panel", modules={
        "studiolo_test_guide_panel": GUIDE_PANEL_PLUGIN % textwrap.indent(textwrap.dedent(block), "    ")},
        entry_points={"guidepanel": "studiolo_test_guide_panel"})
    window = make_window()
    page = window.show_page("test.guidepanel")
    panel = page.custom_panel
    editor = panel.form.field_widget("text")
    editor.setPlainText("from the guide")
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT):
        assert page.generate() is not None  # Ctrl+Enter
    qtbot.waitUntil(lambda: panel.result.text() == "from the guide", timeout=WAIT)
    page.host.apply_params({"text": "reused"})
    assert editor.toPlainText() == "reused"
    messages = []
    page.message.connect(lambda text, error: messages.append((text, error)))
    page.host.apply_params({"text": 5})  # not text: refused with a message, the form as it was
    assert editor.toPlainText() == "reused" and messages and messages[-1][1] is True


def test_the_host_signals_are_declared_once_on_qt_panel_host():
    declared = {name for name, value in vars(QtPanelHost).items() if isinstance(value, Signal)}
    assert declared == {"job_queued", "job_started", "job_progressed", "job_previewed", "job_finished",
                        "job_failed", "job_cancelled", "params_applied"}
    for host in (GeneratorHost, RecordingPanelHost):  # the window's host and the test host declare none again
        assert issubclass(host, QtPanelHost)
        assert [name for name, value in vars(host).items() if isinstance(value, Signal)] == [], host
    documented = re.findall(r'^    (\w+) = Signal\(.*\)\n    """', inspect.getsource(QtPanelHost), re.MULTILINE)
    assert set(documented) == declared  # each documented where it is declared
    assert all(f"``{name}``" in inspect.getdoc(desktop.api.panel) for name in declared)  # and named in the API
