"""The audio generators' panel (speech and music): settings, a waveform with a playhead, playback, the session's
clips, save as WAV or FLAC, and "reuse parameters" from a dropped audio file.

One class serves both generators: the settings are the host's :class:`~desktop.api.widgets.ParamsForm` for the
params dataclass (a text editor for the prompt, spin boxes for numbers, a list for choices such as the sample rate).
The panel talks to the window only through :class:`desktop.api.PanelHost` and follows the jobs it submitted with a
:class:`~desktop.api.widgets.JobFollower`; the last submitted params are kept in ``host.storage`` under
:data:`PARAMS_KEY`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.api import (
    AudioOutput,
    PanelHost,
    ParamError,
    StudioloError,
    atomic_write_bytes,
    from_json,
    prompt_field,
    schema,
    to_json,
)
from desktop.api.widgets import FileDropMixin, JobFollower, ParamsForm
from plugins.audio import metadata as audio_metadata
from plugins.audio.params import MusicParams, SpeechParams
from plugins.audio.player import PAUSED, PLAYING, ClipPlayer
from plugins.audio.waveform import WaveformView

log = logging.getLogger(__name__)

__all__ = ["AudioPanel", "Clip", "PARAMS_KEY", "create_panel"]

PARAMS_KEY = "last_params"
"""The ``host.storage`` key holding the params of the last job this panel submitted (as JSON)."""
DEFAULT_IDS = {SpeechParams: "audio.speech", MusicParams: "audio.music"}

ReuseFromFile = Callable[[Path], "object | None"]


def _mark_error(label: QLabel, error: bool) -> None:
    """Draw ``label`` in the host theme's error colour, or not: the theme styles widgets whose ``error`` property is
    true (desktop/ui/theme.py), legible in light and dark."""
    label.setProperty("error", error)
    label.style().unpolish(label)
    label.style().polish(label)


@dataclass
class Clip:
    """One clip of this session: the audio, its label in the list, and the metadata a saved file embeds."""

    output: AudioOutput
    label: str
    partial: bool
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Job:
    params: Any
    model: str | None
    previews: list[AudioOutput] = field(default_factory=list)


class AudioPanel(FileDropMixin, QWidget):
    """The panel of an audio generator whose params are ``params_type`` (:class:`SpeechParams`,
    :class:`MusicParams` or a similar dataclass). ``generate()``/``cancel()`` are what Ctrl+Enter and Esc call.

    ``reuse_from_file`` (optional) reads what made a dropped file; by default :func:`metadata.read_reuse`.
    """

    def __init__(self, host: PanelHost, params_type: type = SpeechParams, *,
                 reuse_from_file: ReuseFromFile | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("audio_panel")
        self.host = host
        self.params_type = params_type
        self._reuse_from_file = reuse_from_file
        self._fields = {f.name: f for f in schema(params_type)}
        self._prompt_name = prompt_field(params_type)
        self._jobs: dict[str, _Job] = {}  # what this panel knows of its jobs that have not ended
        self._live_job: str | None = None  # the job whose previews the waveform shows
        self._clips: list[Clip] = []
        self.player = ClipPlayer(host.storage.directory, self)
        self.follower = JobFollower(host, self)
        """Follows the jobs this panel submitted."""
        self._build()
        self.setAcceptDrops(True)
        for event in ("queued", "started", "progressed", "previewed", "finished", "failed", "cancelled"):
            getattr(self.follower, event).connect(getattr(self, f"_on_{event}"))
        self.follower.running_changed.connect(self.cancel_button.setEnabled)
        host.params_applied.connect(self.apply_params)  # type: ignore[attr-defined]
        self._restore()

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        tr = self.tr
        self.form = ParamsForm(self.params_type, self)
        self.form.setObjectName("settings")
        self.editors: dict[str, QWidget] = {name: self.form.field_widget(name) for name in self.form.field_names()}
        """Each field's editor, by field name."""
        rate = self.editors.get("sample_rate")
        if isinstance(rate, QComboBox):
            for index in range(rate.count()):
                choice = rate.itemData(index)
                rate.setItemText(index, tr("Model's own") if choice == 0 else f"{choice} Hz")
        settings = QWidget(self)
        left = QVBoxLayout(settings)
        left.addWidget(self.form, 1)
        self.generate_button = self._button(tr("Generate"), "generate", tr("Generate (Ctrl+Enter)"))
        self.cancel_button = self._button(tr("Cancel"), "cancel", tr("Cancel (Esc)"))
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("progress")
        self.progress.setAccessibleName(tr("Progress"))
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        left.addLayout(buttons)
        self.status = QLabel(self)
        self.status.setObjectName("status")
        self.status.setAccessibleName(tr("Status"))
        self.status.setWordWrap(True)
        left.addWidget(self.status)
        # the right column: waveform, transport, clips
        self.waveform = WaveformView(self)
        self.play_button = self._button(tr("Play"), "play", tr("Play or pause the clip"))
        self.stop_button = self._button(tr("Stop"), "stop", tr("Stop and go back to the start"))
        self.time_label = QLabel("0:00.0 / 0:00.0", self)
        self.time_label.setObjectName("time")
        self.save_button = self._button(tr("Save as…"), "save", tr("Save the selected clip as WAV or FLAC"))
        transport = QHBoxLayout()
        for widget in (self.play_button, self.stop_button, self.time_label):
            transport.addWidget(widget)
        transport.addStretch(1)
        transport.addWidget(self.save_button)
        self.playback_note = QLabel(self)
        self.playback_note.setObjectName("playback_note")
        self.playback_note.setWordWrap(True)
        if not self.player.available:
            self.playback_note.setText(self.player.unavailable_reason or "")
        self.playback_note.setVisible(not self.player.available)
        self.clip_list = QListWidget(self)
        self.clip_list.setObjectName("clips")
        self.clip_list.setAccessibleName(tr("Clips"))
        right_column = QWidget(self)
        right = QVBoxLayout(right_column)
        right.addWidget(self.waveform, 2)
        right.addLayout(transport)
        right.addWidget(self.playback_note)
        right.addWidget(QLabel(tr("Clips of this session"), self))
        right.addWidget(self.clip_list, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(settings)
        splitter.addWidget(right_column)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        # wiring
        self.generate_button.clicked.connect(self._on_generate_clicked)
        self.cancel_button.clicked.connect(self.cancel)
        self.play_button.clicked.connect(self.player.toggle)
        self.stop_button.clicked.connect(self.player.stop)
        self.save_button.clicked.connect(self._save_dialog)
        self.clip_list.currentRowChanged.connect(self._show_clip)
        self.waveform.seek_requested.connect(self.seek)
        self.player.position_changed.connect(self._on_position)
        self.player.state_changed.connect(self._on_player_state)
        self.player.error.connect(self._show_error)
        self._update_transport()

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setAccessibleName(text.rstrip("…"))
        button.setToolTip(tip)
        return button

    # -- params ----------------------------------------------------------------------------------------------

    def params(self) -> Any:
        """The params the settings hold, validated: raises ``ParamError`` (the invalid fields are marked)."""
        return self.form.params()

    @Slot(object)
    def apply_params(self, params: object) -> bool:
        """Show these params in the widgets (reuse parameters): params of this panel's type, their JSON form, or
        a dataclass whose fields all belong to this type. Anything else is refused with a message (False)."""
        try:
            self.form.set_params(self._coerce(params))
        except (StudioloError, TypeError, ValueError) as exc:
            self._show_error(self.tr("These parameters cannot be used here: %1").replace("%1", str(exc)))
            return False
        return True

    def _coerce(self, params: object) -> Any:
        if isinstance(params, self.params_type):
            return params
        if isinstance(params, Mapping):
            return from_json(self.params_type, params)
        if is_dataclass(params) and not isinstance(params, type):
            names = {f.name for f in fields(params)}
            if names <= set(self._fields):
                return from_json(self.params_type, to_json(params))
            raise TypeError(self.tr("they belong to another generator (%1)").replace("%1", type(params).__name__))
        raise TypeError(f"not {self.params_type.__name__}: {type(params).__name__}")

    # -- actions ---------------------------------------------------------------------------------------------

    @Slot()
    def _on_generate_clicked(self) -> None:
        self.generate()

    def generate(self) -> str | None:
        """Validate the widgets' params and submit them; return the job id, or None (the problem is shown)."""
        try:
            params = self.params()
            model = self.host.current_model()
            job_id = self.follower.submit(params)
        except ParamError as exc:
            widget = self.editors.get(exc.field)
            label = widget.accessibleName() if widget is not None else exc.field
            self._show_error(f"{label}: {exc.allowed}." + (f"\n{exc.hint}" if exc.hint else ""))
            if widget is not None:
                widget.setFocus(Qt.FocusReason.OtherFocusReason)
            return None
        except (StudioloError, OSError) as exc:
            self._show_error(str(exc))
            return None
        self._jobs[job_id] = _Job(params, model)
        try:
            self.host.storage.set(PARAMS_KEY, to_json(params))
        except (OSError, TypeError, ValueError):
            log.warning("could not keep the audio panel's params", exc_info=True)
        self._show_status(self.tr("Queued…"))
        self.progress.setRange(0, 0)
        return job_id

    @Slot()
    def cancel(self) -> None:
        """Cancel this panel's running and queued jobs (Esc)."""
        if self.follower.is_running():
            self.follower.cancel()
            self._show_status(self.tr("Cancelling…"))

    @Slot(float)
    def seek(self, seconds: float) -> None:
        """Move the playhead (and the player) to ``seconds``."""
        self.waveform.set_position(seconds)
        self.player.seek(seconds)
        self._update_time(seconds)

    # -- clips -----------------------------------------------------------------------------------------------

    def clips(self) -> list[Clip]:
        """This session's clips, oldest first (the list's order)."""
        return list(self._clips)

    def select_clip(self, index: int) -> None:
        """Show clip ``index`` in the waveform and make it the one to play."""
        self.clip_list.setCurrentRow(index)

    def save_clip(self, index: int, path: Path) -> Path:
        """Save clip ``index`` to ``path`` as WAV or FLAC (by its suffix; FLAC when it has neither) with its
        metadata embedded. Returns the path written. Raises ``IndexError``, ``OSError`` or ``ValueError``."""
        clip = self._clips[index]
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".wav", ".flac"):
            path, suffix = path.with_name(path.name + ".flac"), ".flac"
        encoded = audio_metadata.encode(clip.output, clip.metadata, suffix[1:])
        atomic_write_bytes(path, encoded.data)
        self._show_status(self.tr("Saved %1.").replace("%1", path.name))
        return path

    @Slot()
    def _save_dialog(self) -> None:  # never called by tests: opens a modal dialog
        index = self.clip_list.currentRow()
        if not 0 <= index < len(self._clips):
            self._show_error(self.tr("Choose a clip to save."))
            return
        name, _ = QFileDialog.getSaveFileName(self, self.tr("Save clip"), f"clip-{index + 1}.flac",
                                              self.tr("FLAC (*.flac);;WAV (*.wav)"))
        if name:
            try:
                self.save_clip(index, Path(name))
            except (OSError, ValueError) as exc:
                self._show_error(self.tr("Could not save the clip: %1").replace("%1", str(exc)))

    def _add_clip(self, output: AudioOutput, job_id: str, job: _Job | None, partial: bool) -> Clip:
        number = len(self._clips) + 1
        prompt = getattr(job.params, self._prompt_name, "") if job is not None and self._prompt_name else ""
        title = " ".join(str(prompt).split())
        title = (title[:40] + "…") if len(title) > 41 else (title or self.tr("(no text)"))
        label = f"{number}. {title} — {output.duration:.1f} s"
        if partial:
            label = self.tr("Partial: %1").replace("%1", label)
        clip = Clip(output, label, partial, self._metadata(output, job_id, job, partial))
        self._clips.append(clip)
        item = QListWidgetItem(label)
        item.setToolTip(label)
        self.clip_list.addItem(item)
        return clip

    def _metadata(self, output: AudioOutput, job_id: str, job: _Job | None, partial: bool) -> dict[str, Any]:
        """What a saved clip embeds: the host's metadata layout, as far as the panel knows it."""
        generator = getattr(self.host, "generator", None)
        params = to_json(job.params) if job is not None else {}
        seed = output.metadata.get("seed") if isinstance(output.metadata, dict) else None
        return {
            "generator": getattr(generator, "id", None) or DEFAULT_IDS.get(self.params_type, "audio"),
            "generator_version": getattr(generator, "version", None),
            "kind": "audio",
            "model": job.model if job is not None else None,
            "params": params,
            "prompt": params.get(self._prompt_name) if self._prompt_name else None,
            "seed": seed,
            "job_id": job_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "partial": partial,
            "output": dict(output.metadata) if isinstance(output.metadata, dict) else {},
        }

    @Slot(int)
    def _show_clip(self, row: int) -> None:
        if not 0 <= row < len(self._clips):
            return
        self._live_job = None
        clip = self._clips[row]
        self.waveform.set_clip(clip.output.samples, clip.output.sample_rate)
        self.player.load(clip.output.samples, clip.output.sample_rate)
        self._update_time(0.0)
        self._update_transport()

    # -- files -----------------------------------------------------------------------------------------------

    def open_file(self, path: Path) -> bool:
        """A file dropped or opened: reuse what made it (its params, and through the host its seed and model) if
        it holds some; else say clearly why not. ``reuse_from_file`` may return params, or an object with
        ``params``, ``seed`` and ``model`` (a :class:`~plugins.audio.metadata.Reuse`)."""
        reader = self._reuse_from_file or audio_metadata.read_reuse
        try:
            found = reader(Path(path))
        except Exception:  # a broken reader must not break the drop
            log.exception("reading params from %s failed", path)
            found = None
        if found is None:
            self._tell(self.tr("%1 holds no Studiolo parameters: it is damaged, not an audio file, or was not made "
                               "by Studiolo.").replace("%1", Path(path).name), error=True)
            return False
        params = getattr(found, "params", found)
        try:
            params = self._coerce(params)
        except (StudioloError, TypeError, ValueError) as exc:
            self._tell(self.tr("These parameters cannot be used here: %1").replace("%1", str(exc)), error=True)
            return False
        self.host.reuse(params, seed=getattr(found, "seed", None), model=getattr(found, "model", None))
        self._tell(self.tr("Reusing what made %1 (its seed and model too).").replace("%1", Path(path).name))
        return True

    def _tell(self, text: str, *, error: bool = False) -> None:
        (self._show_error if error else self._show_status)(text)
        try:
            self.host.show_message(text, error=error)
        except NotImplementedError:
            pass


    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        self.player.close()
        super().closeEvent(event)

    # -- job signals (this panel's jobs only: self.follower filters them) ------------------------------------

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        self._show_status(self.tr("Queued…"))

    @Slot(str)
    def _on_started(self, job_id: str) -> None:
        self.progress.setRange(0, 0)
        self._show_status(self.tr("Loading the model…"))

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self._show_status(message or self.tr("Generating…"))

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        job = self._jobs.get(job_id)
        if job is None or not isinstance(preview, AudioOutput):
            return
        job.previews.append(preview)
        if self._live_job != job_id:
            self._live_job = job_id
            self.player.load(None)
            self.clip_list.setCurrentRow(-1)
            self.waveform.set_clip(preview.samples, preview.sample_rate)
        else:
            self.waveform.append(preview.samples, preview.sample_rate)
        self._update_transport()

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: object) -> None:
        job = self._end(job_id)
        if job is None:
            return
        added = [self._add_clip(o, job_id, job, o.partial) for o in _audio(outputs)]
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        if added:
            self.select_clip(len(self._clips) - len(added))
        seed = added[0].metadata.get("seed") if added else None
        text = self.tr("Done: %1 clip(s).").replace("%1", str(len(added)))
        self._show_status(text + (" " + self.tr("Seed %1.").replace("%1", str(seed)) if seed is not None else ""))

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        if self._end(job_id) is None:
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._show_error(message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: object) -> None:
        job = self._end(job_id)
        if job is None:
            return
        outputs = _audio(partial)
        if not outputs and job.previews:  # no partial result handed over: keep what was previewed
            joined = _join(job.previews)
            outputs = [joined] if joined is not None else []
        added = [self._add_clip(o, job_id, job, True) for o in outputs]
        if added:
            self.select_clip(len(self._clips) - len(added))
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._show_status(self.tr("Cancelled.") + (self.tr(" The partial clip was kept.") if added else ""))

    def _end(self, job_id: str) -> _Job | None:
        if self._live_job == job_id:
            self._live_job = None
        return self._jobs.pop(job_id, None)

    # -- player ----------------------------------------------------------------------------------------------

    @Slot(float)
    def _on_position(self, seconds: float) -> None:
        if self._live_job is None:
            self.waveform.set_position(seconds)
            self._update_time(seconds)

    @Slot(str)
    def _on_player_state(self, state: str) -> None:
        self.play_button.setText(self.tr("Pause") if state == PLAYING else self.tr("Play"))
        self.play_button.setAccessibleName(self.play_button.text())
        if state not in (PLAYING, PAUSED):
            self.waveform.set_position(self.player.position())

    def _update_transport(self) -> None:
        can_play = self.player.available and self.player.has_clip()
        self.play_button.setEnabled(can_play)
        self.stop_button.setEnabled(can_play)
        self.save_button.setEnabled(0 <= self.clip_list.currentRow() < len(self._clips))

    def _update_time(self, seconds: float) -> None:
        self.time_label.setText(f"{_clock(seconds)} / {_clock(self.waveform.duration())}")

    # -- status and storage ------------------------------------------------------------------------------------

    def _show_status(self, text: str) -> None:
        _mark_error(self.status, False)
        self.status.setText(text)

    @Slot(str)
    def _show_error(self, text: str) -> None:
        _mark_error(self.status, True)
        self.status.setText(text)

    def panel_state(self) -> dict[str, Any] | None:
        """The settings as they are now, as params JSON: the window keeps it when it closes (edits not used in a
        job yet included) and gives it to :meth:`restore_panel_state` on the next start. None while one is
        invalid."""
        if not self.form.is_valid():
            return None
        return to_json(self.form.params())

    def restore_panel_state(self, state: Mapping[str, Any]) -> None:
        """Show the settings :meth:`panel_state` gave (those another version kept and no longer fit: left out)."""
        self._show_params_data(state)

    def _restore(self) -> None:
        """Show the last submitted params (kept in storage), or the defaults."""
        self._show_params_data(self.host.storage.get(PARAMS_KEY))

    def _show_params_data(self, data: object) -> None:
        """Show params from their JSON form, or the defaults when there is none that fits."""
        params = self.params_type()
        if isinstance(data, Mapping):
            try:
                params = from_json(self.params_type, dict(data))
            except ParamError as exc:  # kept by another version: start from the defaults
                log.info("not restoring the audio panel's params: %s", exc)
        self.apply_params(params)
        self._show_status("")


def _audio(outputs: object) -> list[AudioOutput]:
    try:
        return [o for o in (outputs or ()) if isinstance(o, AudioOutput)]  # type: ignore[union-attr]
    except TypeError:
        return []


def _join(chunks: list[AudioOutput]) -> AudioOutput | None:
    """Preview chunks joined into one partial clip (the chunks of the first chunk's rate and shape)."""
    first = chunks[0]
    shape = np.asarray(first.samples).shape[1:]
    same = [np.asarray(c.samples, np.float32) for c in chunks
            if c.sample_rate == first.sample_rate and np.asarray(c.samples).shape[1:] == shape]
    if not same:
        return None
    return AudioOutput(samples=np.concatenate(same), sample_rate=first.sample_rate, partial=True)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def create_panel(host: PanelHost, params_type: type = SpeechParams,
                 reuse_from_file: ReuseFromFile | None = None) -> AudioPanel:
    """An audio generator's panel (what ``Generator.create_panel`` returns): ``params_type`` is
    :class:`SpeechParams` or :class:`MusicParams`."""
    return AudioPanel(host, params_type, reuse_from_file=reuse_from_file)
