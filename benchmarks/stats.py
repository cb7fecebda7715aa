"""Median and spread of repeated measurements."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def summary(samples: list[float]) -> dict[str, float]:
    """Median, quartiles, min and max of ``samples``."""
    ordered = sorted(samples)
    q1, _, q3 = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else (ordered[0],) * 3
    return {"median": statistics.median(ordered), "q1": q1, "q3": q3, "min": ordered[0], "max": ordered[-1],
            "runs": len(ordered)}


def describe(name: str, stats: dict[str, float], unit: str = "ms", scale: float = 1000.0) -> str:
    return (f"{name:<36} median {stats['median'] * scale:8.1f} {unit}   IQR {stats['q1'] * scale:.1f}–"
            f"{stats['q3'] * scale:.1f}   min {stats['min'] * scale:.1f}   max {stats['max'] * scale:.1f}"
            f"   (n={stats['runs']})")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def save_results(name: str, results: Any) -> Path:
    """Write ``results`` as ``benchmarks/results/NAME.json`` (the files the issue notes quote)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    return path
