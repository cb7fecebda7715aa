"""Getting a job's progress and previews from its worker to the screen without flooding it.

The worker thread puts updates into the job's :class:`Mailbox`; the consumer (on the GUI or main thread) takes
them in batches no more often than a :class:`RateLimiter` allows. In a batch, state changes are kept in order,
progress is the latest report,
text chunks are joined (never dropped), and of the image/audio previews only the latest is kept. A closed
mailbox (the job was cancelled) accepts nothing and gives nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_RATE_HZ = 30.0


@dataclass
class Batch:
    """What arrived since the last take."""

    states: list[str] = field(default_factory=list)
    progress: tuple[int, int | None, str] | None = None
    text: str = ""
    preview: Any = None
    warnings: list[str] = field(default_factory=list)
    dropped_previews: int = 0

    def __bool__(self) -> bool:
        return bool(self.states) or self.progress is not None or bool(self.text) or self.preview is not None \
            or bool(self.warnings)


class Mailbox:
    """Thread-safe holder of one job's pending updates.

    Each ``put_*`` returns True when the consumer should be told there is mail: only for the first update
    after a take, so a fast worker causes one notification per batch, not one per update.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch = Batch()
        self._notified = False
        self.closed = False

    def _put(self, update: Callable[[Batch], None]) -> bool:
        with self._lock:
            if self.closed:
                return False
            update(self._batch)
            if self._notified:
                return False
            self._notified = True
            return True

    def put_state(self, state: str) -> bool:
        return self._put(lambda b: b.states.append(state))

    def put_progress(self, done: int, total: int | None, message: str) -> bool:
        def update(b: Batch) -> None:
            b.progress = (done, total, message)

        return self._put(update)

    def put_text(self, chunk: str) -> bool:
        def update(b: Batch) -> None:
            b.text += chunk

        return self._put(update)

    def put_preview(self, obj: Any) -> bool:
        def update(b: Batch) -> None:
            if b.preview is not None:
                b.dropped_previews += 1
            b.preview = obj

        return self._put(update)

    def put_warning(self, message: str) -> bool:
        return self._put(lambda b: b.warnings.append(message))

    def take(self) -> Batch:
        """Everything pending (an empty batch once closed)."""
        with self._lock:
            batch, self._batch, self._notified = self._batch, Batch(), False
            return Batch() if self.closed else batch

    def close(self) -> None:
        """Drop what is pending and refuse everything from now on."""
        with self._lock:
            self.closed = True
            self._batch = Batch()


class RateLimiter:
    """Allows the first delivery at once and later ones at most every ``interval`` seconds of ``clock``."""

    def __init__(self, interval: float = 1.0 / MAX_RATE_HZ, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def wait_time(self) -> float:
        """Seconds until a delivery is allowed (0: now)."""
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self.clock())

    def mark(self) -> None:
        """Record a delivery now."""
        self._last = self.clock()
