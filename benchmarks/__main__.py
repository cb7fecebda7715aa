"""`python -m benchmarks` runs every benchmark in turn."""

import sys

from benchmarks import cli_startup, engine_overhead, window

for bench in (cli_startup, engine_overhead, window):
    sys.argv = [bench.__name__]
    bench.main()
