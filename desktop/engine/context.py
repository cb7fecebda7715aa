"""A ``RunContext`` that forwards to callbacks: the base the job engine and the test runner build on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from desktop.api import Generator, RunContext
from desktop.engine.rng import hold_global_rng


def _ignore(*_args: Any) -> None:
    return None


class CallbackRunContext(RunContext):
    """Calls ``on_progress(done, total, message)``, ``on_preview(obj)`` and ``on_warning(message)`` directly, on
    the generator's thread. Cancel by setting ``cancel_event``; nothing is forwarded after that, and
    ``progress_after_cancel`` counts the progress reports the generator still made (its cancel latency in steps).
    Given the job's ``generator``, :meth:`addon_model` finds its add-on models (:mod:`desktop.models.addons`)."""

    def __init__(
        self,
        *,
        job_id: str,
        seed: int,
        device: str = "cpu",
        cancel_event: threading.Event | None = None,
        on_progress: Callable[[int, int | None, str], None] = _ignore,
        on_preview: Callable[[Any], None] = _ignore,
        on_warning: Callable[[str], None] = _ignore,
        generator: Generator | None = None,
        watermark: bool = False,
    ) -> None:
        self.job_id = job_id
        self.watermark = watermark
        self.seed = seed
        self.device = device
        self.cancel_event = cancel_event or threading.Event()
        self._on_progress = on_progress
        self._on_preview = on_preview
        self._on_warning = on_warning
        self.progress_after_cancel = 0
        self.generator = generator  # the job's generator: whose add-on models addon_model finds

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        if self.cancel_event.is_set():
            self.progress_after_cancel += 1
        else:
            self._on_progress(done, total, message)

    def preview(self, obj: Any) -> None:
        if not self.cancel_event.is_set():
            self._on_preview(obj)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def hold_global_rng(self) -> AbstractContextManager[None]:
        return hold_global_rng(self.seed)

    def warn(self, message: str) -> None:
        self._on_warning(message)

    def addon_model(self, kind: str, ref: str, *, allow_pickle: bool = False) -> Path:
        if self.generator is None:
            return super().addon_model(kind, ref, allow_pickle=allow_pickle)
        from desktop.models.addons import resolve_addon

        return resolve_addon(self.generator, kind, ref, allow_pickle=allow_pickle)
