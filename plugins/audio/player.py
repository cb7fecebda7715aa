"""``ClipPlayer``: plays one clip through QtMultimedia (QMediaPlayer + QAudioOutput).

The clip is written as a plain WAV file into a folder the panel owns (``host.storage.directory``) and played
from there. QtMultimedia is imported here, guarded: where it cannot load the player says why through
:attr:`ClipPlayer.unavailable_reason` — the host's one line naming what to install
(``desktop.api.widgets.playback_unavailable_reason``: PySide6-Addons, the ``audio`` extra, or a system library such as
libpulse on Linux) — and every method is a no-op, so the panel still generates, shows and saves clips without sound.
"""

from __future__ import annotations

import itertools
import logging
import wave
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QUrl, Signal, Slot

from desktop.api.widgets import playback_unavailable_reason

log = logging.getLogger(__name__)

__all__ = ["ClipPlayer", "STOPPED", "PLAYING", "PAUSED", "write_wav"]

STOPPED, PLAYING, PAUSED = "stopped", "playing", "paused"

BACKEND_FAILED = "Playback is unavailable: the audio output could not start (the log has the details)."

try:
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
except Exception:  # ImportError, or a missing shared library: playback_unavailable_reason says what to install
    QAudioOutput = QMediaPlayer = None  # type: ignore[assignment,misc]

_counter = itertools.count(1)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples in [-1, 1] as a plain 16-bit PCM WAV (no metadata) for playback."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    pcm = np.round(np.clip(np.nan_to_num(data), -1.0, 1.0) * 32767.0).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return path


class ClipPlayer(QObject):
    """Play, pause, stop and seek one clip at a time.

    Signals: ``position_changed(seconds: float)``, ``state_changed(state: str)`` (:data:`PLAYING`,
    :data:`PAUSED` or :data:`STOPPED`), ``error(message: str)``.
    """

    position_changed = Signal(float)
    state_changed = Signal(str)
    error = Signal(str)

    def __init__(self, directory: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._directory = directory
        self._file: Path | None = None
        self._player: Any = None
        self._output: Any = None
        self.unavailable_reason: str | None = None
        reason = playback_unavailable_reason()
        if reason is not None or QMediaPlayer is None:
            self.unavailable_reason = reason or BACKEND_FAILED
            return
        try:
            self._player = QMediaPlayer(self)
            self._output = QAudioOutput(self)
            self._player.setAudioOutput(self._output)
        except Exception:  # a broken multimedia backend must not break the panel
            log.warning("the audio output could not start", exc_info=True)
            self._player = None
            self.unavailable_reason = BACKEND_FAILED
            return
        self._player.positionChanged.connect(self._on_position)
        self._player.playbackStateChanged.connect(self._on_state)
        self._player.errorOccurred.connect(self._on_error)

    @property
    def available(self) -> bool:
        return self._player is not None

    @property
    def media_player(self) -> Any:
        """The underlying ``QMediaPlayer`` (None when playback is unavailable)."""
        return self._player

    def state(self) -> str:
        if self._player is None:
            return STOPPED
        return _STATES.get(self._player.playbackState(), STOPPED)

    def position(self) -> float:
        """Seconds from the start of the clip."""
        return self._player.position() / 1000.0 if self._player is not None else 0.0

    def load(self, samples: np.ndarray | None, sample_rate: int = 1) -> bool:
        """Make this clip the one to play (stopping the last one); None unloads. False when it cannot be."""
        if self._player is None:
            return False
        self._player.stop()
        self._player.setSource(QUrl())
        self._remove_file()
        if samples is None or len(samples) == 0:
            return False
        try:
            self._file = write_wav(self._directory / f"playback-{next(_counter)}.wav", samples, sample_rate)
        except (OSError, ValueError, wave.Error) as exc:
            self.error.emit(f"Cannot prepare the clip for playback: {exc}")
            return False
        self._player.setSource(QUrl.fromLocalFile(str(self._file)))
        return True

    def has_clip(self) -> bool:
        return self._file is not None

    @Slot()
    def play(self) -> None:
        if self._player is not None and self._file is not None:
            self._player.play()

    @Slot()
    def pause(self) -> None:
        if self._player is not None:
            self._player.pause()

    @Slot()
    def toggle(self) -> None:
        """Play, or pause when playing."""
        if self.state() == PLAYING:
            self.pause()
        else:
            self.play()

    @Slot()
    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()

    @Slot(float)
    def seek(self, seconds: float) -> None:
        """Move to ``seconds`` from the start."""
        if self._player is not None:
            self._player.setPosition(max(0, int(round(seconds * 1000))))

    def close(self) -> None:
        """Stop and delete the temporary file."""
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl())
        self._remove_file()

    def _remove_file(self) -> None:
        if self._file is not None:
            try:
                self._file.unlink(missing_ok=True)
            except OSError:  # still open elsewhere (Windows): left for the next start
                log.debug("could not remove %s", self._file, exc_info=True)
            self._file = None

    def _on_position(self, ms: int) -> None:
        self.position_changed.emit(ms / 1000.0)

    def _on_state(self, state: Any) -> None:
        self.state_changed.emit(_STATES.get(state, STOPPED))

    def _on_error(self, _error: Any, message: str) -> None:
        if message:
            self.error.emit(message)


_STATES: dict[Any, str] = {} if QMediaPlayer is None else {
    QMediaPlayer.PlaybackState.PlayingState: PLAYING,
    QMediaPlayer.PlaybackState.PausedState: PAUSED,
    QMediaPlayer.PlaybackState.StoppedState: STOPPED,
}
