"""desktop.ui.tasks: the UI's one way to run work off the GUI thread — results on the GUI thread, cancellation,
keep-alive, owners deleted mid-task, bounded shutdown, tasks outliving the window, and no other thread helper in
desktop/ui."""

from __future__ import annotations

import gc
import re
import threading
import time
from pathlib import Path

import shiboken6
from helpers import run_python
from PySide6.QtCore import QObject

from desktop.ui.tasks import TaskGroup, running_tasks

UI = Path(__file__).resolve().parent.parent / "desktop" / "ui"
WAIT = 10_000


def test_work_runs_off_the_gui_thread_and_everything_comes_back_on_it_in_order(qtbot):
    gui = threading.get_ident()
    seen: list[tuple[str, object, int]] = []
    group = TaskGroup("library")

    def work(state):  # type: ignore[no-untyped-def]
        state.progress(1, 2)
        state.report("line one")
        state.report("line two")
        return threading.get_ident()

    task = group.run(work, on_started=lambda: seen.append(("started", None, threading.get_ident())),
                     on_progress=lambda done, total: seen.append(("progress", (done, total), threading.get_ident())),
                     on_report=lambda line: seen.append(("report", line, threading.get_ident())),
                     on_done=lambda worker: seen.append(("done", worker, threading.get_ident())))
    with qtbot.waitSignal(task.ended, timeout=WAIT):
        pass
    assert [(kind, value) for kind, value, _ in seen[:-1]] == [
        ("started", None), ("progress", (1, 2)), ("report", "line one"), ("report", "line two")]
    assert seen[-1][0] == "done" and seen[-1][1] != gui  # the work ran on a pool thread
    assert all(thread == gui for _, _, thread in seen)  # every callback on the GUI thread
    assert group.pending() == 0 and task.is_ended


def test_a_failure_comes_back_as_the_exception_and_an_unstarted_cancelled_task_never_runs(qtbot):
    group = TaskGroup("first-run")  # one thread: the second task waits behind the first
    release = threading.Event()
    failures: list[BaseException] = []
    ran: list[str] = []
    cancelled: list[str] = []
    blocker = group.run(lambda state: release.wait(WAIT / 1000) and 1 / 0, on_failed=failures.append)
    queued = group.run(lambda state: ran.append("queued"), on_cancelled=lambda: cancelled.append("queued"))
    queued.cancel()
    release.set()
    qtbot.waitUntil(lambda: group.pending() == 0, timeout=WAIT)
    assert [type(e) for e in failures] == [ZeroDivisionError] and blocker.is_ended
    assert ran == [] and cancelled == ["queued"]


def test_cancel_reaches_the_running_function(qtbot):
    group = TaskGroup("models")
    started = threading.Event()
    outcome: list[str] = []

    def work(state):  # type: ignore[no-untyped-def]
        started.set()
        state.cancel_event.wait(WAIT / 1000)  # stands for work that checks state.cancelled between steps
        state.raise_if_cancelled()
        return "not cancelled"

    task = group.run(work, on_done=outcome.append, on_cancelled=lambda: outcome.append("cancelled"))
    qtbot.waitUntil(started.is_set, timeout=WAIT)
    with qtbot.waitSignal(task.cancelled, timeout=WAIT):
        task.cancel()
    assert outcome == ["cancelled"]


def test_higher_priority_runs_first(qtbot):
    group = TaskGroup("test-priority", threads=1)
    release = threading.Event()
    order: list[int] = []
    group.run(lambda state: release.wait(WAIT / 1000))
    for priority in (1, 3, 2):
        group.run(lambda state, p=priority: order.append(p), priority=priority)
    release.set()
    qtbot.waitUntil(lambda: group.pending() == 0, timeout=WAIT)
    assert order == [3, 2, 1]


def test_tasks_are_kept_alive_without_a_reference_from_whoever_asked(qtbot):
    results: list[str] = []
    release = threading.Event()
    TaskGroup("scans").run(lambda state: release.wait(WAIT / 1000) and "arrived", on_done=results.append)
    gc.collect()  # neither the group nor the task is referenced by the test
    release.set()
    qtbot.waitUntil(lambda: results == ["arrived"], timeout=WAIT)


class View(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[object] = []

    def on_done(self, result: object) -> None:
        self.got.append(result)


def test_an_owner_deleted_while_its_task_runs_gets_nothing(qtbot):
    view = View()
    group = TaskGroup("scans", owner=view)
    started, release = threading.Event(), threading.Event()
    got: list[object] = []

    def work(state):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(WAIT / 1000)
        return "late"

    task = group.run(work, on_done=got.append, on_report=got.append)
    qtbot.waitUntil(started.is_set, timeout=WAIT)
    shiboken6.delete(view)  # the Qt object goes; the Python callbacks would still be callable
    release.set()
    qtbot.waitUntil(lambda: group.pending() == 0, timeout=WAIT)
    assert got == [] and task.is_ended and task.detached


DELETED_VIEWS = """
import sys
import shiboken6
from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication, QLabel
from desktop.ui.tasks import TaskGroup

app = QApplication(sys.argv)
made, done = [], []
for n in range(60):
    label = QLabel()
    # the callbacks touch the widget: delivered to a deleted widget they would raise or crash
    made.append(TaskGroup("scans", owner=label).run(
        lambda state, n=n: state.report(n) or n, on_report=lambda v, w=label: w.setText(str(v)),
        on_done=lambda v, w=label: w.setText(str(v)) or done.append(v)))
    shiboken6.delete(label)  # deleted before, while or after its task runs, before anything is delivered
    del label
while not all(task.is_ended for task in made):
    app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
print("delivered", len(done))
"""


def test_views_deleted_while_their_tasks_run_receive_nothing_and_nothing_crashes():
    result = run_python(DELETED_VIEWS)
    assert result.returncode == 0, result.stderr
    assert "delivered 0" in result.stdout, result.stdout
    assert "Internal C++ object" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_shutdown_waits_with_a_bound_and_what_still_runs_is_kept_until_it_ends(qtbot):
    group = TaskGroup("models")
    started, release = threading.Event(), threading.Event()
    got: list[object] = []

    def stubborn(state):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(WAIT / 1000)  # ignores the cancel
        return "done"

    task = group.run(stubborn, on_done=got.append)
    qtbot.waitUntil(started.is_set, timeout=WAIT)
    begun = time.monotonic()
    assert group.shutdown(timeout_ms=200) is False  # it does not wait past the bound
    assert time.monotonic() - begun < 5
    assert task.is_cancelling() and "models" in running_tasks()
    assert group.run(lambda state: None) is None and group.submit(lambda: None) == -1  # no more work
    release.set()
    qtbot.waitUntil(lambda: task.is_ended, timeout=WAIT)
    assert got == [] and "models" not in running_tasks()  # shut down: its result is dropped


OUTLIVING = """
import sys
import threading
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.ui.tasks import TaskGroup, exit_if_tasks_outlive

app = QApplication(sys.argv)


def never_ends(state):  # an import that cannot be interrupted
    state.report("running")
    threading.Event().wait()


TaskGroup("preload").run(never_ends, on_report=lambda _name: app.quit())
code = app.exec()
exit_if_tasks_outlive(code)
print("returned")  # not reached: the task still runs
"""


def test_a_task_running_when_the_app_quits_does_not_abort_the_process():
    result = run_python(OUTLIVING)
    assert result.returncode == 0, result.stderr
    assert "Destroyed while thread" not in result.stderr
    assert "returned" not in result.stdout


FORBIDDEN = re.compile(r"\bQThread\w*|\bQRunnable\b|moveToThread|threading\.Thread\b|ThreadPoolExecutor"
                       r"|from threading import[^\n]*\bThread\b|\bthreading\.Timer\b")


def test_no_module_of_the_ui_but_tasks_runs_threads_of_its_own():
    offenders = []
    for path in sorted(UI.rglob("*.py")):
        if path == UI / "tasks.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(UI.parent.parent)}:{number}: {line.strip()}")
    assert offenders == [], "use desktop.ui.tasks:\n" + "\n".join(offenders)
    assert FORBIDDEN.search("thread = QThread(self)") and FORBIDDEN.search("pool = QThreadPool()")
