"""`python -m benchmarks` runs every benchmark in turn."""

from benchmarks import cli_startup

cli_startup.main()
