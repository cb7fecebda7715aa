"""Generators in worker processes, with real processes: crashes, hard cancel, memory given back, outputs identical
to in-process runs, no torch in the GUI process, plugins that break only in their worker, no process left behind,
and a GUI process whose memory stays flat over 1,000 jobs."""

from __future__ import annotations

import gc
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import process_plugins
import pytest
import torch_plugin
from helpers import ROOT, install_markov

from desktop.api import ImageOutput, TextOutput
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.engine.process.transfer import segment_prefix
from desktop.engine.runners import InProcessRunner, ProcessRunner
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.testing import run_generator

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal or a process's state
PAGE = resource.getpagesize()
MB = 1024 * 1024


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, ended but not reaped by its new parent, counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def rss(pid: int | str = "self") -> int:
    """Resident memory of process ``pid`` in bytes."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


@pytest.fixture
def plugins(studiolo_site):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    process_plugins.install(studiolo_site)
    manager = PluginManager(Settings()).load()
    assert set(manager.generators) >= {"text.markov", "test.noise", "test.noise2", "test.crashy", "test.hog",
                                       "test.local", "test.fragile"}
    return manager


@pytest.fixture
def make_engine(plugins, qtbot):
    engines = []

    def make(*, grace: float = 0.5, in_process: bool = False, **kwargs):
        kwargs.setdefault("store", None)
        kwargs.setdefault("library", None)
        kwargs.setdefault("cache", ModelCache())
        settings = Settings(idle_unload_minutes=0, cancel_grace_seconds=grace)
        engine = Engine(plugins, settings, in_process=in_process, **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        assert engine.shutdown(timeout=30)


class Ends:
    """How each job of an engine ended, ``(signal, payload)``, and the previews it delivered."""

    def __init__(self, engine: Engine, qtbot) -> None:
        self.engine, self.qtbot = engine, qtbot
        self.ended: dict[str, tuple[str, object]] = {}
        self.previews: dict[str, list] = {}
        engine.job_finished.connect(lambda job_id, outputs: self.ended.setdefault(job_id, ("finished", outputs)))
        engine.job_failed.connect(lambda job_id, message: self.ended.setdefault(job_id, ("failed", message)))
        engine.job_cancelled.connect(lambda job_id, partial: self.ended.setdefault(job_id, ("cancelled", partial)))
        engine.job_previewed.connect(lambda job_id, preview: self.previews.setdefault(job_id, []).append(preview))

    def wait(self, *job_ids: str) -> None:
        self.qtbot.waitUntil(lambda: all(j in self.ended for j in job_ids), timeout=WAIT)

    def run(self, generator_id: str, params=None, **kwargs) -> tuple[str, object]:
        """Submit a job and wait for its end."""
        job = self.engine.submit(generator_id, params, **kwargs)
        self.wait(job.id)
        return self.ended[job.id]

    def output_pid(self, generator_id: str, params=None) -> int:
        """Run a job that must finish; the pid of the process that made its output."""
        kind, outputs = self.run(generator_id, params)
        assert kind == "finished", outputs
        return outputs[0].metadata["pid"]


def process_of(engine: Engine, generator_id: str):
    runner = engine.runner(generator_id)
    assert isinstance(runner, ProcessRunner)
    return runner.process


# -- crashes, hard cancel, memory -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, how", [("segfault", "signal 11, SIGSEGV"), ("exit", "exit status 3")])
def test_a_worker_that_dies_fails_its_job_and_a_fresh_process_serves_the_next(make_engine, qtbot, mode, how):
    engine = make_engine()
    ends = Ends(engine, qtbot)
    crashy, markov = process_of(engine, "test.crashy"), process_of(engine, "text.markov")
    first = ends.output_pid("test.crashy")
    assert first != os.getpid() and first == crashy.pid and crashy.starts == 1
    assert ends.run("text.markov", {"words": 3})[0] == "finished"
    markov_pid = markov.pid

    kind, message = ends.run("test.crashy", {"mode": mode})
    assert kind == "failed"
    assert message.startswith(f"The Crashy generator's process stopped unexpectedly ({how}).")
    qtbot.waitUntil(lambda: not alive(first), timeout=WAIT)

    second = ends.output_pid("test.crashy")  # the queue goes on, in a new process
    assert second not in (first, os.getpid()) and crashy.starts == 2 and crashy.pid == second
    assert ends.run("text.markov", {"words": 3})[0] == "finished"  # the other generator never noticed
    assert markov.pid == markov_pid and markov.starts == 1 and alive(markov_pid)


@pytest.mark.parametrize("grace, hard", [(0.5, False), (3600.0, True)], ids=["after-grace", "hard"])
def test_a_generator_that_ignores_cancel_is_ended_and_its_job_cancelled_with_what_it_sent(make_engine, qtbot,
                                                                                         grace, hard):
    """After the grace period (the setting) or at once (hard: the CLI's second Ctrl+C), the process is ended; the
    job ends cancelled with the text it had streamed, and the next job runs in a new process. A grace of an hour
    makes the hard cancel's test fail by its timeout if ``hard`` waited for the grace period."""
    engine = make_engine(grace=grace)
    ends = Ends(engine, qtbot)
    job = engine.submit("test.crashy", {"mode": "ignore_cancel"})
    qtbot.waitUntil(lambda: "".join(ends.previews.get(job.id, [])) == "alpha beta ", timeout=WAIT)
    crashy = process_of(engine, "test.crashy")
    stuck = crashy.pid
    assert alive(stuck)

    assert engine.cancel(job.id, hard=hard)
    ends.wait(job.id)
    kind, partial = ends.ended[job.id]
    assert kind == "cancelled" and job.state is JobState.CANCELLED
    assert partial == [TextOutput(text="alpha beta ", partial=True)]
    qtbot.waitUntil(lambda: not alive(stuck), timeout=WAIT)

    fresh = ends.output_pid("test.crashy")
    assert fresh != stuck and crashy.starts == 2
    assert ends.run("text.markov", {"words": 3})[0] == "finished"


def test_unloading_a_model_ends_its_process_and_gives_the_memory_back(make_engine, qtbot):
    now = [1000.0]
    cache = ModelCache(clock=lambda: now[0])
    engine = make_engine(cache=cache)
    engine.settings.idle_unload_minutes = 1
    ends = Ends(engine, qtbot)
    hog = process_of(engine, "test.hog")
    gui_before = rss()

    def load_the_hog() -> int:
        kind, outputs = ends.run("test.hog")
        assert kind == "finished" and outputs[0].metadata["held"] == process_plugins.HOG_BYTES
        pid = outputs[0].metadata["pid"]
        assert pid == hog.pid and rss(pid) > process_plugins.HOG_BYTES  # the worker holds it ...
        (loaded,) = [m for m in cache.loaded() if m.key.generator_id == "test.hog"]
        assert loaded.size == process_plugins.HOG_BYTES  # ... sized by the worker's own figure
        return pid

    first = load_the_hog()
    assert rss() - gui_before < process_plugins.HOG_BYTES // 2  # ... and the GUI process does not
    assert cache.unload(cache.loaded()[0].key)  # explicit unload: the only way to give it all back is to end it
    qtbot.waitUntil(lambda: not alive(first), timeout=WAIT)
    assert hog.pid is None

    second = load_the_hog()  # loads again, in a new process
    assert second != first and hog.starts == 2
    now[0] += 120  # idle for two minutes, over the one-minute setting
    engine.unload_idle_models()
    qtbot.waitUntil(lambda: not alive(second) and hog.pid is None, timeout=WAIT)
    assert cache.loaded() == []
    assert ends.output_pid("test.hog") not in (first, second) and hog.starts == 3


# -- same results as in-process --------------------------------------------------------------------------------


def test_outputs_and_previews_are_those_of_an_in_process_run(make_engine, plugins, qtbot, tmp_path):
    """Images of 320x320 (over the shared-memory threshold) cross through shared memory; each preview delivered is
    one of the generator's own, in order, the last one its final image, and the output is byte for byte the one an
    in-process engine makes with the same seed. No shared-memory segment is left behind."""
    sys.modules["studiolo_test_noise"].build(tmp_path, width=320, hidden=4)
    params, model, seed = {"steps": 4}, str(tmp_path), 11
    every_preview = [p.tobytes() for p in run_generator(plugins.generator("test.noise"), params, model=model,
                                                        seed=seed).previews]

    results = {}
    for in_process in (True, False):
        engine = make_engine(in_process=in_process)
        ends = Ends(engine, qtbot)
        job = engine.submit("test.noise", params, model=model, seed=seed)
        ends.wait(job.id)
        kind, outputs = ends.ended[job.id]
        assert kind == "finished"
        (output,) = outputs
        assert isinstance(output, ImageOutput) and output.image.size == (320, 320)
        delivered = [p.tobytes() for p in ends.previews[job.id]]
        assert delivered and delivered[-1] == every_preview[-1] == output.image.tobytes()
        positions = [every_preview.index(p) for p in delivered]
        assert positions == sorted(positions)
        results[in_process] = (output.image.tobytes(), output.metadata)
        if not in_process:
            pid = process_of(engine, "test.noise").pid
            leftovers = [n for n in os.listdir("/dev/shm") if n.startswith((segment_prefix(pid),
                                                                             segment_prefix(os.getpid())))]
            assert leftovers == []
    assert results[True] == results[False]


def test_two_generators_drawing_from_the_global_rng_at_once_give_what_each_gives_alone(make_engine, qtbot):
    engine = make_engine()
    ends = Ends(engine, qtbot)
    params = {"steps": 200, "global_rng": True}
    alone = {}
    for generator_id, seed in (("test.noise", 5), ("test.noise2", 6)):
        kind, (output,) = ends.run(generator_id, params, seed=seed)
        alone[generator_id] = output.image.tobytes()
    assert alone["test.noise"] != alone["test.noise2"]

    jobs = [engine.submit("test.noise", params, seed=5), engine.submit("test.noise2", params, seed=6)]
    ends.wait(*(job.id for job in jobs))
    for job in jobs:
        kind, (output,) = ends.ended[job.id]
        assert kind == "finished" and output.image.tobytes() == alone[job.generator_id]
    assert process_of(engine, "test.noise").pid != process_of(engine, "test.noise2").pid


# -- where generators run --------------------------------------------------------------------------------------


def test_a_generator_that_runs_in_process_and_an_in_process_engine_start_no_worker(make_engine, qtbot):
    engine = make_engine()
    ends = Ends(engine, qtbot)
    assert ends.output_pid("test.local") == os.getpid()
    assert isinstance(engine.runner("test.local"), InProcessRunner)
    assert ends.output_pid("test.crashy") != os.getpid()  # the same code, not declared in-process

    local = make_engine(in_process=True)
    assert Ends(local, qtbot).output_pid("test.crashy") == os.getpid()
    assert isinstance(local.runner("test.crashy"), InProcessRunner)


GUI_SCRIPT = r"""
import json, os, signal, sys
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
app = QCoreApplication([])
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings

engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), in_process=False)
ended, previewed = {}, set()
engine.job_previewed.connect(lambda job_id, preview: previewed.add(job_id))
for name in ("finished", "failed", "cancelled"):
    getattr(engine, "job_" + name).connect(lambda job_id, payload, name=name: ended.setdefault(job_id, (name, payload)))

def run(generator_id, params, until=lambda job: job.id in ended):
    job = engine.submit(generator_id, params)
    loop, poll = QEventLoop(), QTimer()
    poll.timeout.connect(lambda: until(job) and loop.quit())
    poll.start(20)
    QTimer.singleShot(90_000, loop.quit)
    loop.exec()
    poll.stop()
    return job
"""


def run_gui_script(site, body: str) -> subprocess.CompletedProcess:
    """Run :data:`GUI_SCRIPT` then ``body`` in a new Python process that sees the test's plugins and home."""
    return subprocess.run([sys.executable, "-c", GUI_SCRIPT + body], capture_output=True, text=True,
                          env=site.env(), timeout=150, cwd=ROOT)


def test_the_gui_process_never_imports_torch_even_when_an_output_holds_a_tensor(plugins, studiolo_site):
    """A torch generator runs to the end (its demo model built, its image saved in the library), and an output
    holding a tensor fails its job, clearly, without importing torch into the window's process."""
    done = run_gui_script(studiolo_site, r"""
noise = run("test.noise", {"steps": 3})
tensor = run("test.crashy", {"mode": "tensor"})
heavy = sorted(m for m in ("torch", "diffusers", "transformers", "safetensors") if m in sys.modules)
print(json.dumps({"noise": [ended[noise.id][0], len(noise.saved)], "tensor": ended[tensor.id],
                  "heavy": heavy}))
engine.shutdown()
""")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["noise"] == ["finished", 1]
    kind, message = result["tensor"]
    assert kind == "failed"
    assert message.startswith("Crashy made something that cannot be sent back to Studiolo (")
    assert "torch" in message
    assert result["heavy"] == []


# -- plugins that break only in their worker ---------------------------------------------------------------------


def test_a_plugin_that_fails_to_import_in_its_worker_fails_the_job_and_works_once_fixed(make_engine, qtbot,
                                                                                        monkeypatch):
    engine = make_engine()
    ends = Ends(engine, qtbot)
    monkeypatch.setenv(process_plugins.FRAGILE_ENV, "import_error")
    kind, message = ends.run("test.fragile")
    assert kind == "failed"
    assert message.startswith("The plugin of test.fragile could not be imported in its worker process: ImportError: "
                              "studiolo_fragile needs a library this worker process lacks")
    fragile = process_of(engine, "test.fragile")
    assert fragile.pid is None and fragile.starts == 1
    assert ends.run("text.markov", {"words": 3})[0] == "finished"

    monkeypatch.delenv(process_plugins.FRAGILE_ENV)  # the plugin is fixed (its library installed, say)
    assert ends.output_pid("test.fragile") == fragile.pid and fragile.starts == 2


def test_a_worker_that_never_answers_is_stopped_and_the_queue_goes_on(make_engine, qtbot, monkeypatch):
    engine = make_engine()
    ends = Ends(engine, qtbot)
    fragile = process_of(engine, "test.fragile")
    fragile.start_timeout = 2
    monkeypatch.setenv(process_plugins.FRAGILE_ENV, "hang")
    hung = engine.submit("test.fragile")
    markov = engine.submit("text.markov", {"words": 3})  # another generator works meanwhile
    ends.wait(hung.id, markov.id)
    assert ends.ended[markov.id][0] == "finished"
    kind, message = ends.ended[hung.id]
    assert kind == "failed"
    assert message.startswith("the worker process of test.fragile did not answer within 2 s of starting; it was "
                              "stopped.")
    assert fragile.pid is None and fragile.starts == 1

    monkeypatch.delenv(process_plugins.FRAGILE_ENV)
    fragile.start_timeout = 60  # a busy machine may take over 2 s to start a healthy one
    assert ends.output_pid("test.fragile") == fragile.pid and fragile.starts == 2


def test_an_output_that_cannot_be_pickled_fails_its_job_and_the_process_goes_on(make_engine, qtbot):
    engine = make_engine()
    ends = Ends(engine, qtbot)
    kind, message = ends.run("test.crashy", {"mode": "unpicklable"})
    assert kind == "failed"
    assert message.startswith("Crashy made something that cannot be sent back to Studiolo (")
    assert "lock" in message
    crashy = process_of(engine, "test.crashy")
    pid = crashy.pid
    assert ends.output_pid("test.crashy") == pid and crashy.starts == 1  # nothing broke: the same process serves


# -- no process left behind ------------------------------------------------------------------------------------


def test_shutdown_ends_every_worker_process_busy_or_idle(make_engine, qtbot):
    """A generator ignoring cancel, with a grace period longer than shutdown's own timeout: shutdown ends its
    process when its timeout is over."""
    engine = make_engine(grace=3600.0)
    ends = Ends(engine, qtbot)
    idle = [ends.output_pid("test.crashy"), ends.output_pid("test.hog")]
    fragile = engine.submit("test.fragile")  # idle once it has run; and one that ignores cancel, streaming
    stuck = engine.submit("test.crashy", {"mode": "ignore_cancel"})
    qtbot.waitUntil(lambda: stuck.id in ends.previews and fragile.id in ends.ended, timeout=WAIT)
    pids = [*idle, process_of(engine, "test.fragile").pid]
    assert all(alive(pid) for pid in pids)
    assert engine.shutdown(timeout=2)
    assert not any(alive(pid) for pid in pids)


def test_workers_exit_when_the_gui_process_is_killed(plugins, studiolo_site, qtbot):
    done = run_gui_script(studiolo_site, r"""
run("text.markov", {"words": 3})  # its worker keeps the model: idle, waiting
run("test.crashy", {"mode": "ignore_cancel"}, until=lambda job: job.id in previewed)  # busy, ignoring cancel
pids = [engine.runner(g).process.pid for g in ("text.markov", "test.crashy")]
print(json.dumps(pids), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""")
    assert done.returncode == -signal.SIGKILL, done.stderr
    pids = json.loads(done.stdout.splitlines()[-1])
    assert len(pids) == 2 and all(isinstance(pid, int) for pid in pids)
    assert all(pid != os.getpid() for pid in pids)
    qtbot.waitUntil(lambda: not any(alive(pid) for pid in pids), timeout=30_000)  # each noticed its parent gone


# -- memory of the GUI process ---------------------------------------------------------------------------------


def test_the_gui_process_memory_is_flat_over_a_thousand_jobs(make_engine, qtbot):
    """1,000 Markov jobs in a worker process, each with its own 20 KB prompt, in its params and its output. Bound:
    RSS may grow by at most 10 MB between job 100 (warmed up: threads, caches, allocator arenas) and job 1000
    (measured here: about 2 MB). The engine remembers the last ``history`` (100) jobs, so what it legitimately holds is
    already there at job 100; keeping every job (params + output, ~40 KB each) would add ~36 MB over the 900 jobs,
    and a per-job leak of anything over ~10 KB (mailboxes, timers, calls, pickles, shared-memory buffers) too."""
    engine = make_engine(history=100)
    ends = Ends(engine, qtbot)
    words = " ".join(f"word{i:04d}" for i in range(2000))  # ~20 KB
    serial = itertools.count()

    def batch(count: int) -> None:
        ids = [engine.submit("text.markov", {"prompt": f"{words} {next(serial)}", "words": 2}).id
               for _ in range(count)]
        ends.wait(*ids)
        assert all(ends.ended[i][0] == "finished" for i in ids)
        for job_id in ids:
            ends.ended.pop(job_id)
            ends.previews.pop(job_id, None)

    batch(100)
    gc.collect()
    warmed = rss()
    for _ in range(9):
        batch(100)
    gc.collect()
    growth = rss() - warmed
    assert growth < 10 * MB, f"RSS grew by {growth / MB:.1f} MB over 900 jobs"
    assert process_of(engine, "text.markov").starts == 1
    assert len(engine.jobs()) == 100
