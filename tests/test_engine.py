"""The job engine, headless: life cycle, cancel, failures, throttled delivery, quitting, RNG isolation."""

from __future__ import annotations

import sys
import threading

import pytest
import torch_plugin
from helpers import install_markov
from plugin_sources import install_gate

from desktop.api import ImageOutput, ParamError, TextOutput
from desktop.api.errors import PluginError
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def plugins(studiolo_site):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    install_gate(studiolo_site)
    manager = PluginManager(Settings()).load()
    assert set(manager.generators) >= {"text.markov", "test.noise", "test.noise2"}
    return manager


@pytest.fixture
def make_engine(plugins, qtbot):
    engines = []

    def make(**kwargs):
        kwargs.setdefault("store", None)
        kwargs.setdefault("library", None)
        kwargs.setdefault("cache", ModelCache())
        engine = Engine(plugins, Settings(idle_unload_minutes=0), **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        assert engine.shutdown(timeout=30)


class Recorder:
    """Every signal of an engine, in order, as (name, job id, payload)."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[tuple] = []
        for name in ("job_queued", "job_state_changed", "job_progressed", "job_previewed", "job_warned",
                     "job_finished", "job_failed", "job_cancelled"):
            getattr(engine, name).connect(lambda *args, name=name: self.events.append((name, *args)))

    def of(self, job_id: str, name: str | None = None) -> list[tuple]:
        return [e for e in self.events if e[1] == job_id and (name is None or e[0] == name)]


def test_a_job_goes_through_its_whole_life(make_engine, qtbot):
    engine = make_engine()
    seen = Recorder(engine)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        job = engine.submit("text.markov", {"words": 30}, seed=4)
    job_id, outputs = finished.args
    assert job_id == job.id and job.state is JobState.DONE
    (output,) = outputs
    assert isinstance(output, TextOutput) and len(output.text.split()) == 31
    names = [e[0] for e in seen.of(job.id)]
    assert names[0] == "job_queued" and names[-1] == "job_finished"
    assert [e[2] for e in seen.of(job.id, "job_state_changed")] == ["loading", "running"]
    assert names.index("job_state_changed") < names.index("job_progressed")
    assert seen.of(job.id, "job_progressed")[-1][2:4] == (30, 30)
    assert "".join(e[2] for e in seen.of(job.id, "job_previewed")) == output.text  # text never dropped
    assert job.seed == 4 and job.device == "cpu" and {"load_s", "generate_s"} <= set(job.timings)


def test_the_seed_is_chosen_when_absent_and_recorded(make_engine, qtbot):
    engine = make_engine()
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit("text.markov", {"words": 3})
    assert 0 <= job.seed < 2**32
    with pytest.raises(ParamError, match="'seed': -2"):
        engine.submit("text.markov", seed=-2)


def test_bad_requests_are_refused_before_anything_is_queued(make_engine):
    engine = make_engine()
    with pytest.raises(ParamError, match="'words': 0 — must be between 1 and 5000"):
        engine.submit("text.markov", {"words": 0})
    with pytest.raises(PluginError) as info:
        engine.submit("image.nope")
    assert "text.markov" in info.value.hint and "test.noise" in info.value.hint
    assert engine.jobs() == []


def test_cancel_a_queued_job(make_engine, qtbot):
    engine = make_engine()
    engine.set_paused("text.markov", True)
    first = engine.submit("text.markov", {"words": 5})
    second = engine.submit("text.markov", {"words": 5})
    with qtbot.waitSignal(engine.job_cancelled, timeout=WAIT) as cancelled:
        assert engine.cancel(second.id)
    assert cancelled.args == [second.id, []] and second.state is JobState.CANCELLED
    assert engine.waiting("text.markov") == [first]
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        engine.set_paused("text.markov", False)
    assert finished.args[0] == first.id and second.state is JobState.CANCELLED


def test_cancel_a_running_job_stops_within_a_step_and_keeps_the_partial_output(make_engine, qtbot):
    engine = make_engine()
    seen = Recorder(engine)
    after_cancel = []
    job = None

    def cancel_on_first_progress(job_id, done, total, message):
        if not after_cancel:
            after_cancel.append(len(seen.events))
            engine.cancel(job_id)

    engine.job_progressed.connect(cancel_on_first_progress)
    with qtbot.waitSignal(engine.job_cancelled, timeout=WAIT) as cancelled:
        job = engine.submit("test.noise", {"steps": 100_000})
    job_id, partial = cancelled.args
    assert job.state is JobState.CANCELLED
    assert job.steps_after_cancel <= 1  # the generator noticed the cancel at its next step
    (image,) = partial
    assert isinstance(image, ImageOutput) and image.partial and image.image.size == (8, 8)
    late = [e for e in seen.events[after_cancel[0]:] if e[1] == job_id and e[0] != "job_cancelled"]
    assert late == []  # nothing after the cancel
    assert job.progress[0] < 100_000


def test_a_job_that_raises_fails_clearly_and_the_worker_takes_the_next(make_engine, qtbot):
    engine = make_engine()
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        bad = engine.submit("test.noise", {"steps": 5, "fail_at": 2})
    assert failed.args[0] == bad.id
    assert failed.args[1] == ("Noise failed: RuntimeError: boom at step 2\n"
                              "This is probably a bug in the generator's plugin; the details are in the log.")
    assert "Traceback" in bad.error_detail and bad.state is JobState.FAILED
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        good = engine.submit("test.noise", {"steps": 3})
    assert good.state is JobState.DONE
    assert len(engine._workers) == 1  # the same worker thread served both


@pytest.mark.parametrize("make_model, message", [
    (lambda d: d / "missing", "No model found at"),
    (lambda d: _truncated_model(d), "is not a valid safetensors file: it is truncated"),
    (lambda d: _pickle_model(d), "model.pt is a pickle-format weights file"),
])
def test_bad_models_fail_the_job_with_a_message_naming_the_file(make_engine, qtbot, tmp_path, make_model,
                                                                 message):
    engine = make_engine()
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        engine.submit("test.noise", {"steps": 2}, model=str(make_model(tmp_path)))
    assert message in failed.args[1]
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("test.noise", {"steps": 2}, model="demo")


def test_model_files_are_checked_when_loaded_not_on_every_job(make_engine, qtbot, tmp_path):
    import shutil

    from desktop.models.demo import ensure_demo_model

    engine = make_engine()
    model = tmp_path / "copy"
    shutil.copytree(ensure_demo_model(engine.plugins.generator("test.noise")), model)
    weights = model / "model.safetensors"
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("test.noise", {"steps": 1}, model=str(model))
    weights.write_bytes(weights.read_bytes()[:-100])  # damaged while the model is in memory
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("test.noise", {"steps": 1}, model=str(model))  # served from memory: the files are not re-read
    engine.cache.unload_all()
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        engine.submit("test.noise", {"steps": 1}, model=str(model))  # loaded again: the damage is named
    assert "model.safetensors is not a valid safetensors file: it is truncated" in failed.args[1]


def test_a_plugin_raising_in_load_fails_the_job_clearly(make_engine, qtbot, tmp_path):
    engine = make_engine()
    (tmp_path / "corpus.txt").write_text("too short")
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        engine.submit("text.markov", {"words": 3, "order": 2}, model=str(tmp_path))
    assert failed.args[1].startswith(f"The corpus {tmp_path / 'corpus.txt'} has too few words for order 2.")
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("text.markov", {"words": 3})


def test_idle_models_are_unloaded_off_the_engine_thread(make_engine, qtbot):
    clock = [0.0]
    engine = make_engine(cache=ModelCache(clock=lambda: clock[0]))
    engine.settings.idle_unload_minutes = 1
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("text.markov", {"words": 3})
    assert len(engine.cache.loaded()) == 1
    clock[0] += 61
    threads = []
    unload_idle = engine.cache.unload_idle
    engine.cache.unload_idle = lambda max_idle: (threads.append(threading.current_thread()), unload_idle(max_idle))
    engine.unload_idle_models()
    qtbot.waitUntil(lambda: engine.cache.loaded() == [], timeout=WAIT)
    assert threads and threads[0] is not threading.main_thread()


def _truncated_model(folder):
    from desktop.models.demo import ensure_demo_model
    from desktop.plugins import PluginManager

    demo = ensure_demo_model(PluginManager(Settings()).load().generator("test.noise"))
    model = folder / "truncated"
    model.mkdir()
    (model / "config.json").write_bytes((demo / "config.json").read_bytes())
    data = (demo / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) - 100])
    return model


def _pickle_model(folder):
    model = folder / "pickled"
    model.mkdir()
    (model / "model.pt").write_bytes(b"\x80\x04K\x01.")
    return model


def test_delivery_is_throttled_text_is_never_dropped_and_previews_keep_the_latest(make_engine, qtbot):
    frozen = 1000.0
    engine = make_engine(clock=lambda: frozen, min_interval=3600.0, in_process=True)  # the gate is shared memory
    gate = sys.modules["studiolo_test_gate"].GATE
    seen = Recorder(engine)
    engine.job_progressed.connect(lambda *_: gate.set())  # the worker waits for the first delivery
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        job = engine.submit("test.gate", {"steps": 300})

    progress = [e[2:4] for e in seen.of(job.id, "job_progressed")]
    assert progress == [(1, 300), (300, 300)]  # the first at once, then only the final flush
    previews = [e[2] for e in seen.of(job.id, "job_previewed")]
    text = "".join(p for p in previews if isinstance(p, str))
    assert text == finished.args[1][0].text  # every text chunk, in order
    frames = [p for p in previews if not isinstance(p, str)]
    assert frames == [("frame", 300)]  # of the 299 image previews, the latest wins


def test_two_seeded_jobs_on_two_workers_at_once_match_their_results_alone(make_engine, qtbot):
    engine = make_engine()
    params = {"steps": 300, "global_rng": True}

    def run_alone(generator_id, seed):
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as done:
            engine.submit(generator_id, params, seed=seed)
        return done.args[1][0].image.tobytes()

    alone = {"test.noise": run_alone("test.noise", 5), "test.noise2": run_alone("test.noise2", 6)}
    together: dict[str, bytes] = {}
    with qtbot.waitSignals([engine.job_finished, engine.job_finished], timeout=WAIT):
        jobs = [engine.submit("test.noise", params, seed=5), engine.submit("test.noise2", params, seed=6)]
    for job in jobs:
        together[job.generator_id] = job.outputs[0].image.tobytes()
    assert together == alone and alone["test.noise"] != alone["test.noise2"]


def test_quitting_with_a_job_running_cancels_and_stops_the_workers(make_engine, qtbot):
    engine = make_engine()
    with qtbot.waitSignal(engine.job_progressed, timeout=WAIT):
        job = engine.submit("test.noise", {"steps": 100_000})
    queued = engine.submit("test.noise", {"steps": 2})
    assert engine.shutdown(timeout=30) is True
    assert job.state is JobState.CANCELLED and queued.state is JobState.CANCELLED
    assert all(thread.isFinished() for _worker, thread in engine._workers.values())
    with pytest.raises(RuntimeError, match="shut down"):
        engine.submit("test.noise")


def test_queue_reordering(make_engine, qtbot):
    engine = make_engine()
    engine.set_paused("text.markov", True)
    jobs = [engine.submit("text.markov", {"words": 2}) for _ in range(3)]
    assert engine.move(jobs[2].id, 0)
    assert [j.id for j in engine.waiting("text.markov")] == [jobs[2].id, jobs[0].id, jobs[1].id]
    order = []
    engine.job_finished.connect(lambda job_id, _outputs: order.append(job_id))
    with qtbot.waitSignals([engine.job_finished] * 3, timeout=WAIT):
        engine.set_paused("text.markov", False)
    assert order == [jobs[2].id, jobs[0].id, jobs[1].id]


def test_load_options_are_part_of_the_cache_key(make_engine, qtbot):
    cache = ModelCache()
    engine = make_engine(cache=cache)
    for dtype in ("float32", "float64", "float32"):
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
            engine.submit("test.noise", {"steps": 1, "dtype": dtype})
    assert len(cache.loaded()) == 2


def test_runs_from_another_thread_never_touch_the_engine_thread(make_engine, qtbot):
    engine = make_engine()
    threads = []
    engine.job_progressed.connect(lambda *_: threads.append(threading.current_thread()))
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("test.noise", {"steps": 5})
    assert threads and set(threads) == {threading.main_thread()}


DROP_ENGINES = """
import gc
from PySide6.QtCore import QCoreApplication, QEventLoop
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings

app = QCoreApplication([])
for round in range(20):
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache(), min_interval=0.002)  # deliveries held back by timers
    loop = QEventLoop()
    engine.job_finished.connect(loop.quit)
    engine.submit("text.markov", {"words": 3000}, seed=round)
    loop.exec()
    assert engine.shutdown(timeout=30)
    del engine, loop
    gc.collect()
    print("ok", flush=True)
"""


def test_engines_dropped_after_shutdown_never_crash_the_process(studiolo_site, studiolo_home):
    import subprocess

    from helpers import ROOT

    install_markov(studiolo_site)
    env = studiolo_site.env()
    env["PYTHONPATH"] += f"{__import__('os').pathsep}{ROOT}"
    result = subprocess.run([sys.executable, "-c", DROP_ENGINES], capture_output=True, text=True, env=env,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ok"] * 20
