"""A 4×4 image grid through Studiolo vs the same 16 jobs one by one vs 16 direct diffusers calls (issue 18).

Three ways to make the same 16 pictures (x: seed 1–4, y: guidance 3, 5, 7, 9; the demo model or ``--model PATH``),
in one process, the three arms alternating for ``--rounds`` rounds:

* ``grid``: a :class:`~desktop.explore.run.GridRun` — all 16 cells queued at once on the engine;
* ``jobs``: the 16 jobs submitted to the engine one at a time, each after the previous one ended;
* ``direct``: 16 calls of the diffusers pipeline with the same arguments and seeds.

Reports the medians and the ratios grid/direct and grid/jobs with their spread (goal grid/direct ≤ 1.02), checks the
pixels are identical across the three, then the GUI thread's stalls (5 ms heartbeat) while the window's grid view
fills with a 4×4 grid (goal p99 ≤ 16 ms).

    .venv/bin/python -m benchmarks.explore_grid [--rounds 5] [--size 128] [--steps 8] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.stats import save_results, summary

_app = None
SEEDS = (1, 2, 3, 4)
GUIDANCES = (3.0, 5.0, 7.0, 9.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the three arms (default 5)")
    parser.add_argument("--size", type=int, default=128, help="picture width and height (default 128)")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps (default 8)")
    parser.add_argument("--model", default="demo", help="a diffusers folder (default: the tiny demo model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args)
    save_results("explore_grid", results)


def run(args) -> dict:
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from desktop.engine.engine import Engine
    from desktop.explore.axes import parse_axis
    from desktop.explore.grid import GridSpec
    from desktop.explore.run import GridRun
    from desktop.models.demo import ensure_demo_model
    from desktop.plugins import PluginManager
    from desktop.ui.app import tune_gil_for_gui

    global _app
    _app = QApplication.instance() or QApplication([])
    tune_gil_for_gui()
    plugins = PluginManager().load()
    generator = plugins.generator("image.diffusers")
    model = ensure_demo_model(generator) if args.model == "demo" else Path(args.model)
    engine = Engine(plugins, store=None, library=None)
    base = {"prompt": "a lighthouse at dusk", "steps": args.steps, "width": args.size, "height": args.size,
            "preview_every": 0}
    spec = GridSpec("image.diffusers",
                    (parse_axis(generator, "seed", ",".join(map(str, SEEDS))),
                     parse_axis(generator, "guidance_scale", ",".join(map(str, GUIDANCES)))),
                    base_params=base, model=str(model))
    cells = [(seed, guidance) for guidance in GUIDANCES for seed in SEEDS]  # x (seed) fastest, as the grid orders
    direct_pipe = AutoPipelineForText2Image.from_pretrained(str(model), local_files_only=True)
    direct_pipe.set_progress_bar_config(disable=True)

    def pixels(outputs) -> list:
        return [np.asarray(output.image) for output in outputs]

    def grid_arm():
        loop = QEventLoop()
        start = time.perf_counter()
        grid = GridRun(engine, spec, generator)
        grid.finished.connect(loop.quit)
        loop.exec()
        elapsed = time.perf_counter() - start
        return elapsed, [pixels(grid.results[(x, y, 0)])[0] for y in range(4) for x in range(4)]

    def jobs_arm():
        loop = QEventLoop()
        engine.job_finished.connect(loop.quit)
        images = []
        start = time.perf_counter()
        for seed, guidance in cells:
            job = engine.submit("image.diffusers", {**base, "guidance_scale": guidance}, model=str(model), seed=seed)
            loop.exec()
            images.append(pixels(job.outputs)[0])
        elapsed = time.perf_counter() - start
        engine.job_finished.disconnect(loop.quit)
        return elapsed, images

    def direct_arm():
        images = []
        start = time.perf_counter()
        for seed, guidance in cells:
            image = direct_pipe(base["prompt"], num_inference_steps=args.steps, width=args.size, height=args.size,
                                guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
            images.append(np.asarray(image))
        return time.perf_counter() - start, images

    arms = {"grid": grid_arm, "jobs": jobs_arm, "direct": direct_arm}
    for arm in arms.values():  # warm up: the model in the engine's cache, first-run allocations
        arm()
    times: dict[str, list[float]] = {name: [] for name in arms}
    grid_direct, grid_jobs, identical = [], [], True
    for _ in range(args.rounds):
        made = {}
        for name, arm in arms.items():
            times[name].append(0.0)
            times[name][-1], made[name] = arm()
        grid_direct.append(times["grid"][-1] / times["direct"][-1])
        grid_jobs.append(times["grid"][-1] / times["jobs"][-1])
        identical = identical and all(np.array_equal(a, b) and np.array_equal(a, c)
                                      for a, b, c in zip(made["grid"], made["jobs"], made["direct"], strict=True))
    ratio_direct, ratio_jobs = summary(grid_direct), summary(grid_jobs)
    print(f"4×4 grid, {args.size}×{args.size}, {args.steps} steps, {args.rounds} alternated rounds")
    print(", ".join(f"{name} {statistics.median(values) * 1000:.0f} ms" for name, values in times.items())
          + " (medians of 16 pictures)")
    for label, ratio, goal in (("grid/direct", ratio_direct, " (goal ≤ 1.02)"), ("grid/jobs", ratio_jobs, "")):
        print(f"ratio {label}: median {ratio['median']:.3f}, IQR {ratio['q1']:.3f}–{ratio['q3']:.3f}, "
              f"min {ratio['min']:.3f}, max {ratio['max']:.3f}{goal}")
    print(f"identical pixels in the three arms: {identical}")
    stalls = gui_stalls(plugins, engine, spec, generator)
    engine.shutdown()
    return {"grid_over_direct": ratio_direct, "grid_over_jobs": ratio_jobs, "identical_pixels": identical,
            "times": times, "stalls": stalls, "size": args.size, "steps": args.steps}


def gui_stalls(plugins, engine, spec, generator) -> dict:
    """The GUI thread's stalls while the window's grid view fills with ``spec``'s cells."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from desktop.ui.main_window import MainWindow

    window = MainWindow(plugins, engine)
    window.resize(1280, 900)
    window.show()
    window.show_page(spec.generator_id)
    clock = QElapsedTimer()
    clock.start()
    gaps, last = [], [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6 - 5.0)
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(beat)
    loop = QEventLoop()
    grid_window = window.show_page(spec.generator_id).open_grid()  # made and shown before the clock runs
    grid_window.grid_finished.connect(loop.quit)
    heartbeat.start()
    grid_window.run_grid(spec)
    loop.exec()
    heartbeat.stop()
    window.close()
    ordered = sorted(gaps)
    result = {"p50_ms": statistics.median(ordered), "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
              "max_ms": ordered[-1], "beats": len(ordered)}
    print(f"GUI stall while a 4×4 grid fills the grid view: p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms ({len(ordered)} beats; goal p99 ≤ 16 ms)")
    return result


if __name__ == "__main__":
    main()
