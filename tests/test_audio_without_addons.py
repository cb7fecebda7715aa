"""Without PySide6-Addons (QtMultimedia; the ``audio`` extra) the audio panel still generates and shows clips, and
says plainly what playback needs. Run in a fresh process where ``PySide6.QtMultimedia`` cannot be imported."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from helpers import run_python

NO_ADDONS = textwrap.dedent("""
    import json, sys
    sys.modules["PySide6.QtMultimedia"] = None  # what a missing PySide6-Addons looks like: ModuleNotFoundError
    from pathlib import Path
    import numpy as np
    from PySide6.QtWidgets import QApplication
    from desktop.api import AudioOutput
    from desktop.testing.panel_host import RecordingPanelHost
    from desktop.ui.gallery.player import AudioPlayer
    from plugins.audio.panel import AudioPanel
    from plugins.audio.params import SpeechParams

    app = QApplication([])
    host = RecordingPanelHost(Path(PANELS), generator_id="audio.speech")
    panel = AudioPanel(host, SpeechParams)
    panel.show()
    job = panel.generate()
    samples = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    host.job_finished.emit(job, [AudioOutput(samples=samples, sample_rate=16000)])
    app.processEvents()
    print(json.dumps({
        "note": panel.playback_note.text(),
        "note_shown": panel.playback_note.isVisible(),
        "submitted": len(host.submitted),
        "clips": panel.clip_list.count(),
        "frames": panel.waveform.frames(),
        "play_enabled": panel.play_button.isEnabled(),
        "save_enabled": panel.save_button.isEnabled(),
        "gallery_player": AudioPlayer().available(),
    }))
""")


def test_without_pyside6_addons_the_audio_panel_generates_and_says_what_playback_needs(tmp_path: Path):
    result = run_python(NO_ADDONS.replace("PANELS", repr(str(tmp_path / "panels"))))
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["note"].startswith("Playback needs PySide6-Addons: pip install 'studiolo[audio]'"), state["note"]
    assert state["note_shown"]
    assert state["submitted"] == 1 and state["clips"] == 1 and state["frames"] == 16000
    assert not state["play_enabled"] and state["save_enabled"]
    assert state["gallery_player"] is False  # the gallery says the same line when Play is pressed


NO_PULSE = NO_ADDONS.replace(
    'sys.modules["PySide6.QtMultimedia"] = None  # what a missing PySide6-Addons looks like: ModuleNotFoundError',
    "class NoPulse:  # what QtMultimedia without the system's libpulse looks like\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'PySide6.QtMultimedia':\n"
    "            raise ImportError('libpulse.so.0: cannot open shared object file: No such file or directory')\n"
    "sys.meta_path.insert(0, NoPulse())").replace(
    '"gallery_player": AudioPlayer().available(),',
    '"gallery_player": AudioPlayer().available(), '
    '"gallery_reason": (lambda p: p.available() or p.unavailable_reason)(AudioPlayer()),')


def test_without_libpulse_the_audio_panel_and_the_gallery_name_the_package_to_install(tmp_path: Path):
    result = run_python(NO_PULSE.replace("PANELS", repr(str(tmp_path / "panels"))))
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    line = "Playback needs the PulseAudio client library: sudo apt-get install libpulse0"
    assert state["note"] == line and state["note_shown"]  # one line, never "ImportError: libpulse.so.0…"
    assert state["gallery_player"] is False and state["gallery_reason"] == line
    assert state["clips"] == 1 and not state["play_enabled"] and state["save_enabled"]
