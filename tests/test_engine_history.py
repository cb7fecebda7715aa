"""The engine keeps only what the window shows: finished jobs drop their saved outputs once delivered, and at
most ``history`` finished jobs are remembered (queued and running ones always are); the Activity view follows."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState, UnknownJob
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.activity import ActivityView

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal
MB = 1 << 20

# A generator whose output holds ``megabytes`` of samples (numpy reports its buffers to tracemalloc) but is saved
# as a few bytes (its own encoder), so that a test of hundreds of jobs measures memory, not the disk.
BIG = '''
from dataclasses import dataclass

import numpy as np

from desktop.api import AudioOutput, EncodedOutput, Generator, hookimpl, param

@dataclass(frozen=True)
class Params:
    prompt: str = param("big", prompt=True)
    megabytes: float = param(1.0, min=0.0, max=8.0)

class Big(Generator):
    id, name, kind, Params = "test.big", "Big", "audio", Params
    def load(self, model_path, device, options):
        return None
    def generate(self, handle, params, ctx):
        samples = np.full(int(params.megabytes * (1 << 20)) // 4, ctx.seed % 1000 / 1000, dtype=np.float32)
        return [AudioOutput(samples=samples, sample_rate=8000)]
    def encode_output(self, output, metadata):
        return EncodedOutput(data=f"seed {metadata['seed']}".encode(), suffix=".txt", embeds_metadata=False)

@hookimpl
def register_generators(register):
    register(Big())
'''


@pytest.fixture
def make_engine(studiolo_site, qtbot):
    """Engines that save to the test's library (the default store), shut down at teardown."""
    studiolo_site.install("studiolo-test-big", modules={"studiolo_test_big": BIG},
                          entry_points={"big": "studiolo_test_big"})
    plugins = PluginManager(Settings()).load()
    engines: list[Engine] = []

    def make(**kwargs) -> Engine:
        engine = Engine(plugins, Settings(idle_unload_minutes=0), cache=ModelCache(), **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        assert engine.shutdown(timeout=30)


def run_one(engine, qtbot, **params):
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        job = engine.submit("test.big", params)
    return job, finished.args[1]


def test_finished_jobs_drop_their_saved_outputs_and_only_the_latest_are_remembered(make_engine, qtbot):
    history = 20
    engine = make_engine(history=history)
    forgotten: list[str] = []
    engine.job_forgotten.connect(forgotten.append)
    ran = []
    for _ in range(history + 50):
        job, delivered = run_one(engine, qtbot, megabytes=0.5)
        assert delivered[0].samples.nbytes == MB // 2  # the signal carried the output to the window
        ran.append(job)

    assert len(engine.jobs()) == history and [j.id for j in engine.jobs()] == [j.id for j in ran[-history:]]
    assert forgotten == [j.id for j in ran[:50]]
    with pytest.raises(UnknownJob) as unknown:
        engine.job(ran[0].id)
    assert isinstance(unknown.value, KeyError) and ran[0].id in str(unknown.value)
    for job in engine.jobs():
        assert job.state is JobState.DONE and job.outputs == []  # dropped: the library holds them
        assert len(job.saved) == 1 and job.saved[0].is_file() and job.item_ids and job.saved_metadata
        assert job.saved[0].read_text() == f"seed {job.seed}"


def test_queued_and_running_jobs_are_never_forgotten(make_engine, qtbot):
    engine = make_engine(history=1)
    engine.set_paused("test.big", True)
    first, second, third, fourth = (engine.submit("test.big", {"megabytes": 0.01}) for _ in range(4))
    assert engine.cancel(first.id) and engine.cancel(second.id)  # two finished jobs: the older is forgotten
    assert [j.id for j in engine.jobs()] == [second.id, third.id, fourth.id]
    with qtbot.waitSignals([engine.job_finished, engine.job_finished], timeout=WAIT):
        engine.set_paused("test.big", False)
    assert [j.id for j in engine.jobs()] == [fourth.id]
    assert not engine._mailboxes and not engine._limiters  # nothing of the finished jobs is left behind


def test_unsaved_outputs_are_kept_for_save_as(studiolo_site, qtbot, make_engine):
    engine = make_engine(store=None, library=None)  # nothing is saved: the outputs are the only copy
    job, _ = run_one(engine, qtbot, megabytes=0.01)
    assert job.saved == [] and len(job.outputs) == 1


def test_memory_stays_flat_over_300_jobs_of_1_mb_outputs(make_engine, qtbot):
    """Python's traced memory (tracemalloc: deterministic, unlike RSS; numpy reports its buffers to it) after 300
    jobs of 1 MiB outputs grows by less than 30 MiB, at its peak too.

    Why 30 MiB is sound: keeping the outputs would hold 300 MiB, ten times the bound. What is kept by design is
    the light record of each job (params, saved path, the saved metadata dict, timings, a threading.Event): a few
    KiB each, under 5 MiB for 300 (the default history of 500 keeps them all, so this measures the dropping, not
    the forgetting). At the peak, one job's output (1 MiB) and the one the last signal delivered are alive at
    once. The rest of the margin is for the library's and Qt's caches, and the logging of each job."""
    engine = make_engine()
    run_one(engine, qtbot, megabytes=1.0)  # warm up: the plugin imported, the library open, the worker running
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(300):
            run_one(engine, qtbot, megabytes=1.0)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - start < 30 * MB, f"grew by {(current - start) / MB:.1f} MiB"
    assert peak - start < 30 * MB, f"peaked {(peak - start) / MB:.1f} MiB above the start"
    assert len(engine.jobs()) == 301 and all(j.outputs == [] for j in engine.jobs())


def test_the_activity_view_follows_the_history_and_reruns_a_job_whose_outputs_were_dropped(make_engine, qtbot):
    engine = make_engine(history=3)
    view = ActivityView(engine)
    qtbot.addWidget(view)
    ran = [run_one(engine, qtbot, megabytes=0.01, prompt=f"job {i}")[0] for i in range(5)]
    assert view.job_ids() == [j.id for j in reversed(ran[-3:])]  # newest first; the rows of forgotten jobs went
    assert all(view.row_of(j.id) is None for j in ran[:2])
    assert [view.table.item(r, 2).text() for r in range(3)] == ["done"] * 3

    oldest = ran[2]  # the bottom row
    assert oldest.outputs == [] and oldest.saved
    view.select(oldest.id)
    assert view.selected_job() is oldest and view.buttons["rerun"].isEnabled()
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        view.buttons["rerun"].click()
    again = engine.job(finished.args[0])
    assert again is not oldest and again.seed == oldest.seed and again.params == oldest.params
    assert again.saved[0].read_text() == oldest.saved[0].read_text()
    assert view.row_of(oldest.id) is None and view.job_ids()[0] == again.id  # the re-run pushed it out
    assert view.selected_job() is None or view.selected_job().id in view.job_ids()
