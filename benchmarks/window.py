"""The window: time until it is shown, and the GUI thread's longest stalls while jobs stream previews.

1. Time from starting the process to the window's first paint, for Studiolo (example plugins installed) and
   for a bare PySide6 QMainWindow, alternated, in fresh processes: median and spread, and the ratio.
2. A 5 ms heartbeat timer on the GUI thread records the gaps between its ticks: while the heavy libraries are
   imported in the background right after the window shows (phase "import"), then while the example generator
   runs a stream of jobs whose previews are delivered to the window (phase "jobs"). p50, p99 and max per phase.

    .venv/bin/python -m benchmarks.window [--runs 10] [--jobs 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.stats import describe, percentile, save_results, summary

ROOT = Path(__file__).resolve().parent.parent
_app = None

BARE = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
app = QApplication(sys.argv)
w = QMainWindow(); w.setCentralWidget(QLabel("bare")); w.resize(1200, 780); w.show()
QTimer.singleShot(0, lambda: (print("SHOWN", flush=True), app.quit()))
app.exec()
"""

STUDIOLO = """
import sys
from desktop.ui import app as app_module
from desktop.ui.main_window import MainWindow

def shown(window):
    print("SHOWN", flush=True)
    window.close()

MainWindow.preload_libraries = shown  # the first call after show(): the window has been painted
sys.exit(app_module.run_app(["studiolo"]))
"""


def install_examples(site_dir: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    import torch_plugin
    from helpers import install_markov

    from desktop.testing import PluginSite

    site = PluginSite(site_dir)
    install_markov(site)
    torch_plugin.install(site)
    return site


def time_to_window(runs: int, env: dict[str, str]) -> dict:
    times: dict[str, list[float]] = {"bare PySide6 window": [], "Studiolo window": []}
    scripts = {"bare PySide6 window": BARE, "Studiolo window": STUDIOLO}
    for _ in range(runs):
        for name, script in scripts.items():
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
            for line in proc.stdout:
                if line.startswith("SHOWN"):
                    times[name].append(time.perf_counter() - start)
                    break
            proc.wait(timeout=120)
    results = {name: summary(values) for name, values in times.items()}
    for name, stats in results.items():
        print(describe(name, stats))
    ratio = results["Studiolo window"]["median"] / results["bare PySide6 window"]["median"]
    print(f"Studiolo / bare window (medians): ×{ratio:.2f}")
    return {"results": results, "ratio": ratio}


def stalls(jobs: int) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.ui.app import tune_gil_for_gui
    from desktop.ui.main_window import MainWindow

    tune_gil_for_gui()  # as run_app does
    global _app
    _app = QApplication.instance() or QApplication([])
    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins))
    window.show()
    gaps: dict[str, list[float]] = {"import": [], "jobs": []}
    phase = {"name": "import"}
    clock = QElapsedTimer()
    clock.start()
    last = {"t": clock.nsecsElapsed()}

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps[phase["name"]].append((now - last["t"]) / 1e6)
        last["t"] = now

    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    loop = QEventLoop()
    window.preload_libraries()
    window.preload_task.finished.connect(loop.quit)
    loop.exec()
    phase["name"] = "jobs"
    window.show_page("text.markov")
    image_jobs = list(range(0, jobs, 4))
    total = jobs + len(image_jobs)
    finished = {"n": 0}

    def count(*_args) -> None:
        finished["n"] += 1
        if finished["n"] == total:
            loop.quit()

    window.engine.job_finished.connect(count)
    for i in range(jobs):
        window.engine.submit("text.markov", {"words": 2000}, seed=i)
        if i in image_jobs:
            window.engine.submit("test.noise", {"steps": 50}, seed=i)
    loop.exec()
    heartbeat.stop()
    window.close()
    results = {}
    for name, values in gaps.items():
        values = [v - 5.0 for v in values]  # the heartbeat's own interval is not a stall
        results[name] = {"p50_ms": statistics.median(values), "p99_ms": percentile(values, 0.99),
                         "max_ms": max(values), "beats": len(values)}
        print(f"GUI stall while {name:<7} p50 {results[name]['p50_ms']:6.2f} ms   p99 {results[name]['p99_ms']:6.2f} ms"
              f"   max {results[name]['max_ms']:7.2f} ms   ({len(values)} beats)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIOLO_HOME"] = str(Path(tmp) / "home")
        site = install_examples(Path(tmp) / "site")
        env = site.env()
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        startup = time_to_window(args.runs, env)
        site.activate()
        stall = stalls(args.jobs)
    save_results("window", {"startup": startup, "stalls": stall})


if __name__ == "__main__":
    main()
