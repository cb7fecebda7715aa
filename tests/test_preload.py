"""The window's preload of the generators' libraries (desktop/ui/preload.py): in each generator's worker process,
never in the window's process, except for generators that run in it; failures reported; closing the window while a
worker process imports leaves no process behind. (The start-up itself, with torch: tests/test_main_window.py.)"""

from __future__ import annotations

import os
import sys

from helpers import builtin_plugins, process_gone, run_python
from PySide6.QtCore import QObject

from desktop.engine.cache import ModelCache
from desktop.engine.devices import available_devices
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.preload import plan_preload, preload, start_preload
from desktop.ui.tasks import TaskState

WAIT = 120_000  # ms: a safety net for a hang, never a timing the tests rely on
BUILTINS = builtin_plugins()  # their libraries are torch & co.: not needed here

LIBS = '''
import os
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

if os.environ.get("STUDIOLO_WORKER") == "test.refuses":
    raise RuntimeError("this plugin cannot run in a worker process")


@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)


class Libs(Generator):
    id, name, kind, Params = "test.libs", "Libs", "text", Params
    preload_modules = ("studiolo_worker_lib", "studiolo_broken_lib", "studiolo_not_installed_lib")

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text)]


class Refuses(Libs):
    id, name = "test.refuses", "Refuses"


class Light(Libs):
    id, name = "test.light", "Light"
    runs_in_process = True
    preload_modules = ("studiolo_light_lib",)


@hookimpl
def register_generators(register):
    for generator in (Libs(), Refuses(), Light()):
        register(generator)
'''


def test_libraries_are_imported_in_the_worker_processes_and_failures_named(studiolo_site, qtbot):
    studiolo_site.install("studiolo-test-libs", entry_points={"libs": "studiolo_test_libs"}, modules={
        "studiolo_test_libs": LIBS, "studiolo_worker_lib": "X = 1\n", "studiolo_light_lib": "X = 1\n",
        "studiolo_broken_lib": "raise ImportError('needs libfoo, which is not installed')\n"})
    plugins = PluginManager(Settings(disabled_plugins=BUILTINS)).load()
    engine = Engine(plugins, cache=ModelCache(), in_process=False)
    owner = QObject()
    reported = []
    try:
        modules, workers = plan_preload(engine, plugins.generators)
        assert modules == ["studiolo_light_lib"] and [w.generator_id for w in workers] == ["test.libs", "test.refuses"]
        task = start_preload(modules, owner, engine=engine, workers=workers)
        task.reported.connect(reported.append)
        with qtbot.waitSignal(task.finished, timeout=WAIT) as done:
            pass
        preloaded = done.args[0]
        assert reported == ["studiolo_light_lib", "Libs", "Refuses"]
        assert "studiolo_light_lib" in sys.modules  # its generator runs here: imported here, as before
        assert "studiolo_worker_lib" not in sys.modules  # imported in the worker process only
        libs, refuses = preloaded.failures  # a library that is not installed is no failure (its jobs say so)
        assert libs == "Libs: studiolo_broken_lib: ImportError: needs libfoo, which is not installed"
        assert refuses.startswith("Refuses: The plugin of test.refuses could not be imported in its worker process: "
                                  "RuntimeError: this plugin cannot run in a worker process")
        # The worker processes did not import torch (they report no devices); this test process may have imported it
        # in earlier tests, and then the in-process part reports the devices it sees.
        assert preloaded.devices == ([] if "torch" not in sys.modules else list(available_devices()))
        pid = engine.runner("test.libs").process.pid
        assert pid is not None and not process_gone(pid, timeout=0)  # started, and kept for the first job
    finally:
        assert engine.shutdown(timeout=10)
    assert engine.runner("test.libs").process.pid is None and process_gone(pid)


class ClosedDuringTheFirstPreload:
    """The engine, as seen by a preload whose window closes while the first worker process imports."""

    def __init__(self, engine: Engine, state: TaskState) -> None:
        self.engine, self.state = engine, state

    def preload(self, generator_id: str, modules: list[str]) -> dict:
        result = self.engine.preload(generator_id, modules)
        self.state.cancel_event.set()  # what MainWindow.closeEvent does, before the engine shuts down
        return result

    def runner(self, generator_id: str):
        return self.engine.runner(generator_id)


def test_a_preload_cancelled_while_a_process_starts_ends_it_and_starts_no_other(studiolo_site, qtbot):
    studiolo_site.install("studiolo-test-libs", entry_points={"libs": "studiolo_test_libs"}, modules={
        "studiolo_test_libs": LIBS.replace("if os.environ", "if False and os.environ"),
        "studiolo_worker_lib": "X = 1\n", "studiolo_light_lib": "X = 1\n", "studiolo_broken_lib": "X = 1\n"})
    plugins = PluginManager(Settings(disabled_plugins=BUILTINS)).load()
    engine = Engine(plugins, cache=ModelCache(), in_process=False)
    try:
        _modules, workers = plan_preload(engine, plugins.generators)
        state = TaskState(0)
        preloaded = preload(ClosedDuringTheFirstPreload(engine, state), [], workers, state)
        assert preloaded.failures == []
        first, second = engine.runner("test.libs").process, engine.runner("test.refuses").process
        assert (first.starts, first.pid) == (1, None)  # started, then ended as the window closed
        assert second.starts == 0
    finally:
        assert engine.shutdown(timeout=10)


CLOSE_WHILE_A_WORKER_IMPORTS = """
import os, sys
from PySide6.QtCore import QTimer
from desktop.ui import app as app_module
from desktop.ui.main_window import MainWindow

preload = MainWindow.preload_libraries


def preload_then_close(window):  # closes the window once the worker process is inside the import
    preload(window)
    timer = window.close_timer = QTimer(window)

    def close_when_importing():
        if os.path.exists(os.environ["STUDIOLO_TEST_PID_FILE"]):
            timer.stop()
            window.close()

    timer.timeout.connect(close_when_importing)
    timer.start(20)


MainWindow.preload_libraries = preload_then_close
print("window process", os.getpid(), flush=True)
sys.exit(app_module.run_app(["studiolo"]))
"""

BLOCKED_LIB = """
import os
pid_file = os.environ["STUDIOLO_TEST_PID_FILE"]
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
open(os.environ["STUDIOLO_TEST_FIFO"]).read()  # nobody ever writes: the import never ends
"""


def test_closing_the_window_while_a_worker_process_imports_leaves_no_process(studiolo_site, tmp_path):
    source = LIBS.replace('("studiolo_worker_lib", "studiolo_broken_lib", "studiolo_not_installed_lib")',
                          '("studiolo_blocked_lib",)')
    studiolo_site.install("studiolo-test-libs", entry_points={"libs": "studiolo_test_libs"},
                          modules={"studiolo_test_libs": source, "studiolo_blocked_lib": BLOCKED_LIB})
    settings = Settings.load()
    settings.first_run_done = True
    settings.disabled_plugins = BUILTINS
    settings.save()
    fifo, pid_file = tmp_path / "never-written", tmp_path / "worker.pid"
    os.mkfifo(fifo)
    env = studiolo_site.env()
    env.update(STUDIOLO_TEST_FIFO=str(fifo), STUDIOLO_TEST_PID_FILE=str(pid_file), STUDIOLO_IN_PROCESS="0")
    result = run_python(CLOSE_WHILE_A_WORKER_IMPORTS, env=env)
    assert result.returncode == 0, result.stderr
    assert "Destroyed while thread" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    worker = int(pid_file.read_text())
    assert f"window process {worker}" not in result.stdout  # the import ran in a worker process
    assert process_gone(worker)
