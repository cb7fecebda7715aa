"""Benchmarks: ratios against a baseline in the same process or on the same machine, median and spread."""
