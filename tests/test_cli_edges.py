"""The CLI's edges, run as a new user would, in subprocesses: each bad input is a clear message and an exit code
(1 failed, 2 usage, 130 cancelled), never a traceback, a hang or an abort, and nothing is left half-written."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from disk import fill
from helpers import ROOT, install_markov, process_gone, run_cli

from desktop.library import Library
from desktop.settings import Settings

EDGES = '''
import os
import sys
from dataclasses import dataclass

from desktop.api import AudioOutput, Generator, ImageOutput, TextOutput, hookimpl, param


def say(line):
    print(f"plugin: {line}", file=sys.stderr, flush=True)


def wait_for_the_test():
    """Block until the test writes a line to the gate (a FIFO named by STUDIOLO_TEST_GATE); never looks at cancel.
    (Not stdin: a worker process has none.)"""
    with open(os.environ["STUDIOLO_TEST_GATE"]) as gate:
        gate.readline()


@dataclass(frozen=True)
class StuckParams:
    prompt: str = param("", prompt=True)
    stuck_in: str = param("generate", choices=("load", "generate"), load_option=True)


class Stuck(Generator):
    id, name, kind, Params = "test.stuck", "Stuck", "text", StuckParams

    def load(self, model_path, device, options):
        say("loading")
        if options["stuck_in"] == "load":
            wait_for_the_test()
        return None

    def generate(self, handle, params, ctx):
        say(f"generating in process {os.getpid()}")
        ctx.preview("words so far")
        ctx.progress(1, 2, "words sent")  # after the preview, on the same way: once shown, the preview has arrived
        if params.stuck_in == "generate":
            wait_for_the_test()
        return [TextOutput(text="made without ever looking at cancel")]


@dataclass(frozen=True)
class EmptyParams:
    returns: str = param("none", choices=("none", "empty"))


class Empty(Generator):
    id, name, kind, Params = "test.empty", "Empty", "text", EmptyParams

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return None if params.returns == "none" else []


@dataclass(frozen=True)
class ToneParams:
    prompt: str = param("a low hum", prompt=True)


class Tone(Generator):
    """Audio saved by the host's writer: a WAV file with the metadata in its stdo chunk."""
    id, name, kind, Params = "test.tone", "Tone", "audio", ToneParams

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        import numpy as np
        t = np.arange(800) / 8000.0
        return [AudioOutput(samples=0.5 * np.sin(2 * np.pi * 220 * t), sample_rate=8000)]


@dataclass(frozen=True)
class SquareParams:
    prompt: str = param("a red square", prompt=True)


class Square(Generator):
    """An image saved by the host's writer: a PNG with the metadata in a text chunk."""
    id, name, kind, Params = "test.square", "Square", "image", SquareParams

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        from PIL import Image
        return [ImageOutput(image=Image.new("RGBA", (16, 16), (200, 20, 20, 255)))]


@hookimpl
def register_generators(register):
    for generator in (Stuck(), Empty(), Tone(), Square()):
        register(generator)
'''

WAIT = 120  # seconds: a safety net for a hang, never a timing the test relies on


@pytest.fixture
def env(studiolo_site, tmp_path_factory):
    install_markov(studiolo_site)
    studiolo_site.install("studiolo-test-edges", modules={"studiolo_test_edges": EDGES},
                          entry_points={"edges": "studiolo_test_edges"})
    gate = tmp_path_factory.mktemp("gate") / "gate"  # not in tmp_path: tests look for what is left there
    os.mkfifo(gate)
    return {**studiolo_site.env(), "STUDIOLO_TEST_GATE": str(gate)}


def saved_files(home: Path) -> list[Path]:
    """Every file (temporary ones included) in the library's output folder."""
    outputs = home / "data" / "outputs"
    return sorted(p for p in outputs.rglob("*") if p.is_file()) if outputs.exists() else []


def library_items(home: Path) -> list:
    if not (home / "data" / "library.db").exists():
        return []
    with Library(home / "data" / "library.db") as library:
        return library.list_items()


def clean(result: subprocess.CompletedProcess) -> None:
    """No traceback, no Qt abort."""
    assert "Traceback" not in result.stderr and "QThread" not in result.stderr, result.stderr


# -- --output ----------------------------------------------------------------------------------------------------


def test_an_output_under_a_file_is_refused_before_the_job_runs(env, tmp_path, studiolo_home):
    blocker = tmp_path / "notes"
    blocker.write_text("a file, not a folder")
    result = run_cli("generate", "text.markov", "-p", "words=3", "--output", str(blocker / "story.txt"), env=env)
    assert result.returncode == 2, result.stderr
    assert f"{blocker} is a file, not a folder" in result.stderr
    clean(result)
    assert saved_files(studiolo_home) == [] and blocker.read_text() == "a file, not a folder"


def test_a_copy_that_cannot_be_written_fails_and_names_the_library_copy(env, small_disk, studiolo_home):
    disk = small_disk(64)
    fill(disk)
    result = run_cli("generate", "text.markov", "-p", "words=3", "--output", str(disk / "story.txt"), env=env)
    assert result.returncode == 1, result.stderr
    assert f"Not enough disk space to write {disk / 'story.txt'}" in result.stderr
    clean(result)
    (saved,) = saved_files(studiolo_home)[:1]
    assert f"The output is kept in the library: {saved}" in result.stderr
    assert sorted(p.name for p in disk.iterdir()) == [".filler"]  # no copy, no temporary file


def test_an_output_format_the_generator_cannot_make_is_refused_before_running(env, tmp_path, studiolo_home):
    result = run_cli("generate", "test.tone", "--output", str(tmp_path / "hum.mp3"), env=env)
    assert result.returncode == 2, result.stderr
    assert "audio outputs cannot be written as .mp3" in result.stderr
    assert "Formats available: .wav, .flac, .ogg" in result.stderr
    text = run_cli("generate", "text.markov", "--output", str(tmp_path / "story.png"), env=env)
    assert text.returncode == 2 and "Formats available: .txt, .md" in text.stderr
    assert saved_files(studiolo_home) == [] and list(tmp_path.iterdir()) == []


def test_wav_output_asked_for_as_flac_is_converted_with_its_metadata(env, tmp_path):
    import soundfile
    from mutagen.flac import FLAC

    out = tmp_path / "hum.flac"
    result = run_cli("generate", "test.tone", "--seed", "5", "--output", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"fLaC"
    samples, rate = soundfile.read(out)
    assert rate == 8000 and len(samples) == 800
    metadata = json.loads(FLAC(out)["STUDIOLO"][0])
    assert metadata["generator"] == "test.tone" and metadata["seed"] == 5 and metadata["prompt"] == "a low hum"


def test_png_output_asked_for_as_jpeg_or_webp_is_converted(env, tmp_path):
    from PIL import Image

    jpeg = tmp_path / "square.jpg"
    result = run_cli("generate", "test.square", "--seed", "8", "--output", str(jpeg), env=env)
    assert result.returncode == 0, result.stderr
    with Image.open(jpeg) as image:
        assert image.format == "JPEG" and image.size == (16, 16)
        assert json.loads(image.info["comment"])["seed"] == 8  # the metadata travels in the JPEG comment
    webp = tmp_path / "square.webp"
    result = run_cli("generate", "test.square", "--output", str(webp), env=env)
    assert result.returncode == 0, result.stderr
    with Image.open(webp) as image:
        assert image.format == "WEBP"
    assert json.loads((tmp_path / "square.webp.json").read_text())["generator"] == "test.square"  # beside it
    assert f"copied to {webp} (how it was made: {webp}.json)" in result.stderr


# -- parameters, devices ---------------------------------------------------------------------------------------


def test_a_param_that_is_not_utf8_is_refused_at_parse_time_naming_it(env, studiolo_home):
    undecodable = os.fsdecode(b"\xff\xfe")  # what Python makes of prompt=$'\xff\xfe' on the command line
    result = run_cli("generate", "text.markov", "-p", "words=3", "-p", f"prompt={undecodable}", env=env)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for 'prompt': b'\\xff\\xfe' — not valid UTF-8 text." in result.stderr
    assert "plugin" not in result.stderr
    clean(result)
    assert saved_files(studiolo_home) == []


def test_an_unknown_device_is_refused_listing_the_devices_there_are(env, studiolo_home):
    result = run_cli("generate", "text.markov", "-p", "words=3", "--device", "tpu", env=env)
    assert result.returncode == 2, result.stderr
    assert "There is no device 'tpu' on this machine" in result.stderr
    assert "Choose one of: auto, cpu" in result.stderr
    assert saved_files(studiolo_home) == []


def test_the_settings_ignore_a_device_that_is_not_one(studiolo_home):
    from desktop.settings import Settings

    Settings.path().parent.mkdir(parents=True, exist_ok=True)
    Settings.path().write_text(json.dumps({"device": "tpu"}))
    settings = Settings.load()
    assert settings.device == "auto"
    assert settings.warnings == ["Ignored the setting device='tpu' (not a valid value)."]


# -- generators that return nothing ------------------------------------------------------------------------------


@pytest.mark.parametrize("returns", ["none", "empty"])
def test_a_generator_returning_nothing_fails_naming_it(env, returns, studiolo_home):
    result = run_cli("generate", "test.empty", "-p", f"returns={returns}", env=env)
    assert result.returncode == 1, result.stderr
    what = "None" if returns == "none" else "an empty list"
    assert f"test.empty produced no output (its generate returned {what})" in result.stderr
    assert saved_files(studiolo_home) == [] and library_items(studiolo_home) == []


# -- plugins disable, gallery export, models demo ----------------------------------------------------------------


def test_disabling_a_plugin_when_the_config_folder_is_a_file(env, studiolo_home):
    config = studiolo_home / "config"
    config.write_text("not a folder")
    result = run_cli("plugins", "disable", "markov", env=env)
    assert result.returncode == 1, result.stderr
    assert f"Cannot write the settings ({config / 'settings.json'}): {config} is a file, not a folder." \
        in result.stderr
    assert f"Move or rename {config}" in result.stderr
    clean(result)
    assert config.read_text() == "not a folder"


def test_disabling_a_plugin_on_a_full_disk_keeps_the_settings_as_they_were(env, small_disk):
    home = small_disk(256)
    settings = home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"disabled_plugins": []}\n')
    fill(home)
    result = run_cli("plugins", "disable", "markov", env={**env, "STUDIOLO_HOME": str(home)})
    assert result.returncode == 1, result.stderr
    assert f"Not enough disk space to write the settings ({settings})" in result.stderr
    assert "Free some disk space" in result.stderr
    clean(result)
    assert settings.read_text() == '{"disabled_plugins": []}\n'
    assert [p.name for p in settings.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_exporting_to_a_name_too_long_is_a_clear_error(env, tmp_path, studiolo_home):
    assert run_cli("generate", "text.markov", "-p", "words=3", env=env).returncode == 0
    (item,) = library_items(studiolo_home)
    dest = tmp_path / ("a" * 300 + ".txt")
    result = run_cli("gallery", "export", str(item.id), str(dest), env=env)
    assert result.returncode == 1, result.stderr
    assert "is too long (304 bytes; this file system allows 255)" in result.stderr
    assert "Choose a shorter name." in result.stderr
    clean(result)
    assert list(tmp_path.iterdir()) == []


def test_building_a_demo_model_on_a_full_disk_says_so(env, small_disk):
    home = small_disk(128)
    fill(home)
    result = run_cli("models", "demo", "text.markov", env={**env, "STUDIOLO_HOME": str(home)})
    assert result.returncode == 1, result.stderr
    assert "Not enough disk space to write the demo model" in result.stderr
    assert "bug" not in result.stderr
    clean(result)
    demo = home / "data" / "models" / "demo"
    assert [p for p in demo.rglob("*") if p.name.startswith(".building-") or p.is_file()] == []


# -- Ctrl+C -----------------------------------------------------------------------------------------------------


class Running:
    """A `studiolo` subprocess whose stderr is read as it comes, without blocking past a deadline."""

    def __init__(self, *args: str, env: dict[str, str], in_process: bool = False) -> None:
        self.env = {**env, "STUDIOLO_IN_PROCESS": "1" if in_process else "0",
                    "STUDIOLO_VERBOSE": "1"}  # the plugin's lines on a worker's stderr reach the terminal
        self.proc = subprocess.Popen([sys.executable, "-m", "desktop", *args], cwd=ROOT, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = ""
        self._read = 0

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        """Read stderr until ``text`` appears after what was already waited for; returns the rest of its line."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        while (found := self.stderr.find(text, self._read)) < 0 or "\n" not in self.stderr[found:]:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and select.select([fd], [], [], remaining)[0], \
                f"no {text!r} on stderr within {timeout} s:\n{self.stderr}"
            chunk = os.read(fd, 65536)
            assert chunk, f"the process ended before writing {text!r}:\n{self.stderr}"
            self.stderr += chunk.decode("utf-8", "replace")
        self._read = found + len(text)
        return self.stderr[self._read:self.stderr.index("\n", self._read)]

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def release(self) -> None:
        """Let the plugin's blocked load or generate return."""
        with open(self.env["STUDIOLO_TEST_GATE"], "w") as gate:  # waits for the plugin to open its end
            gate.write("go\n")

    def finish(self) -> int:
        """Wait for the process to end (nobody releases a blocked plugin meanwhile)."""
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the process did not end within {WAIT} s:\n{self.stderr}")
        finally:
            self.stdout = self.proc.stdout.read().decode("utf-8", "replace")
            self.stderr += self.proc.stderr.read().decode("utf-8", "replace")
        return self.proc.returncode


def grace(seconds: float) -> None:
    """How long a cancelled job's generator is given before its worker process is ended (Settings)."""
    settings = Settings.load()
    settings.cancel_grace_seconds = seconds
    settings.save()


def test_a_second_ctrl_c_ends_the_worker_process_of_a_generator_that_ignores_cancel(env, studiolo_home):
    grace(600)  # only the second Ctrl+C can end it within the test's time
    run = Running("generate", "test.stuck", env=env)
    worker = int(run.wait_for("plugin: generating in process "))
    assert worker != run.proc.pid
    run.wait_for("1/2  words sent")  # the preview before it has arrived
    run.interrupt()
    run.wait_for("Cancelling… (press Ctrl+C again to stop at once)")
    run.interrupt()
    assert run.finish() == 130, run.stderr  # bounded by WAIT: the plugin never returns by itself
    clean(run)
    assert "Stopping the generator now" in run.stderr and "cancelled: partial output kept" in run.stderr
    assert run.stdout == "words so far\n"  # printed like any cancelled job's output
    (item,) = library_items(studiolo_home)
    assert item.partial and item.path.read_text(encoding="utf-8").startswith("words so far")
    assert [p for p in saved_files(studiolo_home) if p.name.startswith(".")] == []  # no temporary file
    assert process_gone(worker)


def test_a_second_ctrl_c_stops_a_generator_running_in_process_at_once(env, studiolo_home):
    run = Running("generate", "test.stuck", env=env, in_process=True)
    assert int(run.wait_for("plugin: generating in process ")) == run.proc.pid
    run.interrupt()
    run.wait_for("Cancelling… (press Ctrl+C again to stop at once)")
    run.interrupt()
    assert run.finish() == 130, run.stderr  # bounded by WAIT: the plugin never returns by itself
    clean(run)
    assert "Stopping now; nothing more is saved." in run.stderr
    assert saved_files(studiolo_home) == [] and library_items(studiolo_home) == []


def test_one_ctrl_c_ends_the_worker_process_once_the_grace_period_is_over(env, studiolo_home):
    grace(0)
    run = Running("generate", "test.stuck", env=env)
    worker = int(run.wait_for("plugin: generating in process "))
    run.wait_for("1/2  words sent")
    run.interrupt()
    assert run.finish() == 130, run.stderr  # bounded by WAIT: the plugin never returns by itself
    clean(run)
    assert run.stdout == "words so far\n" and "cancelled: partial output kept" in run.stderr
    assert process_gone(worker)


@pytest.mark.parametrize("in_process", [False, True], ids=["worker-process", "in-process"])
def test_one_ctrl_c_during_a_load_that_ignores_cancel_ends_cancelled_once_it_returns(env, studiolo_home,
                                                                                       in_process):
    grace(600)
    run = Running("generate", "test.stuck", "-p", "stuck_in=load", env=env, in_process=in_process)
    run.wait_for("plugin: loading")
    run.interrupt()
    run.wait_for("Cancelling…")
    run.release()
    assert run.finish() == 130, run.stderr
    assert "plugin: generating" not in run.stderr and "cancelled: nothing was saved" in run.stderr
    assert saved_files(studiolo_home) == [] and library_items(studiolo_home) == []


@pytest.mark.parametrize("in_process", [False, True], ids=["worker-process", "in-process"])
def test_a_generator_finishing_after_a_cancel_it_ignored_ends_cancelled(env, studiolo_home, in_process):
    grace(600)
    run = Running("generate", "test.stuck", env=env, in_process=in_process)
    pid = int(run.wait_for("plugin: generating in process "))
    run.wait_for("1/2  words sent")
    run.interrupt()
    run.wait_for("Cancelling…")
    run.release()
    assert run.finish() == 130, run.stderr
    (item,) = library_items(studiolo_home)
    assert item.partial  # kept as what it is: the output of a cancelled job
    assert (pid == run.proc.pid) is in_process and process_gone(pid)  # no worker process left behind


def test_a_host_failure_is_not_blamed_on_the_plugin(studiolo_site, qtbot, monkeypatch):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.library import OutputStore
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    install_markov(studiolo_site)

    def broken_save(*_args, **_kwargs):
        raise RuntimeError("the store tripped over itself")

    monkeypatch.setattr(OutputStore, "save", broken_save)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache())
    try:
        with qtbot.waitSignal(engine.job_failed, timeout=WAIT * 1000) as failed:
            engine.submit("text.markov", {"words": 3})
    finally:
        assert engine.shutdown(timeout=30)
    message = failed.args[1]
    assert message.startswith("Studiolo failed while saving the output (Markov chain): RuntimeError: the store "
                              "tripped over itself")
    assert "This is a bug in Studiolo, not in the generator's plugin" in message


@pytest.mark.parametrize("returns", ["none", "empty"])
def test_the_engine_fails_a_job_that_produced_nothing(studiolo_site, qtbot, returns):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.engine.jobs import JobState
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    studiolo_site.install("studiolo-test-edges", modules={"studiolo_test_edges": EDGES},
                          entry_points={"edges": "studiolo_test_edges"})
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache(),
                    store=None, library=None)
    try:
        with qtbot.waitSignal(engine.job_failed, timeout=WAIT * 1000) as failed:
            job = engine.submit("test.empty", {"returns": returns})
    finally:
        assert engine.shutdown(timeout=30)
    assert failed.args[1].startswith("test.empty produced no output") and job.state is JobState.FAILED


def test_atomic_writes_take_the_longest_names_and_leave_no_temporary_file_on_a_full_disk(tmp_path, small_disk):
    from desktop.api.files import atomic_write_bytes

    longest = tmp_path / ("b" * 251 + ".bin")  # 255 bytes: the temporary file's name must still fit
    atomic_write_bytes(longest, b"whole")
    assert longest.read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == [longest.name]
    disk = small_disk(64)
    fill(disk, leave_bytes=4096)
    with pytest.raises(OSError):
        atomic_write_bytes(disk / longest.name, b"x" * 200_000)
    assert sorted(p.name for p in disk.iterdir()) == [".filler"]
