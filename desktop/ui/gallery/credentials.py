"""``CredentialsPanel``: the details pane's "Content Credentials" section — whether the selected item's file carries
a valid C2PA manifest (a badge and a summary line) and what it claims, and "Reproduce": the item's job run again
through the window's engine and compared with the file.

Threads (:mod:`desktop.ui.tasks`, the ``provenance`` pool): verifying (c2pa reads the whole file), reading what a
re-run needs (:func:`desktop.provenance.reproduce.prepare`: the library and the file) and comparing
(:func:`~desktop.provenance.reproduce.compare`: reads, encodes, hashes) run off the GUI thread; the re-run itself
is an ordinary engine job, submitted on the GUI thread and followed through the engine's signals (no event loop of
its own). A verification that comes back after the selection moved on is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.ui.tasks import Task, TaskGroup
from desktop.ui.theme import mark_error

__all__ = ["BADGES", "CLAIMS", "CredentialsPanel", "verify_path"]

BADGES: dict[str, tuple[str, str]] = {
    "valid": ("✓ Valid", "#2e9e4f"),
    "tampered": ("⚠ Tampered", "#d9822b"),
    "unsigned": ("Unsigned", ""),
    "other_signer": ("Signed by someone else", "#3b7dd8"),
    "corrupt": ("⚠ Unreadable", "#d9822b"),
}
"""A verdict's state → the badge's text and colour ("": the theme's)."""

CLAIMS: tuple[tuple[str, str], ...] = (
    ("generator", "Generator"), ("model", "Model"), ("weights_sha256", "Weights"), ("prompt", "Prompt"),
    ("digital_source_type", "Source"), ("signer", "Signer"),
)
"""The claims shown (key in the verdict, label), in this order."""

MAX_CLAIM_CHARS = 200


def verify_path(path: Path) -> Any:
    """:func:`desktop.provenance.c2pa_verify.verify_file` with this installation's keys (c2pa imported here, on
    the pool thread, never at the GUI's start)."""
    from desktop.provenance.c2pa_verify import verify_file

    return verify_file(path)


def claim_text(key: str, value: Any) -> str:
    """A claim as shown: a weights hash shortened, a digital source type by its last word, long text cut."""
    text = value if isinstance(value, str) else str(value)
    if key == "weights_sha256" and len(text) > 16:
        return f"{text[:12]}…"
    if key == "digital_source_type":
        return text.rstrip("/").rsplit("/", 1)[-1]
    return text if len(text) <= MAX_CLAIM_CHARS else text[: MAX_CLAIM_CHARS - 1] + "…"


@dataclass
class _Run:
    """The one reproduction under way: its item, the task preparing or comparing (None while the job runs), the
    prepared job and the engine's job id once submitted."""

    item_id: int
    task: Task | None = None
    prepared: Any = None
    job_id: str | None = None
    cancelling: bool = False


class CredentialsPanel(QGroupBox):
    """Shows one item's Content Credentials (:meth:`show_item`) and reproduces items (:meth:`reproduce`, with the
    engine and library given by :meth:`set_engine`). ``reproduced(item_id, text, identical, failed)`` when a
    reproduction ended (``identical`` None: nothing was compared, ``text`` says why; ``failed``: an error, not a
    cancel)."""

    reproduced = Signal(int, str, object, bool)
    verified = Signal(int, str)
    """``(item_id, state)``: an item's Content Credentials were checked (the gallery marks its tile)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Content Credentials"))
        self.setObjectName("detail_credentials")
        self.tasks = TaskGroup("provenance", owner=self, threads=2)
        self.verify: Callable[[Path], Any] = verify_path
        """What checks a file (on a pool thread); tests put a slower one here."""
        self.engine: Any = None
        self.library: Any = None
        self.item_id: int | None = None
        self.state: str | None = None  # the verdict's state on show; None while checking or with nothing to check
        self.verdict: Any = None
        self._path: Path | None = None
        self._token = 0
        self._verifying: Task | None = None
        self._run: _Run | None = None
        self._results: dict[int, tuple[str, bool]] = {}  # item id → (last reproduce text, is an error)
        self._build()
        self.show_item(None)

    def _build(self) -> None:
        self.badge = QLabel(self)
        self.badge.setObjectName("credentials_badge")
        self.badge.setAccessibleName(self.tr("Content Credentials state"))
        self.summary = QLabel(self)
        self.summary.setObjectName("credentials_summary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.claims = QFormLayout()
        self.claim_labels: dict[str, QLabel] = {}
        for key, label in CLAIMS:
            value = QLabel(self)
            value.setObjectName(f"credentials_claim_{key}")
            value.setWordWrap(True)
            value.setTextFormat(Qt.TextFormat.PlainText)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.claims.addRow(self.tr(label) + ":", value)
            self.claim_labels[key] = value

        self.reproduce_button = QPushButton(self.tr("Reproduce"), self)
        self.reproduce_button.setObjectName("credentials_reproduce")
        self.reproduce_button.setToolTip(self.tr("Run this item's job again with its parameters, seed and model, and "
                                                 "say whether the result is identical"))
        self.reproduce_button.clicked.connect(lambda: self.reproduce(self.item_id) if self.item_id else None)
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setObjectName("credentials_cancel")
        self.cancel_button.setAccessibleName(self.tr("Cancel the reproduction"))
        self.cancel_button.clicked.connect(self.cancel_reproduce)
        self.result = QLabel(self)
        self.result.setObjectName("credentials_reproduce_result")
        self.result.setWordWrap(True)
        self.result.setTextFormat(Qt.TextFormat.PlainText)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reproduce_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.badge)
        layout.addWidget(self.summary)
        layout.addLayout(self.claims)
        layout.addLayout(buttons)
        layout.addWidget(self.result)

    # -- the engine ----------------------------------------------------------------------------------------------

    def set_engine(self, engine: Any, library: Any = None) -> None:
        """Reproduce through ``engine`` (its job signals followed from now on), looking items up in ``library``
        (default: the engine's)."""
        if self.engine is not None:
            for signal, slot in self._engine_slots():
                signal.disconnect(slot)
        self.engine, self.library = engine, library
        if engine is not None:
            for signal, slot in self._engine_slots():
                signal.connect(slot)
        self._update_buttons()

    def _engine_slots(self) -> list[tuple[Any, Any]]:
        engine = self.engine
        return [(engine.job_finished, self._on_job_finished), (engine.job_failed, self._on_job_failed),
                (engine.job_cancelled, self._on_job_cancelled)]

    # -- verifying -------------------------------------------------------------------------------------------------

    def show_item(self, item: Any, exists: bool = True) -> None:
        """Check and show the Content Credentials of ``item`` (a library item; None: nothing selected) off the GUI
        thread. The previous check's result, if it comes back later, is dropped."""
        self._token += 1
        token = self._token
        if self._verifying is not None:
            self._verifying.cancel()
            self._verifying = None
        same = item is not None and item.id == self.item_id and self.verdict is not None
        self.item_id = item.id if item is not None else None
        self._path = Path(item.path) if item is not None else None
        self._show_result()
        self._update_buttons()
        if item is None:
            self._show_verdict(None, self.tr("Select an item to see its Content Credentials."))
            return
        if not exists:
            self._show_verdict(None, self.tr("The file is missing: nothing to check."))
            return
        if not same:  # the same item again (a tag added): its last verdict stays on show while it is checked
            self._show_verdict(None, self.tr("Checking…"))
        path, verify = self._path, self.verify

        item_id = item.id

        def done(verdict: Any) -> None:
            self.verified.emit(item_id, str(getattr(verdict, "state", "")))  # still true of the file, if stale
            if token == self._token:
                self._verifying = None
                self._show_verdict(verdict)

        def failed(exc: BaseException) -> None:
            if token == self._token:
                self._verifying = None
                self._show_verdict(None, self.tr("Cannot check the Content Credentials: %1").replace("%1", str(exc)),
                                   error=True)

        self._verifying = self.tasks.run(lambda _state: verify(path), on_done=done, on_failed=failed,
                                         name="verify credentials")

    def _show_verdict(self, verdict: Any, text: str = "", *, error: bool = False) -> None:
        self.verdict = verdict
        self.state = getattr(verdict, "state", None)
        if verdict is None:
            self.badge.clear()
            self.badge.setStyleSheet("")
            self.badge.hide()
            self.summary.setText(text)
            mark_error(self.summary, error)
            self.summary.setToolTip("")
            claims: dict[str, Any] = {}
        else:
            label, colour = BADGES.get(verdict.state, (verdict.state, ""))
            self.badge.setText(self.tr(label))
            self.badge.setStyleSheet(f"font-weight: bold; color: {colour};" if colour else "font-weight: bold;")
            self.badge.show()
            self.summary.setText(verdict.summary)
            mark_error(self.summary, False)
            self.summary.setToolTip("\n".join(getattr(verdict, "reasons", []) or []))
            claims = dict(getattr(verdict, "claims", {}) or {})
        for key, value_label in self.claim_labels.items():
            value = claims.get(key)
            shown = value not in (None, "")
            value_label.setText(claim_text(key, value) if shown else "")
            value_label.setToolTip(str(value) if shown else "")
            self.claims.setRowVisible(value_label, shown)

    def claim(self, key: str) -> str:
        """What the row of claim ``key`` shows ("" when hidden)."""
        return self.claim_labels[key].text() if key in self.claim_labels else ""

    # -- reproducing -----------------------------------------------------------------------------------------------

    def is_reproducing(self) -> bool:
        return self._run is not None

    def reproduce(self, item_id: int) -> bool:
        """Re-run the job that made item ``item_id`` and compare; the outcome shows in :attr:`result` (while the
        item is on show) and comes as ``reproduced``. False when it cannot start (no engine, one under way)."""
        if self.engine is None:
            self._set_result(item_id, self.tr("Reproducing needs the engine, which this window does not have."),
                             error=True)
            return False
        if self._run is not None:
            self._set_result(item_id, self.tr("Another item is being reproduced; wait for it or cancel it."),
                             error=True)
            return False
        engine, library = self.engine, self.library
        run = self._run = _Run(item_id)
        self._set_result(item_id, self.tr("Reading what the re-run needs…"))

        def work(_state: Any) -> Any:
            from desktop.provenance.reproduce import prepare

            return prepare(item_id, engine, library)

        run.task = self.tasks.run(work, on_done=lambda prepared: self._submit(run, prepared),
                                  on_failed=lambda exc: self._finish(run, str(exc), None, error=True),
                                  on_cancelled=lambda: self._finish(run, self.tr("Cancelled."), None),
                                  name="prepare reproduction")
        self._update_buttons()
        return True

    def _submit(self, run: _Run, prepared: Any) -> None:
        run.task, run.prepared = None, prepared
        if run.cancelling:
            self._finish(run, self.tr("Cancelled."), None)
            return
        try:
            job = prepared.submit(self.engine)  # delivered to compare, not saved to the gallery
        except Exception as exc:  # a ParamError, an unknown generator: said, not raised into Qt
            self._finish(run, self.tr("Cannot re-run %1: %2").replace("%1", prepared.label).replace("%2", str(exc)),
                         None, error=True)
            return
        run.job_id = job.id
        self._set_result(run.item_id, self.tr("Re-running %1…").replace("%1", prepared.label))
        self._update_buttons()

    @Slot(str, object)
    def _on_job_finished(self, job_id: str, outputs: Any) -> None:
        run = self._run
        if run is None or run.job_id != job_id:
            return
        engine, prepared, outputs = self.engine, run.prepared, list(outputs or [])
        job = engine.job(job_id)
        self._set_result(run.item_id, self.tr("Comparing with the original…"))

        def work(_state: Any) -> Any:
            from desktop.provenance.reproduce import compare

            return compare(prepared, job, outputs, engine)

        def compared(report: Any) -> None:
            if run.cancelling:
                self._finish(run, self.tr("Cancelled."), None)
            else:
                self._finish(run, report.summary(), report.identical)

        run.task = self.tasks.run(work, on_done=compared,
                                  on_failed=lambda exc: self._finish(run, str(exc), None, error=True),
                                  on_cancelled=lambda: self._finish(run, self.tr("Cancelled."), None),
                                  name="compare reproduction")

    @Slot(str, str)
    def _on_job_failed(self, job_id: str, message: str) -> None:
        run = self._run
        if run is not None and run.job_id == job_id:
            self._finish(run, self.tr("The re-run failed: %1").replace("%1", message), None, error=True)

    @Slot(str, object)
    def _on_job_cancelled(self, job_id: str, _outputs: Any) -> None:
        run = self._run
        if run is not None and run.job_id == job_id:
            self._finish(run, self.tr("Cancelled."), None)

    @Slot()
    def cancel_reproduce(self) -> None:
        """Stop the reproduction under way: its preparing or comparing task, or its job."""
        run = self._run
        if run is None:
            return
        run.cancelling = True
        if run.task is not None:
            run.task.cancel()
        elif run.job_id is None or self.engine is None or not self.engine.cancel(run.job_id):
            run.cancelling = False  # the job had just ended: its comparison comes next
            return
        if self._run is run:  # a queued job ends cancelled at once (it already said so)
            self._set_result(run.item_id, self.tr("Cancelling…"))
            self._update_buttons()

    def _finish(self, run: _Run, text: str, identical: bool | None, *, error: bool = False) -> None:
        if self._run is not run:
            return
        self._run = None
        if run.cancelling and identical is None and not error:
            text = self.tr("Cancelled.")
        self._set_result(run.item_id, text, error=error)
        self._update_buttons()
        self.reproduced.emit(run.item_id, text, identical, error)

    def _set_result(self, item_id: int, text: str, *, error: bool = False) -> None:
        self._results[item_id] = (text, error)
        if item_id == self.item_id:
            self._show_result()

    def _show_result(self) -> None:
        text, error = self._results.get(self.item_id, ("", False)) if self.item_id is not None else ("", False)
        self.result.setText(text)
        self.result.setVisible(bool(text))
        mark_error(self.result, error)

    def result_text(self) -> str:
        """What the reproduce line shows for the item on show ("" when nothing)."""
        return self.result.text()

    def _update_buttons(self) -> None:
        running = self._run is not None
        self.reproduce_button.setEnabled(self.engine is not None and self.item_id is not None and not running)
        mine = running and self._run is not None and self._run.item_id == self.item_id
        self.cancel_button.setVisible(mine)
        self.cancel_button.setEnabled(mine and not (self._run is not None and self._run.cancelling))

    def shutdown(self) -> None:
        """Cancel the reproduction under way and drop the checks (the gallery calls it when closing)."""
        if self._run is not None and self._run.job_id is not None and self.engine is not None:
            self.engine.cancel(self._run.job_id)
        self._run = None
        self.tasks.shutdown()
