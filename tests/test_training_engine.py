"""Training as a generator capability, the host's part (issue 22), through a third-party plugin installed by entry
point whose trainer fits a line with numpy (deterministic, fast): a training job runs in the generator's worker
process with progress and loss, writes checkpoints atomically, pauses (a checkpoint, then stop) and resumes to
exactly the result of an uninterrupted run, keeps its last checkpoint when cancelled, refuses a run that does not
fit before it starts, and ends with the trained model imported into the model store, listed under the generator's
add-on kind, with its provenance (base model hash, dataset manifest, params, the loss at every step) inside it.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest
from training_plugin import install_line, line_data

from desktop.api import InsufficientMemoryError, ParamError
from desktop.api.errors import DiskFullError
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.train_job import read_provenance
from desktop.engine.training import checkpoints, read_log, run_dir
from desktop.models.resolver import imported_models_dir
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.testing.training import run_training

WAIT = 120_000



@pytest.fixture
def plugins(studiolo_site):
    install_line(studiolo_site)
    return PluginManager(Settings(idle_unload_minutes=0)).load()


@pytest.fixture
def data(tmp_path) -> Path:
    return line_data(tmp_path / "data")


def make_engine(plugins, *, in_process: bool) -> Engine:
    return Engine(plugins, plugins.settings, cache=ModelCache(), in_process=in_process)


def train(engine, qtbot, name, params, *, resume=False, on_first_progress=None, signal="job_finished", notes=None,
          after_step=1):
    """Run a training job to its end (``signal``); ``on_first_progress(job_id)`` is called at the first progress
    report of a step past ``after_step``."""
    progress = []
    if notes is not None:
        engine.job_warned.connect(lambda _job_id, message: notes.append(message))

    def seen(job_id, done, total, message):
        progress.append((done, total, message))
        if on_first_progress is not None and done >= after_step and not any(d >= after_step for d, *_ in progress[:-1]):
            on_first_progress(job_id)

    engine.job_progressed.connect(seen)
    try:
        with qtbot.waitSignal(getattr(engine, signal), timeout=WAIT):
            job = engine.submit_training("toy.line", "fit", params, name=name, model="demo", seed=4, resume=resume)
    finally:
        engine.job_progressed.disconnect(seen)
    return job, progress


def fitted(ref: str) -> dict:
    from safetensors.numpy import load_file

    return {name: float(value[0]) for name, value in load_file(str(imported_models_dir() / ref)).items()}


def test_a_training_job_runs_in_the_worker_process_and_its_model_is_imported_with_provenance(plugins, qtbot,
                                                                                            data):
    engine = make_engine(plugins, in_process=False)
    try:
        job, progress = train(engine, qtbot, "line-a", {"data": [str(data)], "steps": 200, "work": 1})
    finally:
        assert engine.shutdown(timeout=30)
    assert job.training.result == "line-a.safetensors" and job.state.value == "done"
    line = fitted("line-a.safetensors")
    assert abs(line["w"] - 2) < 0.2 and abs(line["b"] - 1) < 0.3  # it learnt y = 2x + 1
    assert progress[-1][:2] == (200, 200) and progress[-1][2].startswith("loss ")
    record = read_provenance(imported_models_dir() / "line-a.safetensors")  # inside the file, beside its tensors
    assert record["generator"] == "toy.line" and record["training"] == "fit" and record["base_model"] == "demo"
    assert record["base_model_sha256"] and record["params"]["steps"] == 200 and record["seed"] == 4
    assert [e["step"] for e in record["log"]] == list(range(1, 201))
    assert record["log"][-1]["loss"] < record["log"][0]["loss"]
    manifest = {entry["file"]: entry["sha256"] for entry in record["dataset"]}
    assert manifest == {name: hashlib.sha256((data / name).read_bytes()).hexdigest() for name in ("a.csv", "b.csv")}
    assert record["estimate"]["peak_bytes"] == 1000 and record["plugin"] == {"rows": 7}

    from desktop.models.addons import addon_list
    from desktop.models.inventory import models_for

    listed = models_for(addon_list(plugins.generator("toy.line"), "weights"))
    assert [m.ref for m in listed.installed] == ["line-a.safetensors"]  # usable at once, in its kind's model list
    from safetensors import safe_open

    with safe_open(str(imported_models_dir() / "line-a.safetensors"), "np") as f:
        assert f.metadata()["format"] == "line"  # the plugin's own metadata kept beside the record


def test_pause_then_resume_equals_an_uninterrupted_run(plugins, qtbot, data):
    params = {"data": [str(data)], "steps": 600, "checkpoint_every": 1000, "work": 20_000}
    engine = make_engine(plugins, in_process=False)
    try:
        paused, _ = train(engine, qtbot, "line-p", params, on_first_progress=engine.pause, signal="job_cancelled")
        assert paused.training.paused and paused.state.value == "cancelled"
        ((step, _folder),) = checkpoints(run_dir("toy.line", "line-p"))  # the pause's own checkpoint
        assert 0 < step < 600
        with pytest.raises(ParamError, match="stopped at step"):  # not started over by accident
            engine.submit_training("toy.line", "fit", params, name="line-p", model="demo")
        notes: list[str] = []
        resumed, progress = train(engine, qtbot, "line-p", None, resume=True, notes=notes)  # its own params, seed
        assert f"Resuming from the checkpoint of step {step}." in notes and progress[0][0] > step
        whole, _ = train(engine, qtbot, "line-w", params)
    finally:
        assert engine.shutdown(timeout=30)
    assert fitted(resumed.training.result) == fitted(whole.training.result)  # exactly: same arithmetic, same RNG
    log = read_provenance(imported_models_dir() / resumed.training.result)["log"]
    assert [e["step"] for e in log] == list(range(1, 601))  # one run's log, each step once


def test_cancel_keeps_the_last_checkpoint(plugins, qtbot, data):
    engine = make_engine(plugins, in_process=True)
    try:
        job, _ = train(engine, qtbot, "line-c", {"data": [str(data)], "steps": 100_000, "checkpoint_every": 5},
                       on_first_progress=engine.cancel, after_step=6, signal="job_cancelled")  # step 5 saved
    finally:
        assert engine.shutdown(timeout=30)
    assert not job.training.paused and job.training.result is None
    kept = checkpoints(run_dir("toy.line", "line-c"))
    assert kept and json.loads((kept[-1][1] / "state.json").read_text())["w"] != 0.0
    assert not (imported_models_dir() / "line-c.safetensors").exists()


def test_a_run_that_does_not_fit_is_refused_before_its_first_step(plugins, qtbot, data):
    engine = make_engine(plugins, in_process=True)
    try:
        with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
            job = engine.submit_training("toy.line", "fit", {"data": [str(data)], "peak_bytes": 2**60},
                                         name="line-big", model="demo")
    finally:
        assert engine.shutdown(timeout=30)
    assert "needs about" in failed.args[1] and "it was not started" in failed.args[1]
    assert read_log(run_dir("toy.line", "line-big")) == [] and job.progress[0] == 0


def test_bad_requests_are_refused_at_once(plugins, data, tmp_path):
    engine = make_engine(plugins, in_process=True)
    try:
        with pytest.raises(ParamError, match="cannot train that"):
            engine.submit_training("toy.line", "paint", {}, name="x", model="demo")
        with pytest.raises(ParamError, match="letters, digits"):
            engine.submit_training("toy.line", "fit", {}, name="no/slash", model="demo")
        with pytest.raises(ParamError, match="no run named"):
            engine.submit_training("toy.line", "fit", None, name="never", model="demo", resume=True)
    finally:
        assert engine.shutdown(timeout=30)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamError, match="no .csv files to train on"):
        run_training(plugins.generator("toy.line"), "fit", {"data": [str(tmp_path / "empty")]},
                     work_dir=tmp_path / "run", model="demo")


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(plugins, data, tmp_path, monkeypatch):
    import os

    line = plugins.generator("toy.line")
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.extend([dst] if "checkpoints" in str(dst) else [])
        if len(calls) == 2 and "checkpoints" in str(dst):  # the second checkpoint cannot be made complete
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(DiskFullError, match="checkpoint of step 10"):
        run_training(line, "fit", {"data": [str(data)], "steps": 30, "checkpoint_every": 5, "work": 1},
                     work_dir=tmp_path / "run", model="demo")
    ((step, folder),) = checkpoints(tmp_path / "run")
    assert step == 5 and json.loads((folder / "state.json").read_text())  # still whole, to resume from
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-000005"]  # no half-made one


def test_the_fit_check_refuses_with_the_estimate(plugins, data, tmp_path):
    line = plugins.generator("toy.line")
    with pytest.raises(InsufficientMemoryError, match="needs about 1000 B"):
        run_training(line, "fit", {"data": [str(data)]}, work_dir=tmp_path / "run", model="demo",
                     free_memory=lambda device: 10)
