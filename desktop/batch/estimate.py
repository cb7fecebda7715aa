"""How long a batch will take and how much disk it will fill, from what the generator's last jobs took.

Only what Studiolo records is used: the time each job spent generating (``timings.generate_s``, saved in the
metadata of every library item; else the engine's own record of the jobs of this session: ``Job.timings``) and the
size of the files the library holds for those jobs. The model's loading (``load_s``) is left out: a batch loads it
once. With no recent job of the generator there is no estimate (``None``). Nothing here imports Qt or torch.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["JobCosts", "RECENT_ITEMS", "engine_job_times", "recent_job_costs"]

RECENT_ITEMS = 50
"""How many of the generator's newest library items are looked at."""


@dataclass(frozen=True)
class JobCosts:
    """What one job of the generator costs, as the median of its last ``jobs`` jobs: ``seconds`` generating (None
    when none recorded it) and ``bytes`` of files (None when the library holds none of their files)."""

    jobs: int
    seconds: float | None
    bytes: int | None

    def for_items(self, count: int) -> tuple[float | None, int | None]:
        """The time (seconds) and disk (bytes) of ``count`` jobs like these."""
        return (None if self.seconds is None else self.seconds * count,
                None if self.bytes is None else self.bytes * count)


def engine_job_times(engine: Any, generator_id: str) -> list[float]:
    """The generating times of the engine's finished jobs of ``generator_id`` (this session's), newest last. Read
    on the GUI thread (the engine's jobs live there); a light list goes to the task."""
    from desktop.engine.jobs import JobState

    times = []
    for job in engine.jobs():
        if job.generator_id == generator_id and job.state is JobState.DONE:
            value = job.timings.get("generate_s", job.timings.get("total_s"))
            if isinstance(value, (int, float)) and value >= 0:
                times.append(float(value))
    return times


def recent_job_costs(library: Any, generator_id: str, engine_times: list[float] | None = None,
                     *, limit: int = RECENT_ITEMS) -> JobCosts | None:
    """The cost of one job of ``generator_id`` from the library's newest items of it (grouped by job: a job may
    save several files) — their recorded generating times, else ``engine_times``; their files' sizes. None when
    there is nothing to go by. Reads the library and the disk: call it off the GUI thread."""
    items = []
    if library is not None:
        from desktop.library.db import Query

        try:
            items = library.query(Query(generator_id=generator_id), limit=limit)
        except Exception:  # a library that cannot be read gives no estimate, never an error
            log.warning("no estimate: the library cannot be read", exc_info=True)
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for item in items:
        if item.partial:
            continue
        job = item.job_id or f"item-{item.id}"
        timings = item.metadata.get("timings") if isinstance(item.metadata, dict) else None
        value = timings.get("generate_s") if isinstance(timings, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            seconds[job] = float(value)
        try:
            size = Path(item.path).stat().st_size
        except OSError:
            continue
        sizes[job] = sizes.get(job, 0) + size
    times = list(seconds.values()) or list(engine_times or [])[-limit:]
    if not times and not sizes:
        return None
    return JobCosts(jobs=max(len(set(seconds) | set(sizes)), len(times)),
                    seconds=statistics.median(times) if times else None,
                    bytes=int(statistics.median(sizes.values())) if sizes else None)
