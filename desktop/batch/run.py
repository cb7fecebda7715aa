"""A batch running through the engine: its items fed as jobs a few at a time, each finished item's outputs written
into the dataset on one background thread, then recorded in the run journal.

:class:`BatchRun` mirrors :class:`~desktop.explore.run.GridRun`, with three differences: it keeps at most
``window`` jobs in the engine (a batch of 10,000 items is not 10,000 queued jobs, and pausing stops it at once);
it can be paused, resumed and cancelled; and it writes what it makes — never on the thread the engine signals on
(the GUI thread in the app): every file write (outputs, metadata rows, journal lines, the manifest and card at the
end) happens on one writer thread, in the order the items finished. A write error (a full disk) stops the batch
cleanly: nothing more is submitted, the jobs under way are cancelled, and the writer finishes the dataset as
incomplete, its manifest listing exactly the items that are complete.

:func:`open_batch` prepares the output folder: a new batch (refusing a folder that is not empty unless ``force``),
or one resumed from its journal (``resume``), whose done and intact items are skipped.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.api.errors import StudioloError
from desktop.batch.journal import Journal
from desktop.library.lineage import file_sha256  # None for a file that cannot be read

__all__ = ["BatchRun", "OpenedBatch", "OutputFolderError", "WINDOW", "open_batch", "plan_card"]

log = logging.getLogger(__name__)

WINDOW = 2
"""Jobs a batch keeps in the engine at a time: one running and the next ready, so the generator never waits."""
MAX_PENDING_WRITES = 8
"""Finished items waiting for the writer thread, past which no more jobs are fed (memory stays flat)."""


class OutputFolderError(StudioloError):
    """The batch's output folder cannot be used as asked (not empty, or no batch to resume there)."""


@dataclass
class OpenedBatch:
    """What :func:`open_batch` prepared: the plan to run, its journal, the dataset writer and the items done."""

    plan: Any
    journal: Journal
    writer: Any
    done: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    resumed: bool = False


def open_batch(out: Path, plan: Any, *, fmt: str, card: dict[str, Any], resume: bool = False,
               force: bool = False) -> OpenedBatch:
    """Prepare ``out`` for ``plan``. A new batch: ``out`` must be missing or empty (``force``: its contents are
    replaced); the plan is written to the journal before any job. ``resume``: the plan is the one in ``out``'s
    journal (``plan`` is only used when there is none yet: then it starts new), the items done with intact files
    are kept, the rest run again. Raises :class:`OutputFolderError`."""
    from desktop.batch.dataset import DatasetWriter
    from desktop.batch.plan import BatchPlan

    out = Path(out)
    journal = Journal(out)
    if resume and journal.exists():
        try:
            saved = BatchPlan.from_json(journal.read_plan())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputFolderError(f"Cannot read the batch's plan in {journal.plan_path}: {exc}",
                                    hint="Start the batch again into an empty folder, or with --force.") from exc
        done = journal.verified_done()
        journal.rewrite_done(done)
        # the rows of items not done (written, but never journaled before the crash) are dropped: they run again
        writer = DatasetWriter.resume(out, fmt, card={**plan_card(saved), **card}, keep_ids=set(done))
        return OpenedBatch(saved, journal, writer, done, resumed=True)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out} is a file, not a folder.", hint="Give --out a folder (new or empty).")
    if out.is_dir() and any(_foreign(out, journal)):
        if not force:
            raise OutputFolderError(
                f"The output folder {out} is not empty.",
                hint="Give a new or empty folder; --resume continues the batch written there, --force replaces "
                     "what it holds.")
        _empty(out, keep=journal.inputs_dir)
    out.mkdir(parents=True, exist_ok=True)
    journal.start(plan.to_json())
    writer = DatasetWriter(out, fmt, card={**plan_card(plan), **card})
    return OpenedBatch(plan, journal, writer, {}, resumed=False)


def plan_card(plan: Any) -> dict[str, Any]:
    """What the dataset card says of how ``plan`` was made."""
    card = {"generator": plan.generator_id, "generator_version": plan.generator_version, "kind": plan.kind,
            "model": plan.model, "seed_mode": plan.seed_mode, "seed": None if plan.base_seed < 0 else plan.base_seed,
            "source": plan.source, "total": len(plan.items)}
    if isinstance(plan.source.get("params"), dict):
        card["params"] = plan.source["params"]
    return card


def _foreign(out: Path, journal: Journal) -> list[Path]:
    """What ``out`` holds besides the new plan's own input pictures (``journal.inputs_dir``, written while the
    plan was made) — a folder holding only those is empty for a new batch."""
    found = []
    for child in out.iterdir():
        if child == journal.dir and not journal.exists():
            found += [p for p in child.iterdir() if p != journal.inputs_dir]
        else:
            found.append(child)
    return found


def _empty(folder: Path, *, keep: Path) -> None:
    """Remove what ``folder`` holds, except ``keep`` (and the folders on the way to it)."""
    for child in folder.iterdir():
        if child == keep:
            continue
        if keep.is_relative_to(child) and child.is_dir() and not child.is_symlink():
            _empty(child, keep=keep)
        elif child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class BatchRun(QObject):
    """The jobs of one batch. Signals (emitted on the engine's thread, as its own are):

    * ``item_done(index, outputs)`` — an item's outputs are in the dataset and its journal line written (its
      files there: ``done[index]``);
    * ``item_failed(index, message)`` — an item's job failed (the batch goes on; a resume runs it again);
    * ``progressed(done, total)`` — items ended (done, skipped as done before, or failed) of how many;
    * ``item_progress(index, done, total)`` — the running item's own progress (its job's);
    * ``paused_changed(paused)``;
    * ``stopped(message)`` — a write failed (a full disk): the batch stops, what is complete stays;
    * ``finished()`` — nothing runs any more and the dataset's manifest and card are written.

    ``done`` (item index → its files), ``errors`` (index → message), ``submitted`` (the indices fed to the
    engine, in order), ``cancelled``, ``error`` (the write error that stopped it) and ``complete`` describe it.
    """

    item_done = Signal(int, object)
    item_failed = Signal(int, str)
    progressed = Signal(int, int)
    item_progress = Signal(int, int, int)
    item_retried = Signal(int, str, str)  # item, the server that went away under it, its message (spread batches)
    paused_changed = Signal(bool)
    stopped = Signal(str)
    finished = Signal()
    _written = Signal(int, object, object)  # index, files or None, error message or None (from the writer thread)
    _closed = Signal()  # from the writer thread: the dataset is finished

    def __init__(self, engine: Any, batch: OpenedBatch, generator: Any, parent: QObject | None = None, *,
                 window: int = WINDOW, spread: Any = None) -> None:
        """``spread``: a :class:`desktop.remote.spread.Spread` to run the items on several remote servers at once
        (the window is then their capacity), items whose server went away retried on another."""
        super().__init__(parent)
        self.engine = engine
        self.batch = batch
        self.plan = batch.plan
        self.generator = generator
        self.spread = spread
        self.window = spread.capacity if spread is not None else max(1, window)
        self._spread_run: Any = None
        if spread is not None:
            from desktop.remote.spread import SpreadRun

            self._spread_run = SpreadRun(spread)
        self.items = {item.index: item for item in self.plan.items}
        self.done: dict[int, list[dict[str, Any]]] = dict(batch.done)
        self.skipped = len(self.done)
        self.errors: dict[int, str] = {}
        self.submitted: list[int] = []
        self.paused = False
        self.cancelled = False
        self.error: str | None = None
        self.complete = False
        self.is_finished = False
        self._todo: deque[int] = deque(i.index for i in self.plan.items if i.index not in self.done)
        self._open: dict[str, int] = {}  # job id → item index, for the jobs not ended yet
        self._writing = 0  # items handed to the writer thread and not written yet
        self._outputs: dict[int, list[Any]] = {}  # their outputs, for item_done
        self._closing = False
        self._writes: queue.Queue[Any] = queue.Queue()
        self._model_info: dict[str | None, tuple[str, str]] = {}
        self._written.connect(self._on_written)
        self._closed.connect(self._on_closed)
        self._write_failed = False  # on the writer thread: after a failed write nothing more is written
        self._thread = threading.Thread(target=self._writer_loop, name="batch-writer", daemon=True)
        self._started = False

    # -- control ---------------------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def ended(self) -> int:
        return len(self.done) + len(self.errors)

    def start(self) -> None:
        """Feed the first jobs (a ParamError of the first item is raised here, before any job runs)."""
        if self._started:
            return
        self._started = True
        self._connect(True)
        self._thread.start()
        self.progressed.emit(self.ended, self.total)
        try:
            self._feed()
        except BaseException:  # refused by the engine (the plan's items are checked: hardly ever): stop cleanly
            self.cancel()
            self.error = self.error or "the batch could not start"
            self._maybe_close()
            raise
        self._maybe_close()

    def pause(self) -> None:
        """Stop feeding jobs; the ones in the engine finish (and are written)."""
        if not self.paused:
            self.paused = True
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.paused_changed.emit(False)
            self._feed()
            self._maybe_close()

    def cancel(self, *, hard: bool = False) -> None:
        """Stop: cancel the jobs under way, feed no more. The items written stay, and the dataset is finished as
        incomplete."""
        self.cancelled = True
        for job_id in list(self._open):
            self.engine.cancel(job_id, hard=hard)
        self._maybe_close()

    @property
    def idle(self) -> bool:
        """No job in the engine and no item waiting to be written (paused, or over)."""
        return not self._open and not self._writing

    @property
    def job_ids(self) -> list[str]:
        return list(self._open)

    # -- feeding ---------------------------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self.cancelled or self.error is not None

    def _feed(self) -> None:
        from desktop.api.params import from_json
        from desktop.remote.spread import submit_item

        while (self._todo and not self.paused and not self._stopping() and len(self._open) < self.window
               and self._writing < MAX_PENDING_WRITES):
            index = self._todo[0]
            item = self.items[index]
            job = submit_item(self.engine, self._spread_run, index, self.plan.generator_id,
                              from_json(self.generator.Params, item.params), item.model, item.seed)
            if job is None:
                return  # every slot of the servers left to it is busy: fed again when one ends
            self._todo.popleft()
            if isinstance(job, str):  # every server went away under it: the item fails, the batch goes on
                self._fail_item(index, job)
                continue
            self.submitted.append(index)
            self._open[job.id] = index

    @property
    def retries(self) -> list[tuple[Any, str, str]]:
        """(item, the server that went away under it, its message), for a spread batch."""
        return self._spread_run.retries if self._spread_run is not None else []

    def _fail_item(self, index: int, message: str) -> None:
        self.errors[index] = message
        self.item_failed.emit(index, message)
        self.progressed.emit(self.ended, self.total)

    def _free_slot(self, job_id: str) -> Any:
        return self._spread_run.ended(job_id) if self._spread_run is not None else None

    def _connect(self, on: bool) -> None:
        pairs = ((self.engine.job_finished, self._on_finished), (self.engine.job_failed, self._on_failed),
                 (self.engine.job_cancelled, self._on_cancelled), (self.engine.job_progressed, self._on_progress))
        for signal, slot in pairs:
            signal.connect(slot) if on else signal.disconnect(slot)

    @Slot(str, int, int, str)
    def _on_progress(self, job_id: str, done: int, total: int, _message: str) -> None:
        index = self._open.get(job_id)
        if index is not None:
            self.item_progress.emit(index, done, total)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: Any) -> None:
        index = self._open.pop(job_id, None)
        if index is None:
            return
        self._free_slot(job_id)
        if self.error is not None:  # a write already failed: nothing more goes into the dataset
            self._maybe_close()
            return
        self._writing += 1
        self._outputs[index] = list(outputs or [])
        self._writes.put((index, self._outputs[index]))
        self._feed()

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        index = self._open.pop(job_id, None)
        if index is None:
            return
        slot = self._free_slot(job_id)
        if slot is not None and self._spread_run.went_away(index, slot, self.engine.job(job_id).error_type, message):
            # the server went away: the item runs again first, on another server
            self.item_retried.emit(index, slot.server, message)
            self._todo.appendleft(index)
        else:
            self._fail_item(index, message)
        self._feed()
        self._maybe_close()

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, _partial: Any) -> None:
        index = self._open.pop(job_id, None)
        if index is None:
            return
        self._free_slot(job_id)
        if not self._stopping():  # cancelled from elsewhere (the Activity view): it runs again on resume
            self.errors[index] = "cancelled"
            self.item_failed.emit(index, "cancelled")
            self.progressed.emit(self.ended, self.total)
            self._feed()
        self._maybe_close()

    @Slot(int, object, object)
    def _on_written(self, index: int, files: Any, error: Any) -> None:
        self._writing -= 1
        outputs = self._outputs.pop(index, [])
        if error is not None:
            if self.error is None:
                self.error = str(error)
                for job_id in list(self._open):
                    self.engine.cancel(job_id)
                self.stopped.emit(self.error)
        else:
            self.done[index] = files
            self.item_done.emit(index, outputs)
            self.progressed.emit(self.ended, self.total)
            self._feed()
        self._maybe_close()

    def _maybe_close(self) -> None:
        """Once no job is open and no write pending, and nothing more will be fed: finish the dataset (on the
        writer thread)."""
        if not self._started or self._closing or self._open or self._writing:
            return
        if self._todo and not self._stopping():
            return  # paused (or waiting to feed): not over
        self._closing = True
        self._connect(False)
        self.complete = len(self.done) == self.total
        self._writes.put(None)

    @Slot()
    def _on_closed(self) -> None:
        self._thread.join()
        self.is_finished = True
        self.finished.emit()

    # -- the writer thread -----------------------------------------------------------------------------------

    def _writer_loop(self) -> None:
        while True:
            work = self._writes.get()
            if work is None:
                break
            index, outputs = work
            if self._write_failed:  # a write failed before: nothing more goes in
                self._written.emit(index, None, "stopped")
                continue
            try:
                files = self._write_item(self.items[index], outputs)
            except Exception as exc:  # a full disk, a vanished folder: the batch stops cleanly
                self._write_failed = True
                log.warning("writing batch item %s failed", index, exc_info=True)
                self._written.emit(index, None, _describe_write_error(exc, self.batch.journal.out))
                continue
            self._written.emit(index, files, None)
        try:
            self.batch.writer.finish(complete=self.complete, done=len(self.done))
        except Exception as exc:
            log.exception("finishing the dataset failed")
            if self.error is None:
                self.error = _describe_write_error(exc, self.batch.journal.out)
        self._closed.emit()

    def _write_item(self, item: Any, outputs: list[Any]) -> list[dict[str, Any]]:
        """Write one item's outputs into the dataset (then its journal line); returns its files."""
        from desktop.api import TextOutput

        files: list[dict[str, Any]] = []
        tmp_dir = self.batch.journal.dir / "tmp"
        for number, output in enumerate(o for o in outputs if not getattr(o, "partial", False)):
            row = self.row(item, number)
            if isinstance(output, TextOutput):
                files += self.batch.writer.add(row, text=output.text)
                continue
            path = self._encoded_file(output, row, tmp_dir)
            try:
                files += self.batch.writer.add(row, file=path)
            finally:
                if path.parent == tmp_dir:
                    path.unlink(missing_ok=True)
        self.batch.journal.append_done(item.index, files)
        return files

    def _encoded_file(self, output: Any, row: dict[str, Any], tmp_dir: Path) -> Path:
        """The output as a file named by its row's id: encoded here with the row as its metadata (so that the same
        item gives the same bytes on every run), or the file the library saved when the host cannot encode it."""
        from desktop.api import atomic_write_bytes
        from desktop.library import default_encode

        try:
            encoded = default_encode(output, row)
        except StudioloError:
            saved = getattr(output, "saved_path", None)
            if saved is None:
                raise
            target = tmp_dir / f"{row['id']}{Path(saved).suffix}"
            tmp_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, target)
            return target
        target = tmp_dir / f"{row['id']}{encoded.suffix}"
        atomic_write_bytes(target, encoded.data)
        return target

    def row(self, item: Any, number: int = 0) -> dict[str, Any]:
        """The metadata columns of output ``number`` of ``item`` (without ``file_name``: the writer adds it)."""
        from desktop.api.params import prompt_field

        params = dict(item.params)
        prompt_name = prompt_field(self.generator.Params)
        ran_on = self._spread_run.ran_on.get(item.index) if self._spread_run is not None else None
        model = ran_on or item.model or self.plan.model or self.generator.default_model
        model_sha256, license_ = self._model_of(model)
        source = item.source or ""
        return {
            "id": f"{item.index:06d}-{number}",
            "prompt": (params.get(prompt_name) if prompt_name else None) or "",
            "negative_prompt": params.get("negative_prompt") or "",
            "seed": item.seed,
            "params": json.dumps(params, sort_keys=True),
            "model": model or "",
            "model_sha256": model_sha256,
            "generator": self.plan.generator_id,
            "generator_version": self.plan.generator_version,
            "license": license_,
            "source_file": source,
            "source_sha256": (file_sha256(source) or "") if source else "",
            "batch_row": item.row,
        }

    def _model_of(self, ref: str | None) -> tuple[str, str]:
        """(weights hash, licence) of model ``ref``, found once per model ("" where unknown)."""
        if ref not in self._model_info:
            digest, license_ = "", ""
            try:
                path = self.engine.services.resolver.resolve(self.generator, ref, check=False)
                if path is not None:
                    from desktop.batch.dataset import model_weights_hash

                    digest = model_weights_hash(Path(path))
                    license_ = _license_of(Path(path))
            except Exception:  # an unknown hash is said as "" in the metadata, never a failed batch
                log.warning("no weights hash for model %s", ref, exc_info=True)
            if not license_:  # a model the generator recommends: the licence it names
                license_ = next((m.license or "" for m in self.generator.recommended_models
                                 if m.ref.partition("@")[0] == (ref or "").partition("@")[0]), "")
            self._model_info[ref] = (digest, license_)
        return self._model_info[ref]


def _license_of(path: Path) -> str:
    """The licence a model's card (README.md front matter, as on the Hugging Face Hub) names, or ""."""
    card = (path if path.is_dir() else path.parent) / "README.md"
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    if not text.startswith("---"):
        return ""
    for line in text.split("---", 2)[1].splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "license":
            return value.strip().strip("'\"")
    return ""




def _describe_write_error(exc: BaseException, out: Path) -> str:
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk holding {out} is full: the batch stopped; the items written are complete."
    if isinstance(exc, StudioloError):
        return exc.message
    return f"Writing into {out} failed: {exc}"
