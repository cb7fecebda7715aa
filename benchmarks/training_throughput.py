"""Training through Studiolo's engine vs the same training loop run directly (issue 22): steps per second (goal:
ratio ≥ 0.98) and the peak memory against the warm-up's estimate.

For a generator's training kind (default: the image generator's LoRA on its demo model, 64 px; ``--generator
text.transformers`` for the text LoRA on the text demo model), rounds alternate two arms on the same data, params
and seed:

* ``engine``: ``Engine.submit_training`` — the job in the generator's worker process, as the app and ``studiolo
  train`` run it (checkpoints, log, progress relayed to this process, the result imported);
* ``direct``: ``desktop.testing.training.run_training`` — the generator's ``train`` called in this process with the
  host's training context, on a thread of its own (torch's thread pool belongs to the thread that first uses it).

Steps/s is measured from the run's own log (each step's ``seconds``), over the steps after the first ``--skip``
(the warm-up and the first steps' allocations are not the loop's speed). Peak memory: the resident memory of the
process that trains (the worker process, or this one), sampled every 20 ms, above what it held when the job
started, against the estimate the trainer gave ``check_fit``.

    .venv/bin/python -m benchmarks.training_throughput [--generator image.diffusers] [--rounds 5] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchmarks.stats import save_results, summary

_app = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="image.diffusers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--skip", type=int, default=5, help="steps left out of the speed (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args, Path(tmp))
    print(f"saved {save_results('training_throughput_' + args.generator.split('.')[0], results)}")


def dataset(generator_id: str, folder: Path) -> dict[str, Any]:
    """A small fixed dataset, and the params that train on it."""
    folder.mkdir(parents=True)
    if generator_id == "image.diffusers":
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        return {"images": [str(folder)], "captions": "instance", "instance_prompt": "a photo of sks",
                "resolution": 64, "rank": 4, "checkpoint_every": 0}
    text = " ".join(["The boats went out in the morning and came back at night."] * 60)
    (folder / "a.txt").write_text(text)
    return {"texts": [str(folder)], "block_size": 64, "rank": 4, "checkpoint_every": 0}


class PeakSampler:
    """The highest resident memory of the process ``pid()`` names (None until it exists; no ``pid``: this one),
    sampled every 20 ms, above its first sample."""

    def __init__(self, pid: Any = None) -> None:
        from desktop.engine.memory import process_rss

        self.read = (lambda: process_rss(pid() if pid is not None else None) if (pid is None or pid()) else None)
        self.start_rss: int | None = None
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            rss = self.read()
            if rss:
                self.start_rss = rss if self.start_rss is None else self.start_rss
                self.peak = max(self.peak, rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak - (self.start_rss or self.peak)


def steps_per_second(log: list[dict[str, Any]], skip: int) -> float:
    timed = [e for e in log if "seconds" in e][skip:]
    return (len(timed) - 1) / (timed[-1]["seconds"] - timed[0]["seconds"])


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from PySide6.QtCore import QCoreApplication, QEventLoop

    from desktop.engine.engine import Engine
    from desktop.engine.training import read_log, run_dir
    from desktop.plugins import PluginManager
    from desktop.testing.training import run_training

    global _app
    _app = QCoreApplication.instance() or QCoreApplication([])
    plugins = PluginManager().load(third_party=False)
    generator = plugins.generator(args.generator)
    kind = generator.training_kinds[0].id
    params = {**dataset(args.generator, tmp / "data"), "steps": args.steps}
    engine = Engine(plugins, store=None, library=None)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="direct")

    def through_engine(name: str) -> tuple[float, int, dict | None]:
        runner = engine.runner(args.generator)
        loop = QEventLoop()
        engine.job_finished.connect(loop.quit)
        engine.job_failed.connect(lambda _id, message: (print("failed:", message), loop.quit()))
        sampler = PeakSampler(lambda: getattr(getattr(runner, "process", None), "pid", None))
        job = engine.submit_training(args.generator, kind, params, name=name, model="demo", seed=1)
        loop.exec()
        peak = sampler.stop()
        engine.job_finished.disconnect(loop.quit)
        return steps_per_second(read_log(run_dir(args.generator, name)), args.skip), peak, job.training.estimate

    def direct(name: str) -> tuple[float, int, dict | None]:
        sampler = PeakSampler()
        done = run_training(generator, kind, params, work_dir=tmp / "direct" / name, model="demo", seed=1)
        return steps_per_second(done.log, args.skip), sampler.stop(), done.estimate

    rounds: list[dict[str, Any]] = []
    for i in range(args.rounds):
        order = ("engine", "direct") if i % 2 == 0 else ("direct", "engine")
        row: dict[str, Any] = {}
        for arm in order:
            name = f"bench-{arm}-{i}"
            row[arm] = through_engine(name) if arm == "engine" else pool.submit(direct, name).result()
        rounds.append(row)
        print(f"round {i}: engine {row['engine'][0]:.2f} steps/s, direct {row['direct'][0]:.2f} steps/s, ratio "
              f"{row['engine'][0] / row['direct'][0]:.3f}; peak {row['engine'][1] / 2**20:.0f} MB (engine) "
              f"{row['direct'][1] / 2**20:.0f} MB (direct), estimate "
              f"{(row['engine'][2] or {}).get('peak_bytes', 0) / 2**20:.0f} MB")
    assert engine.shutdown(timeout=30)
    ratios = [r["engine"][0] / r["direct"][0] for r in rounds]
    results = {
        "generator": args.generator, "kind": kind, "steps": args.steps, "skip": args.skip,
        "engine_steps_per_s": summary([r["engine"][0] for r in rounds]),
        "direct_steps_per_s": summary([r["direct"][0] for r in rounds]),
        "ratio_engine_to_direct": summary(ratios),
        "peak_bytes_engine": summary([float(r["engine"][1]) for r in rounds]),
        "peak_bytes_direct": summary([float(r["direct"][1]) for r in rounds]),
        "estimate_peak_bytes": statistics.median((r["engine"][2] or {}).get("peak_bytes", 0) for r in rounds),
    }
    print(f"ratio engine/direct: median {results['ratio_engine_to_direct']['median']:.3f} "
          f"(IQR {results['ratio_engine_to_direct']['q1']:.3f}–{results['ratio_engine_to_direct']['q3']:.3f})")
    return results


if __name__ == "__main__":
    main()
