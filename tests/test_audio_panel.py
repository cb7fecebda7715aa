"""The audio generators' panel (plugins/audio/panel.py), driven as a person would, offscreen: settings for speech
and music, live previews on the waveform, clips, playback through QtMultimedia, save and reuse parameters."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QComboBox, QDoubleSpinBox, QPlainTextEdit, QWidget

from desktop.api import AudioOutput, to_json
from desktop.testing.panel_host import RecordingPanelHost
from plugins.audio import panel as panel_module
from plugins.audio import player as player_module
from plugins.audio.metadata import encode_wav, read_reuse
from plugins.audio.panel import PARAMS_KEY, AudioPanel, create_panel
from plugins.audio.params import MusicParams, SpeechParams
from plugins.audio.player import PLAYING, STOPPED, ClipPlayer
from plugins.audio.waveform import WaveformView, column_peaks

PLUGIN_DIR = Path(panel_module.__file__).parent
RATE = 16000


class FakeHost(RecordingPanelHost):
    """The shared recording host, with the generator the audio panel reads its id and version from."""

    def __init__(self, root: Path, generator_id: str = "audio.speech") -> None:
        super().__init__(root, generator_id=generator_id)
        self.generator = SimpleNamespace(id=generator_id, version="0.3.0")  # type: ignore[assignment]


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path / "panels")


@pytest.fixture
def make_panel(qtbot, host):
    def make(params_type: type = SpeechParams, panel_host: FakeHost | None = None, **kwargs) -> AudioPanel:
        panel = AudioPanel(panel_host or host, params_type, **kwargs)
        qtbot.addWidget(panel)
        panel.resize(1100, 600)
        panel.show()
        qtbot.waitExposed(panel)
        return panel

    return make


@pytest.fixture
def panel(make_panel) -> AudioPanel:
    return make_panel()


def tone(seconds: float, freq: float = 220.0, amplitude: float = 0.8) -> np.ndarray:
    t = np.arange(int(seconds * RATE), dtype=np.float32) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def audio(seconds: float, **kwargs) -> AudioOutput:
    return AudioOutput(samples=tone(seconds), sample_rate=RATE, **kwargs)


def drop(widget: QWidget, path: Path) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)  # Qt delivers a drop only where the drag entered
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return event


def fill(panel: AudioPanel, **values: Any) -> None:
    for name, value in values.items():
        widget = panel.editors[name]
        if isinstance(widget, QPlainTextEdit):
            widget.setPlainText(value)
        elif isinstance(widget, QComboBox):
            widget.setCurrentIndex(widget.findData(value))
        else:
            widget.setValue(value)


# ------------------------------------------------------------------------------------------- settings


def test_the_speech_panel_submits_the_validated_params(qtbot, panel, host):
    assert set(panel.editors) == {"text", "speaking_rate", "noise_scale", "sample_rate"}
    assert isinstance(panel.editors["text"], QPlainTextEdit)
    assert panel.editors["text"].toPlainText() == SpeechParams().text != ""  # a first job runs without typing
    panel.editors["text"].clear()
    qtbot.keyClicks(panel.editors["text"], "Hello there. How are you?")
    fill(panel, speaking_rate=1.5, noise_scale=0.25, sample_rate=22050)
    combo = panel.editors["sample_rate"]
    assert combo.itemText(0) == "Model's own" and combo.count() == 7
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    expected = SpeechParams(text="Hello there. How are you?", speaking_rate=1.5, noise_scale=0.25, sample_rate=22050)
    assert host.submitted == [expected]
    assert host.storage.get(PARAMS_KEY) == to_json(expected)
    assert panel.cancel_button.isEnabled() and panel.status.text() == "Queued…"
    assert panel.generate() == "job-2" and host.submitted[1] == expected


def test_the_music_panel_shows_duration_and_guidance(make_panel, tmp_path):
    music_host = FakeHost(tmp_path / "music", generator_id="audio.music")
    panel = make_panel(MusicParams, panel_host=music_host)
    assert set(panel.editors) == {"prompt", "duration", "guidance_scale", "sample_rate"}
    duration, guidance = panel.editors["duration"], panel.editors["guidance_scale"]
    assert isinstance(duration, QDoubleSpinBox) and (duration.minimum(), duration.maximum()) == (0.5, 60.0)
    assert (guidance.minimum(), guidance.maximum(), guidance.value()) == (0.0, 10.0, 3.0)
    assert duration.toolTip() == "Length in seconds." and duration.accessibleName() == "Duration"
    fill(panel, prompt="calm piano with rain", duration=12.5, guidance_scale=4.5)
    panel.generate()
    assert music_host.submitted == [MusicParams(prompt="calm piano with rain", duration=12.5, guidance_scale=4.5)]


# ------------------------------------------------------------------------------------------ job signals


def test_previews_extend_the_waveform_live_and_the_result_becomes_a_clip(panel, host):
    job = panel.generate()
    host.job_started.emit(job)
    host.job_progressed.emit(job, 1, 3, "Sentence 1 of 3")
    assert (panel.progress.maximum(), panel.progress.value()) == (3, 1)
    assert panel.status.text() == "Sentence 1 of 3"

    host.job_previewed.emit(job, audio(0.5))
    assert panel.waveform.frames() == 8000
    first_peaks = panel.waveform.peaks()[1].copy()
    host.job_previewed.emit("someone-elses-job", audio(3.0))
    assert panel.waveform.frames() == 8000
    host.job_previewed.emit(job, AudioOutput(samples=tone(0.25, amplitude=0.3), sample_rate=RATE))
    assert panel.waveform.frames() == 12000
    assert panel.waveform.duration() == pytest.approx(0.75)
    assert not np.array_equal(panel.waveform.peaks()[1], first_peaks)  # re-binned over the longer clip
    assert panel.clip_list.count() == 0

    final = AudioOutput(samples=tone(1.0, amplitude=0.5), sample_rate=RATE, metadata={"seed": 1234})
    host.job_finished.emit(job, [final])
    assert panel.clip_list.count() == 1 and panel.clips()[0].output is final
    assert panel.clip_list.currentRow() == 0
    assert panel.waveform.frames() == 16000 and panel.waveform.peaks()[1].max() == pytest.approx(0.5, abs=1e-3)
    assert not panel.clips()[0].partial and panel.clip_list.item(0).text().startswith("1. ")
    assert "1234" in panel.status.text() and not panel.cancel_button.isEnabled()
    assert panel.progress.value() == panel.progress.maximum()


def test_a_failure_shows_its_message(panel, host):
    job = panel.generate()
    host.job_failed.emit(job, "The model could not be loaded.")
    assert panel.status.text() == "The model could not be loaded."
    assert panel.status.property("error") is True
    assert not panel.cancel_button.isEnabled() and panel.clip_list.count() == 0


def test_cancel_calls_the_host_and_keeps_a_labelled_partial_clip(qtbot, panel, host):
    panel.cancel()
    assert host.cancelled == []  # nothing running
    job = panel.generate()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert host.cancelled == [job] and panel.status.text() == "Cancelling…"
    partial = audio(0.4, partial=True)
    host.job_cancelled.emit(job, [partial])
    assert panel.clip_list.count() == 1 and panel.clips()[0].partial and panel.clips()[0].output is partial
    assert panel.clip_list.item(0).text().startswith("Partial: ")
    assert panel.status.text().startswith("Cancelled.") and not panel.cancel_button.isEnabled()
    panel.cancel()
    assert host.cancelled == [job]

    # no partial output handed over: the previewed chunks are kept as the partial clip
    job = panel.generate()
    host.job_previewed.emit(job, audio(0.25))
    host.job_previewed.emit(job, audio(0.5))
    panel.cancel()
    host.job_cancelled.emit(job, [])
    assert panel.clip_list.count() == 2 and panel.clips()[1].partial
    assert len(panel.clips()[1].output.samples) == 12000
    assert panel.clip_list.item(1).text().startswith("Partial: ")


# ------------------------------------------------------------------------------------------- waveform


def test_the_waveform_paints_peaks_and_a_playhead(qtbot):
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(400, 120)
    view.show()
    qtbot.waitExposed(view)
    empty = view.grab().toImage()
    view.set_clip(tone(1.0), RATE)
    drawn = view.grab().toImage()
    assert drawn != empty
    colors = {drawn.pixelColor(x, y).name() for x in range(0, 400, 3) for y in range(0, 120, 3)}
    assert QColor(90, 170, 240).name() in colors and len(colors) >= 3  # the wave, the playhead, the background
    assert drawn.pixelColor(200, 20) != empty.pixelColor(200, 20)  # a 0.8 tone reaches y = 60 - 0.8 * 58
    view.set_position(0.5)
    moved = view.grab().toImage()
    assert moved.pixelColor(200, 2) == QColor(240, 90, 70) and drawn.pixelColor(200, 2) != QColor(240, 90, 70)


def test_peaks_are_min_and_max_per_column():
    samples = np.array([0.1, -0.5, 0.9, 0.2, -0.2, 0.3, 0.0, 0.4], np.float32)
    mins, maxs = column_peaks(samples, 4)
    assert mins.tolist() == pytest.approx([-0.5, 0.2, -0.2, 0.0])
    assert maxs.tolist() == pytest.approx([0.1, 0.9, 0.3, 0.4])
    stereo = np.stack([samples, -samples], axis=1)
    mins, maxs = column_peaks(stereo, 2)
    assert mins.tolist() == pytest.approx([-0.9, -0.4]) and maxs.tolist() == pytest.approx([0.9, 0.4])
    assert len(column_peaks(samples, 100)[0]) == 8 and len(column_peaks(samples[:0], 10)[0]) == 0


def test_clicking_and_dragging_on_the_waveform_asks_to_seek(qtbot):
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(400, 100)
    view.set_clip(tone(4.0), RATE)
    with qtbot.waitSignal(view.seek_requested) as blocker:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 50))
    assert blocker.args[0] == pytest.approx(1.0)
    with qtbot.waitSignal(view.seek_requested) as blocker:
        qtbot.mouseMove(view, QPoint(300, 50))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 50))
    assert blocker.args[0] == pytest.approx(3.0)


# ------------------------------------------------------------------------------------------- playback


def test_playback_play_seek_and_stop(qtbot, panel, host):
    # PySide6-Addons comes with the audio extra and the bootstrap (scripts/system_deps.py) installs libpulse0:
    # playback must work here, never be skipped.
    assert panel.player.available, panel.player.unavailable_reason
    player = panel.player
    assert player.available, player.unavailable_reason
    assert not panel.play_button.isEnabled()
    job = panel.generate()
    host.job_finished.emit(job, [audio(3.0)])
    assert panel.play_button.isEnabled() and player.has_clip()
    assert Path(player.media_player.source().toLocalFile()).parent == host.storage.directory

    with qtbot.waitSignal(player.state_changed, timeout=5000, check_params_cb=lambda s: s == PLAYING):
        qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: player.position() > 0.15, timeout=5000)
    qtbot.waitUntil(lambda: panel.waveform.position() > 0.1, timeout=5000)  # the playhead follows
    assert panel.play_button.text() == "Pause"

    before = player.position()
    assert before < 0.9
    x = int(panel.waveform.width() * 2 / 3)  # 2 s into the 3 s clip
    # a jump, not playing on: from below 0.9 s, playing would take over a second to get there
    with qtbot.waitSignal(player.position_changed, timeout=1000, check_params_cb=lambda s: s >= 1.9):
        qtbot.mouseClick(panel.waveform, Qt.MouseButton.LeftButton, pos=QPoint(x, 40))
    assert panel.waveform.position() >= 1.9
    qtbot.waitUntil(lambda: player.position() > 2.1, timeout=5000)  # and it plays on from there

    with qtbot.waitSignal(player.state_changed, timeout=5000, check_params_cb=lambda s: s == STOPPED):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert player.state() == STOPPED and panel.play_button.text() == "Play"


def test_without_qtmultimedia_the_player_says_so_and_the_panel_works(qtbot, monkeypatch, host):
    from desktop.api.playback import explain_playback_failure

    missing = ImportError("libpulse.so.0: cannot open shared object file: No such file or directory")
    monkeypatch.setattr(player_module, "playback_unavailable_reason", lambda: explain_playback_failure(missing))
    player = ClipPlayer(host.storage.directory)
    assert not player.available
    assert player.unavailable_reason == "Playback needs the PulseAudio client library: sudo apt-get install libpulse0"
    assert player.load(tone(0.5), RATE) is False
    player.play(), player.seek(1.0), player.stop()  # no-ops
    panel = AudioPanel(host, SpeechParams)
    qtbot.addWidget(panel)
    assert panel.playback_note.text() == player.unavailable_reason and not panel.playback_note.isHidden()
    job = panel.generate()
    host.job_finished.emit(job, [audio(1.0)])
    assert panel.clip_list.count() == 1 and panel.waveform.frames() == RATE and not panel.play_button.isEnabled()


# ------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_save_clip_embeds_the_params(panel, host, tmp_path, suffix):
    fill(panel, text="Saved speech, " * 500, speaking_rate=0.75)
    params = panel.params()
    job = panel.generate()
    clip = AudioOutput(samples=tone(0.5), sample_rate=RATE, metadata={"seed": 99})
    host.job_finished.emit(job, [clip])
    path = panel.save_clip(0, tmp_path / f"out{suffix}")
    assert path == tmp_path / f"out{suffix}"
    reuse = read_reuse(path)
    assert reuse is not None and reuse.params == params and len(params.text) == 7000
    assert (reuse.generator, reuse.seed, reuse.model) == ("audio.speech", 99, "demo")
    decoded, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE and np.abs(decoded - clip.samples).max() < 1e-3
    assert panel.status.text() == f"Saved out{suffix}."


def test_dropping_a_saved_file_applies_its_params(make_panel, host, tmp_path):
    params = SpeechParams(text="From a file.", speaking_rate=2.0, noise_scale=1.2, sample_rate=48000)
    metadata = {"generator": "audio.speech", "params": to_json(params), "prompt": params.text, "seed": 3,
                "model": "demo"}
    path = tmp_path / "saved.wav"
    path.write_bytes(encode_wav(audio(0.2), metadata).data)
    panel = make_panel()
    assert panel.params() == SpeechParams()
    event = drop(panel, path)
    assert event.isAccepted()
    assert panel.params() == params
    assert host.reused[-1][1:] == (3, "demo") and host.seed == 3  # the seed and model too, through the host
    assert panel.status.text() == "Reusing what made saved.wav (its seed and model too)."


def test_dropping_a_corrupt_or_foreign_file_changes_nothing_and_says_why(make_panel, host, tmp_path):
    panel = make_panel()
    fill(panel, text="keep me", speaking_rate=1.25)
    before = panel.params()
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x10\0\0\0WAVEfmt \xff\xff\xff\xff" + bytes(range(256)))
    drop(panel, corrupt)
    assert panel.params() == before
    assert "broken.wav holds no Studiolo parameters" in panel.status.text() and panel.status.property("error") is True
    assert host.messages[-1][1] is True and "broken.wav" in host.messages[-1][0]

    music = MusicParams(prompt="drums", duration=4.0)
    foreign = tmp_path / "music.wav"
    foreign.write_bytes(encode_wav(audio(0.2), {"generator": "audio.music", "params": to_json(music)}).data)
    drop(panel, foreign)
    assert panel.params() == before
    assert "another generator" in panel.status.text()
    assert "another generator" in host.messages[-1][0] and host.messages[-1][1] is True


def test_a_reader_that_raises_is_a_clear_message(make_panel, tmp_path):
    def broken(path: Path) -> None:
        raise RuntimeError("boom")

    panel = make_panel(reuse_from_file=broken)
    (tmp_path / "x.flac").write_bytes(b"fLaC")
    assert panel.open_file(tmp_path / "x.flac") is False
    assert "holds no Studiolo parameters" in panel.status.text()


# ------------------------------------------------------------------------------------------- params


def test_apply_params_round_trips_through_the_host(panel, host):
    original = SpeechParams(text="Round trip.", speaking_rate=3.5, noise_scale=0.05, sample_rate=44100)
    host.params_applied.emit(original)
    assert panel.params() == original
    assert panel.editors["sample_rate"].currentText() == "44100 Hz"
    panel.apply_params(SpeechParams())
    assert panel.params() == SpeechParams()
    assert panel.apply_params({"text": "from json", "speaking_rate": 0.5, "unknown": 1})
    assert panel.params() == SpeechParams(text="from json", speaking_rate=0.5)
    assert not panel.apply_params("not params")
    assert "cannot be used" in panel.status.text()
    assert not panel.apply_params(MusicParams(prompt="nope"))
    assert panel.params() == SpeechParams(text="from json", speaking_rate=0.5)


def test_the_last_params_are_restored_on_a_new_panel(make_panel, host):
    first = make_panel()
    fill(first, text="remember me", noise_scale=0.9, sample_rate=24000)
    first.generate()
    second = make_panel()
    assert second.params() == host.submitted[0] == SpeechParams(text="remember me", noise_scale=0.9,
                                                                sample_rate=24000)
    host.storage.set(PARAMS_KEY, {"speaking_rate": 100, "text": "x"})  # kept by another version: defaults
    assert make_panel().params() == SpeechParams()


# ------------------------------------------------------------------------------------------- structure


def test_create_panel_serves_both_generators(qtbot, host):
    for params_type in (SpeechParams, MusicParams):
        panel = create_panel(host, params_type)
        qtbot.addWidget(panel)
        assert isinstance(panel, AudioPanel) and panel.params_type is params_type
        assert callable(panel.generate) and callable(panel.cancel)


@pytest.mark.parametrize("module", ["panel.py", "waveform.py", "player.py", "metadata.py"])
def test_the_modules_import_only_the_plugin_api_and_no_generator(module):
    tree = ast.parse((PLUGIN_DIR / module).read_text(encoding="utf-8"))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    for name in names:
        assert not name.startswith("desktop") or name.split(".")[:2] == ["desktop", "api"], name
        assert not name.startswith(("torch", "transformers")), name
        assert name not in ("plugins.audio.speech", "plugins.audio.music"), name
