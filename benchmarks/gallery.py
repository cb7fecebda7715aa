"""The gallery at 10,000 items: time to first paint, and the GUI thread's stalls while scrolling through them.

1. A library of 10,000 real items (PNGs, texts, WAVs: ``tests/library_items.fill_library``) is made once. Then, in
   fresh processes, alternated with a bare ``QListView`` over a 10,000-row string model as the reference: the time
   from creating the view to its first paint with the first page of tiles listed. Median and spread, and the ratio.
2. In one process, a 5 ms heartbeat timer on the GUI thread records the gaps between its ticks while the grid is
   scrolled from top to bottom and back, a viewport at a time (every 16 ms, like a wheel or a dragged scroll bar),
   with pages fetched and thumbnails made as they come into view. p50, p99 and max of the gaps (goal p99 ≤ 16 ms).

    .venv/bin/python -m benchmarks.gallery [--runs 10] [--items 10000]
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
import sys, time
start = time.perf_counter()
from PySide6.QtCore import QStringListModel, QTimer
from PySide6.QtWidgets import QApplication, QListView
app = QApplication(sys.argv)
view = QListView(); view.setUniformItemSizes(True)
view.setModel(QStringListModel([f"item {i}" for i in range(10000)])); view.resize(1100, 760); view.show()
QTimer.singleShot(0, lambda: (print("SHOWN", time.perf_counter() - start, flush=True), app.quit()))
app.exec()
"""

GALLERY = """
import sys, time
start = time.perf_counter()
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.library import Gallery, Library
from desktop.ui.gallery import GalleryView
app = QApplication(sys.argv)
library = Library(sys.argv[1])
view = GalleryView(Gallery(library)); view.resize(1100, 760); view.show()
def check():
    if view.model.total() > 0 and view.loader.pending() == 0:
        view.list.viewport().repaint()
        print("SHOWN", time.perf_counter() - start, view.item_count(), flush=True)
        view.shutdown(); library.close(); app.quit()
    else:
        QTimer.singleShot(1, check)
QTimer.singleShot(0, check)
app.exec()
"""


def make_library(path: Path, items: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from library_items import fill_library

    from desktop.library import Library

    with Library(path) as library:
        fill_library(library, items, root=path.parent / "files", seed=1)


def first_paint(runs: int, library: Path, env: dict[str, str]) -> dict:
    times: dict[str, list[float]] = {"bare QListView (10,000 rows)": [], "Studiolo gallery": []}
    scripts = {"bare QListView (10,000 rows)": [BARE], "Studiolo gallery": [GALLERY, str(library)]}
    for _ in range(runs):
        for name, (script, *args) in scripts.items():
            out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                                 cwd=ROOT, timeout=120)
            line = next((line for line in out.stdout.splitlines() if line.startswith("SHOWN")), None)
            if line is None:
                raise RuntimeError(f"{name} did not show:\n{out.stderr[-2000:]}")
            times[name].append(float(line.split()[1]))
    results = {name: summary(values) for name, values in times.items()}
    for name, stats in results.items():
        print(describe(name, stats))
    ratio = results["Studiolo gallery"]["median"] / results["bare QListView (10,000 rows)"]["median"]
    print(f"gallery / bare list (medians): ×{ratio:.2f}")
    return {"results": results, "ratio": ratio}


def scrolling(library_path: Path) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.library import Gallery, Library
    from desktop.ui.app import tune_gil_for_gui
    from desktop.ui.gallery import GalleryView

    tune_gil_for_gui()  # as run_app does
    global _app
    _app = QApplication.instance() or QApplication([])
    library = Library(library_path)
    view = GalleryView(Gallery(library))
    view.resize(1100, 760)
    view.show()
    loop = QEventLoop()
    ready = QTimer()
    ready.timeout.connect(lambda: loop.quit() if view.model.total() > 0 and view.loader.pending() == 0 else None)
    ready.start(5)
    loop.exec()
    ready.stop()

    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = {"t": clock.nsecsElapsed()}

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last["t"]) / 1e6 - 5.0)  # the heartbeat's own interval is not a stall
        last["t"] = now

    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(beat)
    bar = view.list.verticalScrollBar()
    step = max(1, bar.pageStep())
    direction = {"d": 1, "passes": 0}

    def scroll() -> None:
        value = bar.value() + direction["d"] * step
        bar.setValue(max(bar.minimum(), min(bar.maximum(), value)))
        if bar.value() in (bar.maximum(), bar.minimum()) and value != bar.value():
            direction["d"] *= -1
            direction["passes"] += 1
            if direction["passes"] == 2:
                loop.quit()

    scroller = QTimer()
    scroller.setInterval(16)
    scroller.timeout.connect(scroll)
    start = time.perf_counter()
    heartbeat.start()
    scroller.start()
    loop.exec()
    scroller.stop()
    heartbeat.stop()
    seconds = time.perf_counter() - start
    pages = len(view.model.loaded_pages())
    tiles = view.thumbnails.requests
    view.shutdown()
    library.close()
    result = {"p50_ms": statistics.median(gaps), "p99_ms": percentile(gaps, 0.99), "max_ms": max(gaps),
              "beats": len(gaps), "seconds": seconds, "viewports": int(2 * (bar.maximum() / step)),
              "pages_loaded": pages, "thumbnails_requested": tiles}
    print(f"GUI stall while scrolling 10,000 items top→bottom→top: p50 {result['p50_ms']:.2f} ms   "
          f"p99 {result['p99_ms']:.2f} ms   max {result['max_ms']:.2f} ms   ({len(gaps)} beats, "
          f"{seconds:.1f} s, {pages} pages, {tiles} thumbnails; goal p99 ≤ 16 ms)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIOLO_HOME"] = str(Path(tmp) / "home")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        library = Path(tmp) / "gallery" / "library.db"
        library.parent.mkdir()
        make_library(library, args.items)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        paint = first_paint(args.runs, library, env)
        stall = scrolling(library)
    save_results("gallery", {"first_paint": paint, "scrolling": stall})


if __name__ == "__main__":
    main()
