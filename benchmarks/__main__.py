"""`python -m benchmarks` runs every benchmark, each in its own process (each needs its own Qt application)."""

import subprocess
import sys

BENCHMARKS = ("benchmarks.cli_startup", "benchmarks.engine_overhead", "benchmarks.window", "benchmarks.image_engine",
              "benchmarks.text_engine", "benchmarks.audio_engine", "benchmarks.gallery", "benchmarks.worker_processes",
              "benchmarks.explore_grid", "benchmarks.image_hires", "benchmarks.upscale_tiles",
              "benchmarks.batch_throughput", "benchmarks.remote_throughput")

failed = [name for name in BENCHMARKS if subprocess.run([sys.executable, "-m", name]).returncode != 0]
sys.exit(1 if failed else 0)
