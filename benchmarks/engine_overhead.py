"""What the job engine costs on top of calling a generator's ``generate`` directly, and how fast cancel lands.

Same process, same generator, same loaded handle and seed; engine and direct runs alternate so that drift on
the machine hits both alike. Reported: per-job overhead (a 1-step job), per-progress-event overhead (a job of
many steps, each reporting progress and a text preview), and cancel latency counted in steps the generator ran
after the cancel. Saving outputs is off here (measured on its own by the library's benchmarks later).

    .venv/bin/python -m benchmarks.engine_overhead [--runs 30] [--events 20000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.stats import describe, save_results, summary

_app = None  # the QCoreApplication lives as long as the process

TICKS = '''
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

@dataclass(frozen=True)
class Params:
    steps: int = param(1, min=1, max=10_000_000)

class Ticks(Generator):
    id, name, kind, Params = "bench.ticks", "Ticks", "text", Params
    def load(self, model_path, device, options):
        return "handle"
    def generate(self, handle, params, ctx):
        for step in range(params.steps):
            ctx.raise_if_cancelled()
            ctx.progress(step + 1, params.steps)
            ctx.preview("x")
        return [TextOutput(text="done")]

@hookimpl
def register_generators(register):
    register(Ticks())
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIOLO_HOME"] = str(Path(tmp) / "home")
        from desktop.testing import PluginSite

        site = PluginSite(Path(tmp) / "site")
        site.install("studiolo-bench-ticks", modules={"bench_ticks": TICKS}, entry_points={"ticks": "bench_ticks"})
        site.activate()
        results = run(args.runs, args.events)
        site.deactivate()
    save_results("engine_overhead", results)


def run(runs: int, events: int) -> dict:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from desktop.engine.cache import ModelCache
    from desktop.engine.context import CallbackRunContext
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    global _app
    _app = QCoreApplication.instance() or QCoreApplication([])
    plugins = PluginManager(Settings()).load()
    generator = plugins.generator("bench.ticks")
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
    received = {"events": 0}
    engine.job_progressed.connect(lambda *_: received.__setitem__("events", received["events"] + 1))

    def through_engine(steps: int) -> float:
        loop = QEventLoop()
        engine.job_finished.connect(loop.quit)
        start = time.perf_counter()
        engine.submit("bench.ticks", {"steps": steps}, seed=1)
        loop.exec()
        elapsed = time.perf_counter() - start
        engine.job_finished.disconnect(loop.quit)
        return elapsed

    def direct(steps: int) -> float:
        params = generator.Params(steps=steps)
        start = time.perf_counter()
        generator.generate("handle", params, CallbackRunContext(job_id="d", seed=1))
        return time.perf_counter() - start

    through_engine(1)  # warm up: the worker thread and the cached handle
    results = {}
    for label, steps in (("1-step job", 1), (f"{events}-event job", events)):
        timings: dict[str, list[float]] = {"engine": [], "direct": []}
        for _ in range(runs):
            timings["engine"].append(through_engine(steps))
            timings["direct"].append(direct(steps))
        stats = {name: summary(values) for name, values in timings.items()}
        results[label] = stats
        for name, s in stats.items():
            print(describe(f"{label}, {name}", s))
    job = results["1-step job"]
    many = results[f"{events}-event job"]
    per_job = job["engine"]["median"] - job["direct"]["median"]
    per_event = (many["engine"]["median"] - many["direct"]["median"] - per_job) / events
    print(f"engine overhead per job: {per_job * 1000:.2f} ms (median of engine minus median of direct)")
    print(f"engine overhead per progress event: {per_event * 1e6:.2f} µs")
    print(f"delivered progress signals per {events}-event job: {received['events'] / (runs + 1) / 2:.0f} "
          "(throttled to ≤ 30 Hz)")

    state = {"job": None}  # the job of the current run

    def cancel_first(job_id, *_args):
        if state["job"] is not None and not state["job"].cancelled:
            engine.cancel(job_id)

    latencies = []
    for _ in range(runs):
        loop = QEventLoop()
        state["job"] = None
        engine.job_progressed.connect(cancel_first)
        engine.job_cancelled.connect(loop.quit)
        state["job"] = engine.submit("bench.ticks", {"steps": 10_000_000}, seed=1)
        loop.exec()
        engine.job_progressed.disconnect(cancel_first)
        engine.job_cancelled.disconnect(loop.quit)
        latencies.append(state["job"].steps_after_cancel)
    print(f"cancel latency: {max(latencies)} step(s) at most after the cancel over {runs} runs "
          f"(median {sorted(latencies)[len(latencies) // 2]})")
    engine.shutdown()  # the engine itself goes when this returns, long before the application object
    return {"per_job_ms": per_job * 1000, "per_event_us": per_event * 1e6, "cancel_steps_max": max(latencies),
            "raw": results}


if __name__ == "__main__":
    main()
