"""The image generator through Studiolo's engine vs a direct diffusers call: same model, params and seed.

Runs alternate (engine, direct, engine, …) in one process on the demo model (or `--model PATH` for a real one);
reports the median ratio engine/direct with its spread (goal ≤ 1.02) and checks the pixels are identical. Then the
GUI thread's longest stalls (5 ms heartbeat) while the window shows images generating with previews.

    .venv/bin/python -m benchmarks.image_engine [--runs 7] [--size 256] [--steps 8] [--model PATH]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--model", default="demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args)
    save_results("image_engine", results)


def run(args) -> dict:
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from desktop.engine.engine import Engine
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
    params = {"prompt": "a lighthouse at dusk", "steps": args.steps, "width": args.size, "height": args.size,
              "guidance_scale": 5.0, "preview_every": 0}
    direct_pipe = AutoPipelineForText2Image.from_pretrained(str(model), local_files_only=True)
    direct_pipe.set_progress_bar_config(disable=True)

    def through_engine(seed: int):
        loop = QEventLoop()
        got = {}
        engine.job_finished.connect(loop.quit)
        start = time.perf_counter()
        job = engine.submit("image.diffusers", params, model=str(model), seed=seed)
        loop.exec()
        got["t"] = time.perf_counter() - start
        engine.job_finished.disconnect(loop.quit)
        return got["t"], np.asarray(job.outputs[0].image)

    def direct(seed: int):
        start = time.perf_counter()
        image = direct_pipe(params["prompt"], num_inference_steps=args.steps, width=args.size, height=args.size,
                            guidance_scale=params["guidance_scale"],
                            generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        return time.perf_counter() - start, np.asarray(image)

    through_engine(0)  # warm up: load into the cache, first-run allocations
    direct(0)
    ratios, same = [], True
    times: dict[str, list[float]] = {"engine": [], "direct": []}
    for seed in range(1, args.runs + 1):
        t_engine, pixels_engine = through_engine(seed)
        t_direct, pixels_direct = direct(seed)
        times["engine"].append(t_engine)
        times["direct"].append(t_direct)
        ratios.append(t_engine / t_direct)
        same = same and np.array_equal(pixels_engine, pixels_direct)
    ratio = summary(ratios)
    print(f"{args.size}×{args.size}, {args.steps} steps, {args.runs} alternated runs")
    print(f"engine {statistics.median(times['engine']) * 1000:.0f} ms, direct "
          f"{statistics.median(times['direct']) * 1000:.0f} ms (medians)")
    print(f"ratio engine/direct: median {ratio['median']:.3f}, IQR {ratio['q1']:.3f}–{ratio['q3']:.3f}, "
          f"min {ratio['min']:.3f}, max {ratio['max']:.3f} (goal ≤ 1.02)")
    print(f"identical pixels: {same}")
    stalls = gui_stalls(plugins, engine, params, model, args)
    engine.shutdown()
    return {"ratio": ratio, "identical_pixels": same, "times": times, "stalls": stalls}


def gui_stalls(plugins, engine, params, model, args) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from desktop.ui.main_window import MainWindow

    window = MainWindow(plugins, engine)
    window.show()
    window.show_page("image.diffusers")
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
    count = {"n": 0}
    jobs = 6

    def finished(*_args) -> None:
        count["n"] += 1
        if count["n"] == jobs:
            loop.quit()

    engine.job_finished.connect(finished)
    heartbeat.start()
    for seed in range(jobs):
        engine.submit("image.diffusers", {**params, "preview_every": 1}, model=str(model), seed=seed)
    loop.exec()
    heartbeat.stop()
    window.close()
    ordered = sorted(gaps)
    result = {"p50_ms": statistics.median(ordered), "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
              "max_ms": ordered[-1], "beats": len(ordered)}
    print(f"GUI stall while images generate with previews: p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms "
          f"({len(ordered)} beats; goal p99 ≤ 16 ms, max ≤ 50 ms)")
    return result


if __name__ == "__main__":
    main()
