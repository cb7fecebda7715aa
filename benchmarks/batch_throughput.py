"""A batch of text items and one of image items through :class:`~desktop.batch.run.BatchRun` vs the same jobs
submitted singly to the engine (issue 20): items/s and their ratio, memory over the batch, and export time.

For each kind (``text``: the text generator's demo model, ``--tokens`` new tokens per item; ``image``: the image
demo model, ``--size`` px, ``--steps`` steps), one engine (worker processes, as ``studiolo batch`` runs; no library,
so that the batch's own writing is the largest share it can be) runs the same items three ways, alternated over
``--rounds`` rounds (the order rotating each round, so drift and a neighbour's load fall on every arm alike):

* ``batch``: a :class:`BatchRun` (two jobs in the engine at a time) writing the dataset (files, metadata rows
  fsync'd, journal lines, then the card and ``SHA256SUMS``) on its writer thread;
* ``queued``: the same jobs all submitted at once, the engine running them back to back with no dataset written —
  the engine's own throughput, the ceiling a batch can reach. This is the fair comparison: the generator never
  waits between jobs in either arm, so the ratio batch/queued is the cost of the batch itself (feeding jobs a
  window at a time, writing the dataset), which is what the goal bounds (≥ 0.98);
* ``serial``: the jobs submitted one at a time, each after the previous one ended (as a script calling the engine,
  or ``studiolo generate`` in a loop, would): the generator idles between jobs, so the batch usually beats it.

Memory: the resident memory of this process and of the generator's worker process, sampled every ``K`` items of
each batch (first, last, max, and the slope of a straight-line fit in MB per 1,000 items: flat means about 0).
Export: ``DatasetWriter.finish`` (card + manifest, as at a batch's end) on the finished image and text datasets,
and, when pyarrow is installed, the same folder reopened as ``parquet`` and finished (every file embedded into
``dataset.parquet`` and hashed again).

    .venv/bin/python -m benchmarks.batch_throughput [--text-items 1000] [--image-items 200] [--rounds 3]
        [--arms batch,queued,serial] [--tokens 4] [--size 64] [--steps 1] [--sample-every K]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import save_results, summary

_app = None
MB = 1024 * 1024
TEXT_PROMPTS = ("The boats went out in the morning and", "Once upon a time", "The lamp on the table",
                "In the garden the rain", "She opened the letter and")
IMAGE_PROMPTS = ("a lighthouse at dusk", "a red fox in snow", "a bowl of lemons", "a city street at night")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-items", type=int, default=1000, help="text items per arm (default 1000; 0: none)")
    parser.add_argument("--image-items", type=int, default=200, help="image items per arm (default 200; 0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three arms (default 3)")
    parser.add_argument("--tokens", type=int, default=4, help="new tokens per text item (default 4)")
    parser.add_argument("--size", type=int, default=64, help="picture width and height (default 64)")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps (default 1)")
    parser.add_argument("--arms", default="batch,queued,serial",
                        help="which arms to run, of batch,queued,serial (default all three; batch is always run)")
    parser.add_argument("--sample-every", type=int, default=0, metavar="K",
                        help="items between memory samples (default: 1/20 of the batch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args, Path(tmp))
    save_results("batch_throughput", results)


def run(args, tmp: Path) -> dict:
    from PySide6.QtCore import QCoreApplication

    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager

    global _app
    _app = QCoreApplication.instance() or QCoreApplication([])
    plugins = PluginManager().load()
    engine = Engine(plugins, store=None, library=None)
    print(f"{os.cpu_count()} CPU(s); load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    results: dict[str, Any] = {"rounds": args.rounds, "in_process": engine.in_process}
    try:
        if args.text_items > 0:
            base = {"max_new_tokens": args.tokens, "temperature": 0.9, "top_p": 0.95, "top_k": 50}
            results["text"] = measure(engine, "text.transformers", TEXT_PROMPTS, base, args.text_items, args, tmp,
                                      f"text, {args.tokens} new tokens each")
        if args.image_items > 0:
            base = {"steps": args.steps, "width": args.size, "height": args.size, "preview_every": 0}
            results["image"] = measure(engine, "image.diffusers", IMAGE_PROMPTS, base, args.image_items, args, tmp,
                                       f"image, {args.size}×{args.size}, {args.steps} step(s)")
    finally:
        engine.shutdown()
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    results["load_average_after"] = os.getloadavg()
    return results


def measure(engine, generator_id: str, prompts, base: dict, count: int, args, tmp: Path, label: str) -> dict:
    from desktop.batch.inputs import BatchRow
    from desktop.batch.plan import make_plan
    from desktop.models.demo import ensure_demo_model

    generator = engine.plugins.generator(generator_id)
    model = str(ensure_demo_model(generator, engine.runner(generator_id).build_demo))  # built in the worker

    def plan_of(n: int):
        rows = [BatchRow(i + 1, prompts[i % len(prompts)], {}) for i in range(n)]
        return make_plan(generator, rows, base_params=base, model=model, seed_mode="sequential", seed=1,
                         source={"benchmark": "batch_throughput"})

    plan = plan_of(count)
    every = args.sample_every or max(1, count // 20)
    folders = iter(range(1_000_000))

    def fresh_out() -> Path:
        return tmp / f"{generator_id}-{next(folders)}"

    arms = {"batch": lambda p: batch_arm(engine, generator, p, fresh_out(), every),
            "queued": lambda p: queued_arm(engine, generator, p),
            "serial": lambda p: serial_arm(engine, generator, p)}
    wanted = {"batch", *(a.strip() for a in args.arms.split(","))}
    arms = {name: arm for name, arm in arms.items() if name in wanted}
    warm = plan_of(min(count, 8))
    for arm in arms.values():  # warm up: the worker process, the model in its cache, first-run allocations
        arm(warm)
    times: dict[str, list[float]] = {name: [] for name in arms}
    over_queued, over_serial, memory = [], [], []
    where: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    names = list(arms)
    last_out, last_writer = None, None
    for number in range(args.rounds):
        order = names[number % len(names):] + names[:number % len(names)]
        for name in order:
            cpu = cpu_times(engine, generator_id)
            elapsed, extra = arms[name](plan)
            extra["busy"].update({f"{key}_cpu_ms_per_item": (after - before) / count * 1000
                                  for (key, before), after in zip(cpu.items(), cpu_times(engine, generator_id).values(),
                                                                  strict=True)})
            times[name].append(elapsed)
            where[name].append(extra["busy"])
            if name == "batch":
                memory.append(extra["memory"])
                if last_out is not None:
                    shutil.rmtree(last_out, ignore_errors=True)
                last_out, last_writer = extra["out"], extra["writer"]
        if "queued" in times:
            over_queued.append(times["queued"][-1] / times["batch"][-1])  # items/s batch ÷ items/s queued
        if "serial" in times:
            over_serial.append(times["serial"][-1] / times["batch"][-1])
    rates = {name: summary([count / t for t in values]) for name, values in times.items()}
    ratio_queued = summary(over_queued) if over_queued else None
    ratio_serial = summary(over_serial) if over_serial else None
    print(f"\n{count} {label}; {args.rounds} alternated rounds")
    print("items/s (medians): " + ", ".join(f"{name} {rate['median']:.2f}" for name, rate in rates.items()))
    for name, ratio, goal in (("batch/queued", ratio_queued, " (goal ≥ 0.98)"), ("batch/serial", ratio_serial, "")):
        if ratio is None:
            continue
        print(f"items/s {name}: median {ratio['median']:.3f}, IQR {ratio['q1']:.3f}–{ratio['q3']:.3f}, "
              f"min {ratio['min']:.3f}, max {ratio['max']:.3f}{goal}")
    for name, values in where.items():
        inside = statistics.median(v["per_item_jobs_ms"] for v in values)
        outside = statistics.median(v["per_item_outside_ms"] for v in values)
        host = statistics.median(v["host_cpu_ms_per_item"] for v in values)
        worker = statistics.median(v["worker_cpu_ms_per_item"] for v in values)
        print(f"per item, {name}: {inside:.1f} ms in the job (worker: load + generate + save), {outside:.2f} ms "
              f"outside it; CPU {host:.2f} ms in this process, {worker:.1f} ms in the worker (medians)")
    for number, samples in enumerate(memory, start=1):
        print(f"memory, round {number}: {describe_memory(samples)}")
    export = export_times(last_writer)
    shutil.rmtree(last_out, ignore_errors=True)
    return {"items": count, "label": label, "items_per_s": rates, "batch_over_queued": ratio_queued,
            "batch_over_serial": ratio_serial, "times_s": times, "where": where,
            "memory": [memory_stats(m) for m in memory], "memory_samples": memory, "sample_every": every,
            "export": export}


# -- the three arms ----------------------------------------------------------------------------------------------


def batch_arm(engine, generator, plan, out: Path, every: int) -> tuple[float, dict]:
    from PySide6.QtCore import QEventLoop

    from desktop.batch.dataset import default_format
    from desktop.batch.run import BatchRun, open_batch
    from desktop.engine.memory import process_rss

    samples: list[dict[str, int]] = []
    ended = [0]

    def sample(done: int) -> None:
        pid = engine.worker_processes().get(plan.generator_id)
        samples.append({"items": done, "host": process_rss() or 0, "worker": (process_rss(pid) or 0) if pid else 0})

    def on_progress(done: int, _total: int) -> None:
        ended[0] = done
        if done % every == 0:
            sample(done)

    jobs: list[Any] = []

    def queued(job_id: str) -> None:
        jobs.append(engine.job(job_id))

    engine.job_queued.connect(queued)
    loop = QEventLoop()
    start = time.perf_counter()
    opened = open_batch(out, plan, fmt=default_format(generator.kind), card={"command": "benchmark"})
    run = BatchRun(engine, opened, generator)
    run.progressed.connect(on_progress)
    run.finished.connect(loop.quit)
    run.start()
    if not run.is_finished:
        loop.exec()
    elapsed = time.perf_counter() - start
    engine.job_queued.disconnect(queued)
    if not run.complete or run.errors:
        raise RuntimeError(f"the batch did not complete: {run.error or run.errors}")
    if not samples or samples[-1]["items"] != ended[0]:
        sample(ended[0])
    return elapsed, {"memory": samples, "out": out, "writer": opened.writer, "busy": busy(jobs, elapsed)}


def queued_arm(engine, generator, plan) -> tuple[float, dict]:
    """Every job submitted at once; the time until the last one ended."""
    from PySide6.QtCore import QEventLoop

    from desktop.api.params import from_json

    loop = QEventLoop()
    left = [len(plan.items)]
    failed: list[str] = []

    def ended(_job_id: str, *_rest: Any) -> None:
        left[0] -= 1
        if left[0] == 0:
            loop.quit()

    def on_failed(_job_id: str, message: str) -> None:
        failed.append(message)
        ended(_job_id)

    engine.job_finished.connect(ended)
    engine.job_failed.connect(on_failed)
    start = time.perf_counter()
    jobs = [engine.submit(plan.generator_id, from_json(generator.Params, item.params), model=item.model,
                          seed=item.seed) for item in plan.items]
    loop.exec()
    elapsed = time.perf_counter() - start
    engine.job_finished.disconnect(ended)
    engine.job_failed.disconnect(on_failed)
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed: {failed[0]}")
    return elapsed, {"busy": busy(jobs, elapsed)}


def serial_arm(engine, generator, plan) -> tuple[float, dict]:
    """Each job submitted after the previous one ended."""
    from PySide6.QtCore import QEventLoop

    from desktop.api.params import from_json

    loop = QEventLoop()
    failed: list[str] = []

    def on_failed(_job_id: str, message: str) -> None:
        failed.append(message)
        loop.quit()

    engine.job_finished.connect(loop.quit)
    engine.job_failed.connect(on_failed)
    jobs = []
    start = time.perf_counter()
    for item in plan.items:
        jobs.append(engine.submit(plan.generator_id, from_json(generator.Params, item.params), model=item.model,
                                  seed=item.seed))
        loop.exec()
    elapsed = time.perf_counter() - start
    engine.job_finished.disconnect(loop.quit)
    engine.job_failed.disconnect(on_failed)
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed: {failed[0]}")
    return elapsed, {"busy": busy(jobs, elapsed)}


def cpu_times(engine, generator_id: str) -> dict[str, float]:
    """CPU seconds used so far by this process (every thread: the engine's, the batch's writer) and by the
    generator's worker process."""
    pid = engine.worker_processes().get(generator_id)
    worker = 0.0
    if pid:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        worker = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"host": time.process_time(), "worker": worker}


def busy(jobs: list[Any], elapsed: float) -> dict[str, float]:
    """Where the arm's time went: the jobs' own time in the worker (``total_s``: load + generate + save) and the
    rest (the engine's and the arm's time between jobs, and the tail after the last job: for a batch, writing the
    last item and finishing the dataset)."""
    inside = sum(job.timings.get("total_s", 0.0) for job in jobs)
    return {"jobs_s": inside, "outside_s": elapsed - inside, "per_item_jobs_ms": inside / len(jobs) * 1000,
            "per_item_outside_ms": (elapsed - inside) / len(jobs) * 1000}


# -- memory and export ---------------------------------------------------------------------------------------------


def memory_stats(samples: list[dict[str, int]]) -> dict[str, dict[str, float]]:
    """First, last and max resident MB of the host and worker processes and their sum, and the slope of a
    straight-line fit against the items done (MB per 1,000 items)."""
    stats = {}
    for key in ("host", "worker", "total"):
        values = [(s["host"] + s["worker"]) if key == "total" else s[key] for s in samples]
        items = [s["items"] for s in samples]
        slope = statistics.linear_regression(items, values).slope if len(set(items)) > 1 else 0.0
        stats[key] = {"first_mb": values[0] / MB, "last_mb": values[-1] / MB, "max_mb": max(values) / MB,
                      "slope_mb_per_1000_items": slope * 1000 / MB, "samples": len(values)}
    return stats


def describe_memory(samples: list[dict[str, int]]) -> str:
    stats = memory_stats(samples)
    return "; ".join(f"{key} first {s['first_mb']:.0f} MB, last {s['last_mb']:.0f} MB, max {s['max_mb']:.0f} MB, "
                     f"slope {s['slope_mb_per_1000_items']:+.1f} MB/1000 items" for key, s in stats.items()
                     if key != "total" or samples[0]["worker"]) + f" ({len(samples)} samples)"


def export_times(writer) -> dict[str, Any]:
    """Time the last batch's ``DatasetWriter.finish`` again (the card and the manifest: what a batch does at its
    end, the files' hashes known from their writing), and, with pyarrow, the folder reopened as Parquet and finished
    (every file read back, embedded into ``dataset.parquet`` and hashed)."""
    from desktop.batch.dataset import DatasetWriter

    times = []
    for _ in range(5):
        start = time.perf_counter()
        writer.finish(complete=True)
        times.append(time.perf_counter() - start)
    result: dict[str, Any] = {"rows": len(writer.rows), "finish_s": summary(times)}
    print(f"export: finish (card + SHA256SUMS of {len(writer.rows)} rows) median "
          f"{statistics.median(times) * 1000:.1f} ms", end="")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("; pyarrow not installed: no Parquet")
        return result
    times = []
    for _ in range(3):
        start = time.perf_counter()
        DatasetWriter.resume(writer.out, "parquet", card=writer.card).finish(complete=True)
        times.append(time.perf_counter() - start)
    size = (writer.out / "dataset.parquet").stat().st_size
    result.update(parquet_s=summary(times), parquet_bytes=size)
    print(f"; reopened as parquet and finished (files read, embedded, hashed) median "
          f"{statistics.median(times) * 1000:.1f} ms ({size / 1024:.0f} KiB)")
    return result


if __name__ == "__main__":
    main()
