"""Whether audio can play in the app, and — where it cannot — one line that says what to install.

Playback goes through QtMultimedia, which needs PySide6-Addons and, on Linux, the system's audio client library
(libpulse). The gallery and the audio panels ask :func:`playback_unavailable_reason` and show its line instead of an
``ImportError`` text.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

__all__ = ["playback_unavailable_reason", "explain_playback_failure"]

NEEDS_ADDONS = ("Playback needs PySide6-Addons: pip install 'studiolo[audio]'. "
                "Generating and saving clips work without it.")

# system libraries QtMultimedia loads on Linux -> (what they are, the Debian/Ubuntu package)
_SYSTEM_LIBRARIES = {
    "libpulse": ("the PulseAudio client library", "libpulse0"),
    "libasound": ("the ALSA library", "libasound2"),
    "libgstreamer": ("GStreamer", "libgstreamer1.0-0"),
}

_checked = False
_reason: str | None = None


def explain_playback_failure(exc: BaseException) -> str:
    """One line for the user from the exception importing QtMultimedia raised: the package to install."""
    text = str(exc)
    if isinstance(exc, ModuleNotFoundError):  # PySide6 is there (QtCore imported) but not its Addons
        return NEEDS_ADDONS
    found = re.search(r"\b(lib[A-Za-z0-9_+-]+?)(?:-[0-9.]+)?\.so(?:\.[0-9.]+)?\b", text)
    if found:
        library = found.group(1)
        known = next((v for k, v in _SYSTEM_LIBRARIES.items() if library.startswith(k)), None)
        if known is not None:
            what, package = known
            return f"Playback needs {what}: sudo apt-get install {package}"
        return f"Playback needs the system library {library}: install it with your system's package manager."
    return "Playback is unavailable: QtMultimedia could not start (the log has the details)."


def playback_unavailable_reason() -> str | None:
    """None when audio can play in the app, else one line saying what to install (tries QtMultimedia once)."""
    global _checked, _reason
    if not _checked:
        _checked = True
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer  # noqa: F401
        except Exception as exc:  # ImportError, a missing shared library surfacing as OSError, a broken backend
            log.info("playback unavailable: %s: %s", type(exc).__name__, exc)
            _reason = explain_playback_failure(exc)
    return _reason
