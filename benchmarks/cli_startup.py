"""How long `studiolo --help` and `studiolo plugins list` take, against a bare `python -c pass`.

Runs each command alternately (so load on the machine hits all of them alike), in fresh processes, and reports
median and spread, and the median's ratio to the bare interpreter. `plugins list` loads every installed plugin,
so the number depends on what is installed; the example plugin is installed for the run.

    .venv/bin/python -m benchmarks.cli_startup [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.stats import describe, save_results, summary

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    studiolo = str(Path(sys.executable).with_name("studiolo"))
    with tempfile.TemporaryDirectory() as tmp:
        from desktop.testing import PluginSite

        site = PluginSite(Path(tmp) / "site")
        site.install("studiolo-markov", version="1.0.0",
                     modules={"studiolo_markov": (ROOT / "examples/markov/studiolo_markov.py").read_text()},
                     entry_points={"markov": "studiolo_markov"}, requires=["studiolo>=0.2,<0.3"])
        env = site.env()
        env["STUDIOLO_HOME"] = str(Path(tmp) / "home")
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "studiolo --help": [studiolo, "--help"],
            "studiolo plugins list": [studiolo, "plugins", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm the file cache once
            subprocess.run(cmd, env=env, capture_output=True, check=True)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                start = time.perf_counter()
                subprocess.run(cmd, env=env, capture_output=True, check=True)
                times[name].append(time.perf_counter() - start)
    results = {name: summary(samples) for name, samples in times.items()}
    base = results["python -c pass (baseline)"]["median"]
    for name, stats in results.items():
        print(describe(name, stats) + f"   ×{stats['median'] / base:.1f} baseline")
    save_results("cli_startup", {"cpus": os.cpu_count(), "results": results})


if __name__ == "__main__":
    main()
