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
    assert state["gallery_player"] is False  # the gallery opens audio in the system's player instead
