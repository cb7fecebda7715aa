"""`python -m benchmarks` runs every benchmark in turn."""

import sys

from benchmarks import cli_startup, engine_overhead

for bench in (cli_startup, engine_overhead):
    sys.argv = [bench.__name__]
    bench.main()
