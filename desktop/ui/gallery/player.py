"""``AudioPlayer``: plays an audio file from the gallery through QtMultimedia, loaded only when first used.

Where QtMultimedia cannot load (PySide6-Addons missing, no audio library on Linux…) :meth:`AudioPlayer.play`
returns False and :attr:`AudioPlayer.unavailable_reason` is the one line the audio panels show too
(:func:`desktop.api.widgets.playback_unavailable_reason`), naming what to install.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal

from desktop.api.widgets import playback_unavailable_reason

log = logging.getLogger(__name__)

__all__ = ["AudioPlayer"]


class AudioPlayer(QObject):
    """One clip at a time. ``playing_changed(path or "")``; ``error(message)``."""

    playing_changed = Signal(str)
    error = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._player: Any = None
        self._output: Any = None
        self._tried = False
        self.unavailable_reason: str | None = None
        self.current: Path | None = None

    def available(self) -> bool:
        """Whether QtMultimedia could be loaded (tries once)."""
        if not self._tried:
            self._tried = True
            self.unavailable_reason = playback_unavailable_reason()
            if self.unavailable_reason is not None:
                return False
            try:
                from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

                self._player = QMediaPlayer(self)
                self._output = QAudioOutput(self)
                self._player.setAudioOutput(self._output)
                self._player.errorOccurred.connect(self._on_error)
                self._player.playbackStateChanged.connect(self._on_state)
            except Exception:  # a broken backend
                log.warning("gallery playback unavailable", exc_info=True)
                self._player = None
                self.unavailable_reason = ("Playback is unavailable: the audio output could not start "
                                           "(the log has the details).")
        return self._player is not None

    def play(self, path: Path) -> bool:
        """Play ``path`` (stopping what plays; playing the same file again stops it). False when unavailable."""
        if not self.available():
            return False
        if self.current == path and self.is_playing():
            self.stop()
            return True
        self._player.stop()
        self.current = path
        self._player.setSource(QUrl.fromLocalFile(str(path)))
        self._player.play()
        self.playing_changed.emit(str(path))
        return True

    def is_playing(self) -> bool:
        if self._player is None:
            return False
        from PySide6.QtMultimedia import QMediaPlayer

        return self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl())
        if self.current is not None:
            self.current = None
            self.playing_changed.emit("")

    def _on_state(self, _state: Any) -> None:
        if not self.is_playing() and self.current is not None and self._player.mediaStatus().name == "EndOfMedia":
            self.current = None
            self.playing_changed.emit("")

    def _on_error(self, _error: Any, message: str) -> None:
        if message:
            self.error.emit(message)
