"""Generators in worker processes: the window's stalls, what a job costs, a cold worker's first job, hard cancel,
and the memory an unload gives back. Worker processes (the default) against in-process runs
(``Engine(..., in_process=True)``); every section runs in fresh processes of its own, so each import is a first one.

1. GUI-thread stall: a 5 ms heartbeat on the main thread of a QApplication records the gaps between its ticks
   (minus the 5 ms) while each built-in generator's libraries are imported for the first time (``engine.preload`` on
   a plain thread; in-process: ``import`` on a plain thread, as the window did before), while the image generator's
   first job loads its demo model, while it streams a preview per step (256×256 RGB, 192 KB: shared memory), and
   while test.noise on a 512×512 model streams a preview per step (256 KB). The previews are shown in a label, as
   QPixmaps. p50, p99 and max per phase; goal p99 ≤ 16 ms and max ≤ 50 ms. A control phase first keeps every CPU
   busy with other processes while the GUI thread idles: the stalls the machine alone causes.
2. Job overhead: a generator doing ≥ 50 ms of numpy work per step (10 steps, each with a progress report; without
   and with a 256×256 RGB preview) through the engine vs its ``generate`` called directly in the same process,
   alternated: ratio of the medians (goal ≤ 1.02). The fixed cost of a job on its own: a 1-step job that does
   nothing, engine median minus direct median. The in-process engine alongside, for comparison.
3. First-job latency, submit to finished, in a fresh process each time: test.noise's first job (demo model) with a
   cold worker process (process start + plugin import + torch import + load + generate) vs on the worker thread
   (torch import + load + generate).
4. Hard cancel: a generator that ignores cancel. Time from ``engine.cancel(job, hard=True)`` (the CLI's second
   Ctrl+C) and from ``engine.cancel(job)`` with a grace period of 0 to ``job_cancelled``; then the next job's time
   (a fresh process). In-process such a job cannot be stopped at all.
5. Memory: resident memory of the process and its child processes (from /proc) before the first load, with a
   300 MB model loaded (a torch tensor) and after ``engine.cache.unload(key)`` (the worker process ends); goal:
   after within 10 % of before. The system's AnonPages and MemAvailable are reported too (system-wide: other
   programs move them; in a VM that reports free pages to its host, MemFree and MemAvailable lag behind a free).

    .venv/bin/python -m benchmarks.worker_processes [--runs 12] [--sections stall,overhead,first_job,cancel,memory]
        [--no-in-process] [--stall-runs 1] [--first-runs 3] [--cancel-runs 8] [--image-jobs 2] [--image-size 256]
        [--image-steps 4] [--noise-steps 200] [--hog-mb 300]

The default run takes about 2–5 minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.stats import describe, percentile, save_results, summary

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("stall", "overhead", "first_job", "cancel", "memory")
ARGS_ENV = "STUDIOLO_BENCH_ARGS"  # the parent's arguments, as JSON, for a section's process
STALL_GOAL_P99_MS, STALL_GOAL_MAX_MS, OVERHEAD_GOAL, MEMORY_GOAL = 16.0, 50.0, 1.02, 1.10
STEP_S = 0.050  # the work per step of the overhead job
QUIET = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error",
         "TQDM_DISABLE": "1", "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
_app = None  # the Qt application lives as long as the process

BENCH = '''
import threading
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param


@dataclass(frozen=True)
class WorkParams:
    steps: int = param(10, min=1, max=100000)
    work: int = param(0, min=0, max=100000, help="numpy passes over a million floats per step")
    preview_px: int = param(0, min=0, max=2048, help="side of the RGB preview sent each step (0: none)")


class Work(Generator):
    """numpy work per step, a progress report and a preview each step: a model's steps without torch."""

    id, name, kind, Params = "bench.work", "Work", "text", WorkParams

    def load(self, model_path, device, options):
        import numpy as np
        return np.linspace(0.0, 1.0, 1_000_000)

    def generate(self, handle, params, ctx):
        import numpy as np
        from PIL import Image
        scratch = np.empty_like(handle)
        for step in range(params.steps):
            ctx.raise_if_cancelled()
            for _ in range(params.work):
                np.sin(handle, out=scratch)
            ctx.progress(step + 1, params.steps)
            if params.preview_px:
                ctx.preview(Image.fromarray(np.full((params.preview_px, params.preview_px, 3), step % 256, np.uint8)))
        return [TextOutput(text=f"{params.steps} steps")]


@dataclass(frozen=True)
class StubbornParams:
    ignore_cancel: bool = param(True)


class Stubborn(Generator):
    """Reports once, then blocks for ever without looking at cancel (a native call that never returns)."""

    id, name, kind, Params = "bench.stubborn", "Stubborn", "text", StubbornParams

    def load(self, model_path, device, options):
        return "handle"

    def generate(self, handle, params, ctx):
        ctx.progress(1, 2)
        if params.ignore_cancel:
            threading.Event().wait()
        return [TextOutput(text="done")]


@dataclass(frozen=True)
class HogParams:
    megabytes: int = param(300, min=1, max=100000, load_option=True)


class Hog(Generator):
    """A model that is a torch tensor of ``megabytes``, written (resident)."""

    id, name, kind, Params = "bench.hog", "Hog", "text", HogParams

    def load(self, model_path, device, options):
        import torch
        return torch.ones(options["megabytes"] * 1024 * 1024 // 4)

    def handle_size(self, handle):
        return handle.numel() * handle.element_size()

    def generate(self, handle, params, ctx):
        return [TextOutput(text=str(float(handle[-1])))]


@hookimpl
def register_generators(register):
    register(Work())
    register(Stubborn())
    register(Hog())
'''


# -- the parent: one fresh process per section and mode ------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=12, help="alternated runs of the overhead jobs")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, of: " + ", ".join(SECTIONS))
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process comparisons")
    parser.add_argument("--stall-runs", type=int, default=1, help="fresh processes per mode for the stalls")
    parser.add_argument("--first-runs", type=int, default=3, help="fresh processes per mode for the first job")
    parser.add_argument("--cancel-runs", type=int, default=8, help="hard cancels per variant")
    parser.add_argument("--image-jobs", type=int, default=2, help="image jobs streaming previews (after the first)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--image-steps", type=int, default=4)
    parser.add_argument("--noise-steps", type=int, default=200, help="steps (and previews) of the test.noise job")
    parser.add_argument("--hog-mb", type=int, default=300, help="size of the model of the memory section")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        section, mode = args.child.split(":")
        result = CHILDREN[section](mode, json.loads(os.environ[ARGS_ENV]))
        print("RESULT " + json.dumps(result), flush=True)
        return
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    modes = ["process"] if args.no_in_process else ["process", "in-process"]
    started = time.perf_counter()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "modes": modes}
    with tempfile.TemporaryDirectory() as tmp:
        env = prepare(Path(tmp), args)
        if "stall" in sections:
            results["stall"] = stalls(env, modes, args.stall_runs)
        if "overhead" in sections:
            results["overhead"] = run_child("overhead:process", env)
        if "first_job" in sections:
            results["first_job"] = first_jobs(env, modes, args.first_runs)
        if "cancel" in sections:
            results["cancel"] = run_child("cancel:process", env)
        if "memory" in sections:
            results["memory"] = {mode: run_child(f"memory:{mode}", env) for mode in modes}
    results["wall_s"] = time.perf_counter() - started
    print(f"\nall sections: {results['wall_s']:.0f} s")
    print(f"results: {save_results('worker_processes', results)}")


def prepare(tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    """Install the test plugins, build the demo models (not measured) and return the sections' environment."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch_plugin

    from desktop.testing import PluginSite

    site = PluginSite(tmp / "site")
    torch_plugin.install(site)
    site.install("studiolo-bench-workers", modules={"bench_workers": BENCH}, entry_points={"workers": "bench_workers"})
    env = site.env()
    env.update(QUIET)
    env["STUDIOLO_HOME"] = str(tmp / "home")
    env.pop("STUDIOLO_IN_PROCESS", None)
    options = vars(args) | {"wide_model": str(tmp / "models" / "noise-wide")}
    env[ARGS_ENV] = json.dumps(options)
    print("preparing: demo models of image.diffusers and test.noise, a 512×512 test.noise model", flush=True)
    run_child("prepare:-", env, echo=False)
    return env


def run_child(name: str, env: dict[str, str], *, echo: bool = True, timeout: float = 900.0) -> dict:
    """Run one section in a fresh process; relay what it prints, return its result."""
    if echo:
        print(f"\n== {name.replace(':', ', ')}", flush=True)
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.worker_processes", "--child", name], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        result = None
        try:
            for line in proc.stdout:
                if line.startswith("RESULT "):
                    result = json.loads(line[len("RESULT "):])
                elif echo:
                    print("  " + line.rstrip(), flush=True)
            proc.wait()
        finally:
            watchdog.cancel()
        if proc.returncode != 0 or result is None:
            errors.seek(0)
            sys.stderr.write(errors.read()[-4000:])
            raise SystemExit(f"the {name} section failed (exit status {proc.returncode})")
    return result


def stalls(env: dict[str, str], modes: list[str], runs: int) -> dict:
    """The stall section ``runs`` times per mode, the modes alternated; each run's phases are kept."""
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(runs):
        for mode in modes:
            results[mode].append(run_child(f"stall:{mode}", env))
    if runs > 1:
        print("\n== stall over the runs (all phases but the control)", flush=True)
        for mode, outcomes in results.items():
            p99 = ", ".join(f"{r['overall']['p99_ms']:.1f}" for r in outcomes)
            worst = ", ".join(f"{r['overall']['max_ms']:.0f}" for r in outcomes)
            print(f"  {mode:<10}  p99 per run: {p99} ms   max per run: {worst} ms")
    return results


def first_jobs(env: dict[str, str], modes: list[str], runs: int) -> dict:
    """The first job of a fresh process, the modes alternated."""
    print("\n== first job of a fresh process (test.noise, demo model), submit to finished", flush=True)
    times: dict[str, list[float]] = {mode: [] for mode in [*modes, "start"]}
    for _ in range(runs):
        for mode in times:
            times[mode].append(run_child(f"first_job:{mode}", env, echo=False)["seconds"])
    labels = {"process": "cold worker process", "in-process": "worker thread",
              "start": "(of which: process start + plugin import)"}
    stats = {mode: summary(values) for mode, values in times.items()}
    for mode, s in stats.items():
        print("  " + describe(labels[mode], s))
    if len(modes) == 2:
        extra = stats["process"]["median"] - stats["in-process"]["median"]
        print(f"  cold worker process minus worker thread (medians): {extra * 1000:+.0f} ms "
              f"(×{stats['process']['median'] / stats['in-process']['median']:.2f})")
    return {"stats": stats, "seconds": times}


# -- what the sections' processes share ----------------------------------------------------------------------------

def start_qt(gui: bool) -> None:
    global _app
    if gui:
        from PySide6.QtWidgets import QApplication

        from desktop.ui.app import tune_gil_for_gui

        _app = QApplication.instance() or QApplication([])
        tune_gil_for_gui()  # as run_app does
    else:
        from PySide6.QtCore import QCoreApplication

        _app = QCoreApplication.instance() or QCoreApplication([])


def make_engine(mode: str):
    """An engine on the installed plugins that saves nothing; ``mode`` ``in-process`` runs generators here."""
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    plugins = PluginManager(Settings()).load()
    return Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None,
                  cache=ModelCache(), in_process=mode == "in-process")


def wait_until(predicate: Callable[[], bool], timeout: float = 600.0) -> None:
    """Run the Qt event loop until ``predicate()`` holds (checked every 10 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return
    loop, poll = QEventLoop(), QTimer()
    deadline = time.monotonic() + timeout

    def check() -> None:
        if predicate() or time.monotonic() > deadline:
            loop.quit()

    poll.timeout.connect(check)
    poll.start(10)
    loop.exec()
    poll.stop()
    if not predicate():
        raise TimeoutError(f"nothing happened within {timeout:.0f} s")


class Tracker:
    """When each job first reported progress and how it ended, as the engine's signals arrive."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.progressed: dict[str, float] = {}
        self.ended: dict[str, tuple[str, float, Any]] = {}  # job id -> (how, when, outputs or message)
        engine.job_progressed.connect(self._on_progress)
        engine.job_finished.connect(self._on_finished)
        engine.job_failed.connect(self._on_failed)
        engine.job_cancelled.connect(self._on_cancelled)

    def _on_progress(self, job_id: str, *_args: Any) -> None:
        self.progressed.setdefault(job_id, time.perf_counter())

    def _on_finished(self, job_id: str, outputs: Any) -> None:
        self.ended[job_id] = ("finished", time.perf_counter(), outputs)

    def _on_failed(self, job_id: str, message: str) -> None:
        self.ended[job_id] = ("failed", time.perf_counter(), message)

    def _on_cancelled(self, job_id: str, partial: Any) -> None:
        self.ended[job_id] = ("cancelled", time.perf_counter(), partial)

    def run(self, generator_id: str, params: dict, **kwargs: Any) -> float:
        """Submit a job, wait for its end; the seconds from submit to ``job_finished`` (fails on anything else)."""
        start = time.perf_counter()
        job = self.engine.submit(generator_id, params, seed=1, **kwargs)
        return self.wait(job.id) - start

    def wait(self, job_id: str, expect: str = "finished") -> float:
        wait_until(lambda: job_id in self.ended)
        how, when, value = self.ended[job_id]
        if how != expect:
            raise RuntimeError(f"job {job_id} {how}, not {expect}: {value}")
        return when


def torch_imported() -> bool:
    return "torch" in sys.modules


# -- sections ----------------------------------------------------------------------------------------------------

def prepare_models(_mode: str, options: dict) -> dict:
    import studiolo_test_noise

    from desktop.models.demo import ensure_demo_model
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    plugins = PluginManager(Settings()).load()
    for generator_id in ("image.diffusers", "test.noise"):
        ensure_demo_model(plugins.generator(generator_id))
    wide = Path(options["wide_model"])
    wide.mkdir(parents=True, exist_ok=True)
    studiolo_test_noise.build(wide, width=512)
    return {}


class Heartbeat:
    """A 5 ms timer on the GUI thread; the gaps between its ticks, less the 5 ms, by phase."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.clock = QElapsedTimer()
        self.clock.start()
        self.gaps: dict[str, list[float]] = {}
        self.phase: list[float] = []
        self.when: list[float] = []  # each beat's time in the phase, seconds
        self.last = self.started = self.clock.nsecsElapsed()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._beat)
        self.timer.start()

    def _beat(self) -> None:
        now = self.clock.nsecsElapsed()
        self.phase.append(max(0.0, (now - self.last) / 1e6 - 5.0))
        self.when.append((self.last - self.started) / 1e9)
        self.last = now

    def measure(self, name: str, work: Callable[[], None]) -> dict[str, float]:
        """Run ``work`` (which runs the event loop until it is done) as phase ``name``; print and return its
        stalls."""
        gaps: list[float] = []
        when: list[float] = []
        self.gaps[name] = self.phase = gaps
        self.when = when
        self.last = self.started = self.clock.nsecsElapsed()
        start, load = time.perf_counter(), os.getloadavg()[0]
        work()
        self.phase, self.when = [], []  # beats between phases count nowhere
        values = gaps or [0.0]
        worst = sorted(zip(values, when, strict=False), reverse=True)[:3]
        stats = {"p50_ms": statistics.median(values), "p99_ms": percentile(values, 0.99), "max_ms": max(values),
                 "beats": len(values), "seconds": time.perf_counter() - start, "load_before": load,
                 "worst_ms_at_s": [[round(gap, 1), round(at, 3)] for gap, at in worst]}
        ok = stats["p99_ms"] <= STALL_GOAL_P99_MS and stats["max_ms"] <= STALL_GOAL_MAX_MS
        print(f"{name:<34} p50 {stats['p50_ms']:6.2f} ms   p99 {stats['p99_ms']:6.2f} ms   max "
              f"{stats['max_ms']:7.2f} ms   ({stats['beats']} beats, {stats['seconds']:.1f} s) "
              f"{'ok' if ok else 'OVER GOAL'}", flush=True)
        if not ok:
            print(" " * 34 + " worst: " + ", ".join(f"{gap:.0f} ms at {at:.2f} s" for gap, at in worst)
                  + f"; load average {load:.1f} before", flush=True)
        return stats


def busy_cpus(seconds: float = 3.0) -> None:
    """Keep every CPU busy with another process for ``seconds``, the event loop running: what the machine alone
    does to the heartbeat (the worker processes' imports are such processes)."""
    spin = f"import time\nend = time.monotonic() + {seconds + 2}\nwhile time.monotonic() < end: pass"  # ends alone
    hogs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)]
    end = time.monotonic() + seconds
    try:
        wait_until(lambda: time.monotonic() > end)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def stall(mode: str, options: dict) -> dict:
    """The GUI thread's stalls while the libraries import, models load and previews stream."""
    start_qt(gui=True)
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QLabel

    from desktop.ui.output_view import to_qimage

    engine = make_engine(mode)
    tracker = Tracker(engine)
    label = QLabel()
    label.resize(560, 560)
    label.show()
    shown = {"previews": 0}

    def show(_job_id: str, preview: Any) -> None:
        if not isinstance(preview, str):
            label.setPixmap(QPixmap.fromImage(to_qimage(preview)))
            shown["previews"] += 1

    engine.job_previewed.connect(show)
    heartbeat = Heartbeat()
    phases: dict[str, dict] = {}
    failures: list[str] = []
    builtin = sorted(g for g in engine.plugins.generators if g.split(".")[0] in ("image", "text", "audio"))
    phases["control"] = heartbeat.measure("control: CPU-bound processes only", busy_cpus)

    def preload(generator_id: str) -> Callable[[], None]:
        modules = list(engine.plugins.generator(generator_id).preload_modules)

        def work() -> None:
            if mode == "in-process":  # what the window did before: import on a thread of its own process
                import importlib

                for name in modules:
                    importlib.import_module(name)
            else:
                failures.extend(engine.preload(generator_id, modules)["failures"])

        def run() -> None:
            thread = threading.Thread(target=work, name=f"preload:{generator_id}")
            thread.start()
            wait_until(lambda: not thread.is_alive())

        return run

    for generator_id in builtin:
        modules = engine.plugins.generator(generator_id).preload_modules
        done = mode == "in-process" and all(name in sys.modules for name in modules)  # by an earlier generator
        phases[f"import {generator_id}"] = heartbeat.measure(
            f"{'(imported) ' if done else 'first '}import, {generator_id}", preload(generator_id))
        if mode == "process" and generator_id != "image.diffusers":
            engine.runner(generator_id).stop()  # frees its memory; not measured
    size, steps = options["image_size"], options["image_steps"]
    image = {"prompt": "a lighthouse at dusk", "steps": steps, "width": size, "height": size,
             "guidance_scale": 5.0, "preview_every": 1}
    phases["image first job"] = heartbeat.measure(
        "image.diffusers: load + first job", lambda: tracker.run("image.diffusers", image, model="demo"))

    def image_jobs() -> None:
        jobs = [engine.submit("image.diffusers", image, model="demo", seed=i) for i in range(options["image_jobs"])]
        for job in jobs:
            tracker.wait(job.id)

    before = shown["previews"]
    phases["image previews"] = heartbeat.measure(f"image.diffusers: {options['image_jobs']} jobs, previews",
                                                 image_jobs)
    phases["image previews"]["previews_shown"] = shown["previews"] - before
    wide = options["wide_model"]
    phases["noise first job"] = heartbeat.measure(
        "test.noise 512²: load + first job", lambda: tracker.run("test.noise", {"steps": 1}, model=wide))
    before = shown["previews"]
    phases["noise previews"] = heartbeat.measure(
        f"test.noise 512²: {options['noise_steps']} previews",
        lambda: tracker.run("test.noise", {"steps": options["noise_steps"]}, model=wide))
    phases["noise previews"]["previews_shown"] = shown["previews"] - before
    print(f"previews shown: {phases['image previews']['previews_shown']} of the image jobs, "
          f"{phases['noise previews']['previews_shown']} of test.noise (delivery is throttled to ~30 a second)")
    heartbeat.timer.stop()
    all_gaps = [gap for name, gaps in heartbeat.gaps.items() if not name.startswith("control") for gap in gaps]
    overall = {"p99_ms": percentile(all_gaps, 0.99), "max_ms": max(all_gaps)}
    print(f"{'all phases but the control':<34} p99 {overall['p99_ms']:6.2f} ms   max {overall['max_ms']:7.2f} ms   "
          f"(goal p99 ≤ {STALL_GOAL_P99_MS:.0f} ms, max ≤ {STALL_GOAL_MAX_MS:.0f} ms)")
    print(f"torch imported in this (the GUI) process: {torch_imported()}")
    for failure in failures:
        print(f"preload failure: {failure}")
    engine.shutdown()
    return {"phases": phases, "overall": overall, "torch_in_gui_process": torch_imported(), "failures": failures}


def overhead(_mode: str, options: dict) -> dict:
    """Engine (worker process, and in-process) against ``generate`` called directly, alternated."""
    start_qt(gui=False)
    from desktop.api import LoadOptions
    from desktop.engine.context import CallbackRunContext

    engines = {"process": make_engine("process"), "in-process": make_engine("in-process")}
    if options["no_in_process"]:
        del engines["in-process"]
    trackers = {mode: Tracker(engine) for mode, engine in engines.items()}
    generator = engines["process"].plugins.generator("bench.work")
    handle = generator.load(None, "cpu", LoadOptions())

    def direct(params: dict) -> float:
        start = time.perf_counter()
        generator.generate(handle, generator.Params(**params), CallbackRunContext(job_id="direct", seed=1))
        return time.perf_counter() - start

    one_pass = statistics.median(direct({"steps": 1, "work": 4}) for _ in range(7)) / 4
    work = max(1, math.ceil(STEP_S / one_pass))  # at least 50 ms a step
    jobs = {"10 × 50 ms steps": ({"steps": 10, "work": work, "preview_px": 0}, options["runs"]),
            "10 × 50 ms steps, a 256² RGB preview each": ({"steps": 10, "work": work, "preview_px": 256},
                                                          options["runs"]),
            "1-step empty job": ({"steps": 1, "work": 0, "preview_px": 0}, options["runs"] * 4)}
    for tracker in trackers.values():
        tracker.run("bench.work", jobs["1-step empty job"][0])  # warm up: the thread, its process, the handle
    results: dict[str, Any] = {"work_passes_per_step": work}
    for label, (params, runs) in jobs.items():
        times: dict[str, list[float]] = {"direct": [], **{f"engine, {mode}": [] for mode in engines}}
        for _ in range(runs):
            for mode, tracker in trackers.items():
                times[f"engine, {mode}"].append(tracker.run("bench.work", params))
            times["direct"].append(direct(params))
        results[label] = {name: summary(values) for name, values in times.items()}
        print(f"{label} ({runs} alternated runs):")
        for name, stats in results[label].items():
            print(describe(f"  {name}", stats))
        for mode in engines if params["work"] else ():
            pairs = summary([a / b for a, b in zip(times[f"engine, {mode}"], times["direct"], strict=True)])
            results[label][f"ratio, {mode}"] = ratio = (results[label][f"engine, {mode}"]["median"]
                                                        / results[label]["direct"]["median"])
            results[label][f"pair ratios, {mode}"] = pairs
            print(f"  engine ({mode}) / direct: ×{ratio:.3f} (medians, goal ≤ {OVERHEAD_GOAL}); run by run: median "
                  f"×{pairs['median']:.3f}, IQR {pairs['q1']:.3f}–{pairs['q3']:.3f}")
    step = results["10 × 50 ms steps"]["direct"]["median"] / 10
    results["step_ms"] = step * 1000
    print(f"a step takes {step * 1000:.0f} ms directly ({work} numpy passes)")
    empty = results["1-step empty job"]
    for mode in engines:
        fixed = empty[f"engine, {mode}"]["median"] - empty["direct"]["median"]
        results[f"per_job_ms, {mode}"] = fixed * 1000
        print(f"fixed cost of a job, engine ({mode}): {fixed * 1000:.2f} ms (median minus direct median)")
    results["torch_in_gui_process"] = torch_imported()
    for engine in engines.values():
        engine.shutdown()
    return results


def first_job(mode: str, _options: dict) -> dict:
    """Submit to finished of the first job of this fresh process; mode ``start``: how long starting the worker
    process and importing the plugin there takes (a preload of nothing)."""
    start_qt(gui=False)
    engine = make_engine("process" if mode == "start" else mode)
    if mode == "start":
        started = time.perf_counter()
        engine.preload("test.noise", [])
        seconds = time.perf_counter() - started
    else:
        seconds = Tracker(engine).run("test.noise", {"steps": 4}, model="demo")
    engine.shutdown()
    return {"seconds": seconds}


def cancel(_mode: str, options: dict) -> dict:
    """Hard cancel of a generator that ignores cancel, then the next job."""
    start_qt(gui=False)
    engine = make_engine("process")
    tracker = Tracker(engine)
    runner = engine.runner("bench.stubborn")
    tracker.run("bench.stubborn", {"ignore_cancel": False})  # the process and the handle, not measured
    results: dict[str, Any] = {}
    for variant in ("cancel(hard=True)", "cancel(), grace 0 s"):
        engine.settings.cancel_grace_seconds = 0.0 if "grace" in variant else 5.0
        engine.apply_settings()
        latencies, next_jobs, outcomes = [], [], set()
        for _ in range(options["cancel_runs"]):
            job = engine.submit("bench.stubborn", {"ignore_cancel": True}, seed=1)
            wait_until(lambda job_id=job.id: job_id in tracker.progressed)
            pid, start = runner.process.pid, time.perf_counter()
            engine.cancel(job.id, hard="hard" in variant)
            latencies.append(tracker.wait(job.id, "cancelled") - start)
            outcomes.add(runner.process.pid != pid)  # the process was ended (None, or a new one)
            next_jobs.append(tracker.run("bench.stubborn", {"ignore_cancel": False}))
        results[variant] = {"to_cancelled": summary(latencies), "next_job": summary(next_jobs),
                            "process_ended_each_time": outcomes == {True}}
        print(describe(f"{variant}: to cancelled", results[variant]["to_cancelled"]))
        print(describe("  then the next job", results[variant]["next_job"]))
    ended = all(outcome["process_ended_each_time"] for outcome in results.values())
    results["process_starts"] = runner.process.starts
    print(f"worker processes started: {runner.process.starts}; each cancel ended its process: {ended}")
    results["torch_in_gui_process"] = torch_imported()
    engine.shutdown()
    return results


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def system_memory() -> dict[str, int]:
    """The machine's anonymous memory in use and the memory available to new programs, in bytes (/proc/meminfo)."""
    wanted = {"AnonPages": "anon_pages", "MemAvailable": "mem_available"}
    found = dict.fromkeys(wanted.values(), 0)
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in wanted:
                found[wanted[key]] = int(value.split()[0]) * 1024
    return found


def process_tree_rss() -> tuple[int, int]:
    """Resident bytes of this process and all its descendants, and how many processes that is."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(_rss(pid) for pid in tree), len(tree)


def memory(mode: str, options: dict) -> dict:
    """Resident memory of this process and its workers: before the first load, loaded, after the unload."""
    start_qt(gui=False)
    engine = make_engine(mode)
    tracker = Tracker(engine)
    samples: dict[str, dict[str, int]] = {}

    def sample(name: str) -> None:
        rss, processes = process_tree_rss()
        samples[name] = {"rss": rss, "processes": processes, **system_memory()}

    sample("before load")
    tracker.run("bench.hog", {"megabytes": options["hog_mb"]})
    sample("loaded")
    for model in engine.cache.loaded():
        engine.cache.unload(model.key)  # in the worker: unloads, then the process ends (nothing else in it)
    runner = engine.runner("bench.hog")
    wait_until(lambda: runner.in_process or runner.process.pid is None, timeout=30)
    sample("after unload")
    mb = 1024 * 1024
    for name, s in samples.items():
        print(f"{name:<14} RSS {s['rss'] / mb:7.0f} MB in {s['processes']} process(es)   "
              f"system: AnonPages {s['anon_pages'] / mb:6.0f} MB, MemAvailable {s['mem_available'] / mb:6.0f} MB")
    ratio = samples["after unload"]["rss"] / samples["before load"]["rss"]
    anon = samples["after unload"]["anon_pages"] - samples["before load"]["anon_pages"]
    available = samples["after unload"]["mem_available"] - samples["before load"]["mem_available"]
    print(f"RSS after unload / before load: ×{ratio:.2f} (goal ≤ {MEMORY_GOAL:.2f}); system, after unload minus "
          f"before load: AnonPages {anon / mb:+.0f} MB, MemAvailable {available / mb:+.0f} MB")
    engine.shutdown()
    return {"samples": samples, "ratio": ratio, "torch_in_gui_process": torch_imported()}


CHILDREN: dict[str, Callable[[str, dict], dict]] = {
    "prepare": prepare_models, "stall": stall, "overhead": overhead, "first_job": first_job, "cancel": cancel,
    "memory": memory}


if __name__ == "__main__":
    main()
