"""The built-in audio generators (``audio.speech`` with VITS, ``audio.music`` with MusicGen) on tiny random-weight
models built once per session: sentence-by-sentence speech with previews, music of the asked length, seeds (alone
and while another generator draws random numbers), cancel, resampling, bad input and bad model folders, and the way
in through ``run_generator``, the plugin manager and the engine.

The command-line check is :func:`cli_checks` at the bottom, not collected until the ``audio`` entry point is in
pyproject.toml.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch_plugin
from helpers import run_cli, run_python

from desktop.api import (
    AudioOutput,
    InsufficientMemoryError,
    LoadOptions,
    ModelFormatError,
    ModelNotFoundError,
    ParamError,
)
from desktop.testing import run_generator
from plugins.audio.music import PROGRESS_BLOCK, MusicGenGenerator, MusicModel, decode_tokens
from plugins.audio.params import MusicParams, SpeechParams
from plugins.audio.resample import resample, resampled_length
from plugins.audio.sentences import split_sentences
from plugins.audio.speech import SpeechModel, VitsSpeechGenerator

SPEECH = VitsSpeechGenerator()
MUSIC = MusicGenGenerator()
THREE = "The boats went out early. Did they come back at night? Yes, with fish!"
HOP = 320  # the tiny Encodec's samples per frame (16 kHz / 50 frames a second)
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture(scope="module")
def voice(tiny_vits) -> SpeechModel:
    return SPEECH.load(tiny_vits, "cpu", LoadOptions())


@pytest.fixture(scope="module")
def musicgen(tiny_musicgen) -> MusicModel:
    return MUSIC.load(tiny_musicgen, "cpu", LoadOptions())


def speak(handle, seed=1, cancel_after=None, **params):
    return run_generator(SPEECH, {"text": THREE, **params}, handle=handle, seed=seed, cancel_after=cancel_after)


def play(handle, seed=1, cancel_after=None, **params):
    return run_generator(MUSIC, {"prompt": "calm piano with rain", "duration": 1.0, **params}, handle=handle,
                         seed=seed, cancel_after=cancel_after)


def direct_speech(handle, sentence, seed, speaking_rate=1.0, noise_scale=0.667):
    """transformers alone: ``VitsModel`` forward after ``torch.manual_seed``."""
    import torch

    handle.model.speaking_rate, handle.model.noise_scale = speaking_rate, noise_scale
    inputs = handle.tokenizer(sentence, return_tensors="pt")
    torch.manual_seed(seed)
    with torch.no_grad():
        return handle.model(**inputs).waveform[0].numpy()


def direct_music(handle, prompt, seed, max_new_tokens, guidance_scale=3.0):
    """transformers alone: ``generate`` after ``torch.manual_seed``."""
    import torch

    inputs = handle.tokenizer([prompt], return_tensors="pt", padding=True)
    torch.manual_seed(seed)
    with torch.no_grad():
        audio = handle.model.generate(**inputs, max_new_tokens=max_new_tokens, guidance_scale=guidance_scale)
    return audio[0, 0].numpy()


@pytest.fixture
def vits_forwards(voice):
    calls = []
    hook = voice.model.register_forward_hook(lambda *args: calls.append(1))
    yield calls
    hook.remove()


@pytest.fixture
def decoder_steps(musicgen):
    """Counts the MusicGen decoder's forward passes (one per generated token)."""
    calls = []
    hook = musicgen.model.decoder.register_forward_hook(lambda *args: calls.append(1))
    yield calls
    hook.remove()


# ------------------------------------------------------------------------------------------------ speech


def test_speech_is_spoken_sentence_by_sentence_with_a_preview_each(voice, vits_forwards):
    result = speak(voice, seed=4)
    (clip,) = result.outputs
    assert len(result.previews) == 3 and len(vits_forwards) == 3
    assert all(isinstance(p, AudioOutput) and p.sample_rate == 16000 and len(p.samples) > 1000
               for p in result.previews)
    assert [p[:2] for p in result.progress] == [(1, 3), (2, 3), (3, 3)]
    assert len(clip.samples) == sum(len(p.samples) for p in result.previews)
    assert np.array_equal(clip.samples, np.concatenate([p.samples for p in result.previews]))
    assert clip.samples.dtype == np.float32 and np.abs(clip.samples).max() <= 1.0 and not clip.partial
    assert clip.sample_rate == 16000 and clip.metadata == {"sentences": 3, "model_sample_rate": 16000, "seed": 4}
    # each piece is exactly that sentence spoken alone by transformers with the job's seed
    for sentence, preview in zip(split_sentences(THREE), result.previews, strict=True):
        assert np.array_equal(preview.samples, direct_speech(voice, sentence, seed=4))


def test_speech_with_a_seed_is_what_vits_makes_with_that_seed(voice):
    one = speak(voice, seed=7, text="A single short line.").outputs[0].samples
    assert np.array_equal(one, speak(voice, seed=7, text="A single short line.").outputs[0].samples)
    assert np.array_equal(one, direct_speech(voice, "A single short line.", seed=7))
    other = speak(voice, seed=8, text="A single short line.").outputs[0].samples
    assert len(other) != len(one) or not np.array_equal(other, one)


def test_speaking_rate_and_noise_scale_reach_the_model(voice):
    text = "The lamp was warm and the night was long."
    normal = speak(voice, text=text, noise_scale=0.0).outputs[0].samples
    fast = speak(voice, text=text, noise_scale=0.0, speaking_rate=2.0).outputs[0].samples
    assert len(fast) < 0.8 * len(normal)  # durations are rounded up to whole frames: not quite half
    assert np.array_equal(fast, direct_speech(voice, text, seed=1, speaking_rate=2.0, noise_scale=0.0))
    noisy = speak(voice, text=text, noise_scale=1.5).outputs[0].samples
    assert np.array_equal(noisy, direct_speech(voice, text, seed=1, noise_scale=1.5))
    assert len(noisy) != len(normal) or not np.array_equal(noisy, normal)


def test_cancel_after_the_first_sentence_keeps_its_audio(voice, vits_forwards):
    full = speak(voice, seed=2)
    vits_forwards.clear()
    result = speak(voice, seed=2, cancel_after=1)
    assert result.cancelled and result.progress_after_cancel == 0
    assert len(vits_forwards) == 1  # the second sentence was never synthesised
    (partial,) = result.outputs
    assert partial.partial and partial.metadata["sentences"] == 1
    assert np.array_equal(partial.samples, full.previews[0].samples)
    assert np.array_equal(partial.samples, result.previews[0].samples)


def test_speech_resampled_to_another_rate(voice):
    plain = speak(voice, seed=3)
    result = speak(voice, seed=3, sample_rate=24000)
    (clip,) = result.outputs
    assert clip.sample_rate == 24000 and clip.metadata["model_sample_rate"] == 16000
    assert [len(p.samples) for p in result.previews] == [resampled_length(len(p.samples), 16000, 24000)
                                                         for p in plain.previews]
    assert len(clip.samples) == sum(len(p.samples) for p in result.previews)
    assert abs(len(clip.samples) - 1.5 * len(plain.outputs[0].samples)) <= 3
    assert all(p.sample_rate == 24000 for p in result.previews)


def test_resampling_keeps_the_pitch_and_changes_the_length_in_proportion():
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for target in (22050, 44100, 8000):
        out = resample(tone, 16000, target)
        assert out.dtype == np.float32 and len(out) == math.ceil(16000 * target / 16000)
        peak = np.argmax(np.abs(np.fft.rfft(out))) * target / len(out)
        assert abs(peak - 440) <= 2
    assert resample(tone, 16000, 0) is tone and resample(tone, 16000, 16000) is tone
    stereo = resample(np.stack([tone, -tone], axis=1), 16000, 32000)
    assert stereo.shape == (32000, 2) and np.allclose(stereo[:, 0], -stereo[:, 1])


def test_text_is_split_into_sentences_robustly():
    assert split_sentences("Hello there. Mr. Smith lives on St. Mary's road! Pi is 3.14, right? \"Yes.\" OK") == [
        "Hello there.", "Mr. Smith lives on St. Mary's road!", "Pi is 3.14, right?", '"Yes."', "OK"]
    assert split_sentences("J. R. R. Tolkien wrote. 你好。世界！") == ["J. R. R. Tolkien wrote.", "你好。", "世界！"]
    assert split_sentences("Line one\nLine two\n\n...\n  ") == ["Line one", "Line two ..."]
    assert split_sentences("  \n ") == [] and split_sentences("?!") == ["?!"]
    long = split_sentences("word, " * 100, max_chars=50)
    assert all(0 < len(p) <= 50 for p in long) and " ".join(long) == ("word, " * 100).strip()
    assert split_sentences("x" * 120, max_chars=50) == ["x" * 50, "x" * 50, "x" * 20]


def test_text_the_voice_cannot_speak_is_refused_clearly(voice):
    with pytest.raises(ParamError, match="'text'.*there is nothing to say") as info:
        speak(voice, text="  \n ")
    assert "Type the text" in info.value.hint
    with pytest.raises(ParamError, match=r"cannot read any of its characters \(漢 字 ©\)") as info:
        speak(voice, text="漢字 ©")
    assert "voice (model) made for this language" in info.value.hint
    mixed = speak(voice, text="Ünïcode 漢字. Plain words here.")
    assert mixed.warnings == ["This voice cannot read these characters, so they were left out: Ü ï 漢 字. Choose a "
                              "voice for this language, or spell them out."]
    assert mixed.outputs[0].metadata["sentences"] == 2 and len(mixed.outputs[0].samples) > 0
    skipped = speak(voice, text="漢字。 Plain words here.")  # a sentence with nothing readable is left out
    assert skipped.outputs[0].metadata["sentences"] == 1 and len(skipped.previews) == 1


# ------------------------------------------------------------------------------------------------- music


@pytest.mark.parametrize("duration", [1.0, 0.5, 1.3])
def test_music_lasts_the_asked_duration_within_one_frame(musicgen, duration):
    assert musicgen.codebooks == 3 and musicgen.frame_rate == 50  # the delay pattern costs 2 tokens
    result = play(musicgen, duration=duration)
    (clip,) = result.outputs
    assert clip.sample_rate == 16000 and clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert abs(len(clip.samples) - duration * 16000) <= HOP
    frames = round(duration * 50)
    assert {k: v for k, v in clip.metadata.items() if k != "seed"} == {"frames": frames, "model_sample_rate": 16000,
                                                                      "codebooks": 3}
    assert isinstance(clip.metadata["seed"], int)
    tokens = frames + 2  # asked of generate: the last report is the last token
    expected = [(n, tokens) for n in range(PROGRESS_BLOCK, tokens, PROGRESS_BLOCK)] + [(tokens, tokens)]
    assert [p[:2] for p in result.progress] == expected  # a report per block of tokens and one at the end


def test_music_with_a_seed_is_what_musicgen_makes_with_that_seed(musicgen):
    ours = play(musicgen, seed=11).outputs[0].samples
    reference = direct_music(musicgen, "calm piano with rain", seed=11, max_new_tokens=52)
    assert np.abs(reference).max() <= 1.0  # so the clip to [-1, 1] changes nothing: bit-identical
    assert np.array_equal(ours, reference)
    assert not np.array_equal(play(musicgen, seed=12).outputs[0].samples, ours)
    unguided = play(musicgen, seed=11, guidance_scale=1.0).outputs[0].samples
    assert np.array_equal(unguided, direct_music(musicgen, "calm piano with rain", 11, 52, guidance_scale=1.0))
    assert not np.array_equal(unguided, ours)  # guidance 3 ran classifier-free guidance, 1 did not
    assert not np.array_equal(play(musicgen, seed=11, prompt="loud drums").outputs[0].samples, ours)


def test_cancel_mid_music_keeps_the_clip_so_far(musicgen, decoder_steps):
    full = play(musicgen, seed=5, duration=2.0).outputs[0].samples
    decoder_steps.clear()
    result = play(musicgen, seed=5, duration=2.0, cancel_after=2)  # cancelled at the report after 20 tokens
    assert result.cancelled and result.progress_after_cancel == 0 and len(result.progress) == 2
    stopped_at = len(decoder_steps)
    decoder_steps.clear()
    direct_music(musicgen, "calm piano with rain", seed=5, max_new_tokens=20)
    assert stopped_at == len(decoder_steps)  # generation stopped at once: the work of 20 tokens, no more
    (partial,) = result.outputs
    assert partial.partial and partial.metadata["frames"] == 20 - 2
    assert len(partial.samples) == 18 * HOP < len(full)
    # the same notes as the whole clip: identical but for the codec's look-ahead at the cut
    assert np.allclose(partial.samples[:12 * HOP], full[:12 * HOP], atol=1e-5)


def test_a_cancel_between_progress_reports_stops_at_the_next_token():
    import torch

    from plugins.audio.music import _Stopped, _TokenWatch

    cancel, reports = [], []
    watch = _TokenWatch(52, report=reports.append, cancelled=lambda: bool(cancel))
    for length in range(2, 15):  # the start token plus 13 new ones, uncancelled
        assert not watch(torch.zeros(3, length, dtype=torch.long), None).any()
    assert reports == [PROGRESS_BLOCK]
    cancel.append(1)  # the user cancels while token 14 is being made
    with pytest.raises(_Stopped) as stopped:
        watch(torch.ones(3, 15, dtype=torch.long), None)
    assert stopped.value.ids.shape == (3, 15) and reports == [PROGRESS_BLOCK]


def test_decoding_the_generated_tokens_is_what_generate_decodes(musicgen):
    import torch
    from transformers import StoppingCriteriaList

    seen = []

    def keep(input_ids, scores, **kwargs):
        seen.append(input_ids.clone())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    torch.manual_seed(3)
    inputs = musicgen.tokenizer(["x"], return_tensors="pt")
    with torch.no_grad():
        audio = musicgen.model.generate(**inputs, max_new_tokens=12, stopping_criteria=StoppingCriteriaList([keep]))
        assert torch.equal(decode_tokens(musicgen, seen[-1]), audio)
        with pytest.raises(ValueError, match="no complete frame"):
            decode_tokens(musicgen, seen[0])


def test_music_resampled_to_another_rate(musicgen):
    plain = play(musicgen, seed=6).outputs[0]
    clip = play(musicgen, seed=6, sample_rate=44100).outputs[0]
    assert clip.sample_rate == 44100 and clip.metadata["model_sample_rate"] == 16000
    assert len(plain.samples) == 16000 and len(clip.samples) == 44100
    assert np.allclose(clip.samples[::441], plain.samples[::160], atol=0.2)  # the same sound, denser


def test_music_durations_out_of_range_are_refused(musicgen):
    with pytest.raises(ParamError, match="'duration': 0.0 — must be between 0.5 and 60"):
        play(musicgen, duration=0.0)
    with pytest.raises(ParamError, match="'duration': -1.0"):
        play(musicgen, duration=-1.0)
    assert musicgen.max_duration == 2.5
    with pytest.raises(ParamError, match="'duration': 3.0 — this model makes at most 2.5 seconds") as info:
        play(musicgen, duration=3.0)
    assert "shorter clip" in info.value.hint
    assert len(play(musicgen, duration=2.5).outputs[0].samples) == 2.5 * 16000  # the limit itself works


# ------------------------------------------------------------------------------------------- model files


def test_bad_model_folders_are_refused_naming_the_problem(tiny_vits, tiny_musicgen, tmp_path):
    no_tokenizer = tmp_path / "voice-without-tokenizer"
    shutil.copytree(tiny_vits, no_tokenizer)
    for name in ("vocab.json", "tokenizer_config.json", "added_tokens.json"):
        (no_tokenizer / name).unlink()
    with pytest.raises(ModelFormatError, match="voice-without-tokenizer has no tokenizer") as info:
        SPEECH.load(no_tokenizer, "cpu", LoadOptions())
    assert "tokenizer files" in info.value.hint

    corrupt = tmp_path / "corrupt-music"
    shutil.copytree(tiny_musicgen, corrupt)
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ModelFormatError, match=r"corrupt-music/model.safetensors is not a valid safetensors file"):
        MUSIC.load(corrupt, "cpu", LoadOptions())

    music_no_tokenizer = tmp_path / "music-without-tokenizer"
    shutil.copytree(tiny_musicgen, music_no_tokenizer)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (music_no_tokenizer / name).unlink()
    with pytest.raises(ModelFormatError, match="music-without-tokenizer has no tokenizer"):
        MUSIC.load(music_no_tokenizer, "cpu", LoadOptions())

    with pytest.raises(ModelFormatError, match="tiny-vits is a vits model, not a MusicGen model"):
        MUSIC.load(tiny_vits, "cpu", LoadOptions())
    with pytest.raises(ModelFormatError, match="tiny-musicgen is a musicgen model, not a text-to-speech voice"):
        SPEECH.load(tiny_musicgen, "cpu", LoadOptions())
    with pytest.raises(ModelNotFoundError, match="No model at"):
        SPEECH.load(tmp_path / "missing", "cpu", LoadOptions())
    (tmp_path / "voice.safetensors").write_bytes(b"x")
    with pytest.raises(ModelFormatError, match="voice.safetensors is a single file"):
        SPEECH.load(tmp_path / "voice.safetensors", "cpu", LoadOptions())

    pickled = tmp_path / "pickled-voice"
    shutil.copytree(tiny_vits, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match="pytorch_model.bin is a pickle-format weights file"):
        SPEECH.load(pickled, "cpu", LoadOptions())


@pytest.mark.parametrize(("generator", "model_class", "fixture"), [
    (SPEECH, "VitsModel", "tiny_vits"), (MUSIC, "MusicgenForConditionalGeneration", "tiny_musicgen")])
def test_running_out_of_memory_while_loading_is_said_as_such(generator, model_class, fixture, request, monkeypatch):
    import transformers

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(getattr(transformers, model_class), "from_pretrained", out_of_memory)
    folder = request.getfixturevalue(fixture)
    with pytest.raises(InsufficientMemoryError, match=f"not enough memory to load {folder.name}") as info:
        generator.load(folder, "cpu", LoadOptions())
    assert "smaller model" in info.value.hint
    assert isinstance(info.value.__cause__, MemoryError)


# --------------------------------------------------------------------------------------- the ways in


def test_both_generators_run_their_demo_models_with_default_settings(tiny_vits):
    from desktop.models.demo import ensure_demo_model

    speech = run_generator(SPEECH, {"text": "Hello. Goodbye."}, model="demo", seed=1)
    assert speech.outputs[0].metadata["sentences"] == 2 and len(speech.previews) == 2
    music = run_generator(MUSIC, {"prompt": "a march"}, seed=1)  # the default model (demo), the default duration
    assert len(music.outputs[0].samples) == MUSIC.Params().duration * 16000
    demo = ensure_demo_model(SPEECH)  # the same seed gives the same files
    assert (demo / "model.safetensors").read_bytes() == (tiny_vits / "model.safetensors").read_bytes()


def test_the_generators_describe_themselves():
    assert (SPEECH.id, SPEECH.name, SPEECH.kind, SPEECH.Params) == ("audio.speech", "Speech (VITS)", "audio",
                                                                   SpeechParams)
    assert (MUSIC.id, MUSIC.name, MUSIC.kind, MUSIC.Params) == ("audio.music", "Music (MusicGen)", "audio",
                                                               MusicParams)
    for generator in (SPEECH, MUSIC):
        assert generator.default_model == "demo" and generator.has_demo_model
        assert generator.devices == ("cuda", "mps", "cpu") and generator.preload_modules == ("torch", "transformers")
        assert all(m.size_checked == "2026-11" and m.size_bytes and m.license == "CC-BY-NC-4.0"
                   for m in generator.recommended_models)
    assert [m.ref for m in SPEECH.recommended_models][:3] == ["facebook/mms-tts-eng", "facebook/mms-tts-deu",
                                                              "facebook/mms-tts-fra"]
    assert [m.ref for m in MUSIC.recommended_models] == ["facebook/musicgen-small"]
    code = ("import sys, plugins.audio, plugins.audio.speech, plugins.audio.music, plugins.audio.demo, "
            "plugins.audio.sentences, plugins.audio.resample; "
            "print(sorted(m for m in ('torch', 'transformers', 'scipy', 'numpy') if m in sys.modules))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # discovery stays fast: heavy modules only inside load/generate


@pytest.fixture
def engine(studiolo_site, qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    torch_plugin.install(studiolo_site)
    plugins = PluginManager(Settings()).load()  # the audio plugin through its entry point, like any other
    assert plugins.plugin_of("audio.speech").builtin
    assert plugins.generator("audio.speech").name == "Speech (VITS)"
    assert plugins.generator("audio.music").name == "Music (MusicGen)"
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def test_seeded_audio_is_the_same_while_another_generator_draws_random_numbers(engine, tiny_vits, tiny_musicgen,
                                                                              qtbot):
    jobs = [("audio.speech", {"text": THREE}, tiny_vits), ("audio.music", {"prompt": "rain", "duration": 1.0},
                                                           tiny_musicgen)]

    def samples(generator_id, params, model):
        submitted = []
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT,
                              check_params_cb=lambda job_id, _: job_id in submitted) as done:
            submitted.append(engine.submit(generator_id, params, model=str(model), seed=3).id)
        return done.args[1][0].samples

    for generator_id, params, model in jobs:
        alone = samples(generator_id, params, model)
        with qtbot.waitSignal(engine.job_progressed, timeout=WAIT):  # the noise job is drawing from the global RNG
            engine.submit("test.noise", {"steps": 400, "global_rng": True}, seed=5)
        assert np.array_equal(samples(generator_id, params, model), alone), generator_id
        assert np.array_equal(samples(generator_id, params, model), alone), generator_id


# ------------------------------------------------------------------------------------------- command line


def test_generate_audio_from_the_command_line(studiolo_home) -> None:
    """``python -m desktop generate audio.speech / audio.music --model demo`` end to end."""
    speech = run_cli("generate", "audio.speech", "--model", "demo", "--param", "text=Hello there. How are you?",
                     "--seed", "1")
    assert speech.returncode == 0, speech.stderr
    assert "2/2" in speech.stderr and "seed 1" in speech.stderr
    music = run_cli("generate", "audio.music", "--model", "demo", "--param", "prompt=calm piano",
                    "--param", "duration=0.5", "--seed", "1")
    assert music.returncode == 0, music.stderr
    refused = run_cli("generate", "audio.speech", "--model", "demo", "--param", "text=漢字")
    assert refused.returncode != 0 and "cannot read any of its characters" in refused.stderr


def test_the_speech_page_in_the_window_speaks_and_saves_a_flac_that_reads_back(qtbot, studiolo_home):
    import os

    from PySide6.QtWidgets import QPlainTextEdit

    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.ui.main_window import MainWindow
    from plugins.audio.panel import AudioPanel

    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("audio.speech")
    page.model_chooser.set_ref("demo")
    page.seed_box.setText("3")
    panel = page.custom_panel
    assert isinstance(panel, AudioPanel)
    qtbot.keyClicks(panel.findChild(QPlainTextEdit), "Hello there. How are you?")
    with qtbot.waitSignal(window.engine.job_finished, timeout=120_000) as finished:
        job_id = panel.generate()
    job = window.engine.job(job_id)
    assert finished.args[0] == job_id and len(panel.clips()) == 1
    assert job.saved[0].suffix == ".flac"
    reused = plugins.generator("audio.speech").params_from_file(job.saved[0])
    assert reused == job.params
    if os.environ.get("STUDIOLO_SCREENSHOTS"):
        window.grab().save(os.path.join(os.environ["STUDIOLO_SCREENSHOTS"], "speech-panel.png"))
    window.close()
