"""The host's :class:`~desktop.api.TrainingContext`: checkpoints, the training log, the fit check, pause.

A training run owns a folder (``work_dir``, :func:`run_dir`): ``checkpoints/step-000120/`` (each made complete in a
temporary folder, then renamed into place: a crash or a full disk while writing leaves the previous one), the
training log ``log.jsonl`` (one line per step: step, loss and other numbers; kept across resumes, cut back to the
checkpoint a resume starts from, so the log is that of one uninterrupted run), and whatever the trainer writes
(samples, the result). It runs in the generator's worker process, beside the trainer.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop import paths
from desktop.api import InsufficientMemoryError, JobCancelled
from desktop.api.training import TrainingContext
from desktop.engine.context import CallbackRunContext

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
LOG_FILE = "log.jsonl"
KEEP_CHECKPOINTS = 2
_STEP_DIR = re.compile(r"step-(\d{6,})")


def runs_dir() -> Path:
    """Where training runs keep their folders."""
    return paths.data_dir() / "training"


def run_dir(generator_id: str, name: str) -> Path:
    """The folder of the run that makes the model ``name`` with ``generator_id`` (the same for every resume)."""
    return runs_dir() / generator_id / name


def latest_checkpoint(work_dir: Path) -> tuple[int, Path] | None:
    """``(step, folder)`` of the newest complete checkpoint in ``work_dir``, or None."""
    found = checkpoints(work_dir)
    return found[-1] if found else None


def checkpoints(work_dir: Path) -> list[tuple[int, Path]]:
    """The complete checkpoints of a run, oldest first (temporary folders of an interrupted write are not)."""
    folder = work_dir / CHECKPOINTS
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    found = [(int(m.group(1)), p) for p in entries if (m := _STEP_DIR.fullmatch(p.name)) and p.is_dir()]
    return sorted(found)


def read_log(work_dir: Path) -> list[dict[str, Any]]:
    """The training log of a run: one dict per step (``step``, ``loss``, …), in order. Unreadable lines skipped."""
    try:
        lines = (work_dir / LOG_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            entries.append(entry)
    return entries


class CallbackTrainingContext(CallbackRunContext, TrainingContext):
    """A :class:`CallbackRunContext` with a training run's folder. ``pause_event``: set to pause (a checkpoint at
    the next step, then the run stops); ``resume``: start from the latest checkpoint in ``work_dir``;
    ``free_memory(device)``: the bytes the fit check allows (default :func:`free_device_memory`: what is free plus
    what this process holds; for the CPU RAM, for CUDA the device's
    memory when torch is loaded). ``progress_interval``: report progress at most this often (the last step always):
    a worker process's reports cross a pipe, and a tiny model's steps take milliseconds."""

    def __init__(self, *, work_dir: Path, resume: bool = False, pause_event: threading.Event | None = None,
                 free_memory: Callable[[str], int | None] | None = None, progress_interval: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.progress_interval = progress_interval  # a worker process sends at most this often (0: every step)
        self._last_progress = -math.inf
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.pause_event = pause_event or threading.Event()
        self._free_memory = free_memory or free_device_memory
        self.estimate: dict[str, Any] | None = None
        self._started = time.monotonic()  # the log's "seconds": since this job (this part of the run) started
        self.resume_from = latest_checkpoint(self.work_dir) if resume else None
        self._log = open_log(self.work_dir, self.resume_from[0] if self.resume_from else 0)
        if self.resume_from is not None:
            self.warn(f"Resuming from the checkpoint of step {self.resume_from[0]}.")
        elif resume:
            self.warn("There was no checkpoint to resume from: the training starts from the beginning.")

    # -- progress and the log --------------------------------------------------------------------------------

    def step_done(self, step: int, total: int, loss: float, **metrics: float) -> None:
        entry = {"step": int(step), "loss": float(loss), **{k: float(v) for k, v in metrics.items()},
                 "seconds": round(time.monotonic() - self._started, 4)}
        try:
            self._log.write(json.dumps(entry) + "\n")
            self._log.flush()
        except OSError as exc:  # the log is a record, not the run: a full disk shows at the next checkpoint
            log.warning("could not write the training log in %s: %s", self.work_dir, exc)
        now = time.monotonic()
        if step >= total or now - self._last_progress >= self.progress_interval or self.pause_event.is_set():
            self._last_progress = now
            shown = f"loss {loss:.4f}" if math.isfinite(loss) else f"loss {loss}"
            self.progress(step, total, shown)

    def close(self) -> None:
        try:
            self._log.close()
        except OSError:
            pass

    # -- checkpoints -----------------------------------------------------------------------------------------

    def checkpoint_due(self, step: int, every: int, total: int) -> bool:
        return step >= total or (every > 0 and step % every == 0) or self.pause_event.is_set()

    def save_checkpoint(self, step: int, write: Callable[[Path], None]) -> Path:
        from desktop.destinations import write_error

        folder = self.work_dir / CHECKPOINTS
        final = folder / f"step-{int(step):06d}"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=folder))
        try:
            write(tmp)
            _fsync_tree(tmp)
            if final.exists():  # the same step again (a resume that wrote it already): the new one replaces it
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(folder)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise write_error(exc, final, what=f"the checkpoint of step {step}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for _step, old in checkpoints(self.work_dir)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def raise_if_stopping(self) -> None:
        if self.cancelled or self.pause_event.is_set():
            raise JobCancelled()

    # -- the estimate ----------------------------------------------------------------------------------------

    def check_fit(self, *, peak_bytes: int, seconds_per_step: float) -> None:
        from desktop.engine.memory import human_bytes

        free = self._free_memory(self.device)
        self.estimate = {"peak_bytes": int(peak_bytes), "seconds_per_step": float(seconds_per_step),
                         "free_bytes": free}
        where = "RAM" if self.device == "cpu" else f"memory on {self.device}"
        said = (f"Estimate from the warm-up: {human_bytes(peak_bytes)} of {where} at the peak, "
                f"{seconds_per_step:.2f} s a step")
        if self.device == "cpu":
            said += " (training on the CPU: slow, fine for small models)"
        if free is not None and peak_bytes > free:
            raise InsufficientMemoryError(
                f"This training needs about {human_bytes(peak_bytes)} of {where} at its peak, and "
                f"{human_bytes(free)} is available to it; it was not started.",
                hint="Lower the resolution, the batch size or the rank, turn on gradient checkpointing or mixed "
                     "precision, close other programs, or train on a device with more memory.")
        self.warn(said + ".")


def open_log(work_dir: Path, keep_through: int) -> Any:
    """The run's log opened for appending, first cut back to the steps up to ``keep_through`` (0: emptied)."""
    path = work_dir / LOG_FILE
    kept = [e for e in read_log(work_dir) if e["step"] <= keep_through]
    text = "".join(json.dumps(e) + "\n" for e in kept)
    from desktop.api.files import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))
    return open(path, "a", encoding="utf-8")


def free_device_memory(device: str) -> int | None:
    """Bytes a training in this process can have on ``device`` at its peak: what is free there, plus what this
    process holds already (the loaded base model among it) — the RAM available and this process's resident memory
    for ``cpu``; a CUDA device's free memory and what torch allocated on it, when torch is loaded in this process
    (it is, in a trainer's worker process). None when unknown."""
    from desktop.engine.memory import in_use

    if device == "cpu":
        from desktop.api import available_ram

        free = available_ram()
    else:
        free = None
        torch = sys.modules.get("torch")
        if torch is not None and device.startswith("cuda"):
            try:
                free = int(torch.cuda.mem_get_info(torch.device(device))[0])
            except Exception:  # no such device, a driver problem: unknown, the run goes on and may fail itself
                return None
    if free is None:
        return None
    return free + (in_use(device) or 0)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk; best effort (some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
