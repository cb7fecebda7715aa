"""``studiolo train``: any training parameter as ``--NAME VALUE``; the trained model's name at the end; Ctrl+C
pauses at a checkpoint and prints how to resume; ``--resume`` (with changed parameters) finishes the same run;
bad requests are usage errors. Through the toy trainer of tests/training_plugin.py, installed by entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import run_cli
from training_plugin import install_line, line_data

from desktop.engine.train_job import read_provenance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def env(studiolo_site):
    install_line(studiolo_site)
    env = studiolo_site.env()
    env["STUDIOLO_IN_PROCESS"] = "1"  # one process to interrupt
    return env


def test_train_takes_parameters_as_options_and_prints_the_models_name(env, tmp_path, studiolo_home):
    data = line_data(tmp_path / "data")
    result = run_cli("train", "toy.line", "--model", "demo", "--data", str(data / "a.csv"), "--data",
                     str(data / "b.csv"), "--steps", "120", "--work=1", "-p", "learning_rate=0.1", "--seed", "3",
                     "--out", "my-line", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "my-line.safetensors" and "trained my-line.safetensors" in result.stderr
    record = read_provenance(studiolo_home / "data" / "models" / "imported" / "my-line.safetensors")
    assert record["params"]["steps"] == 120 and record["params"]["learning_rate"] == 0.1
    assert [e["file"] for e in record["dataset"]] == ["a.csv", "b.csv"] and record["seed"] == 3

    listed = run_cli("train", "toy.line", "--out", "x", "-p", "help", env=env)
    assert listed.returncode == 0 and "checkpoint_every" in listed.stdout and "data (list of str" in listed.stdout
    again = run_cli("train", "toy.line", "--model", "demo", "--data", str(data), "--out", "my-line", env=env)
    assert again.returncode == 2 and "exists already" in again.stderr
    unknown = run_cli("train", "toy.line", "--model", "demo", "--colour", "red", "--out", "y", env=env)
    assert unknown.returncode == 2 and "colour" in unknown.stderr
    cannot = run_cli("train", "text.markov", "--out", "z", env=env)
    assert cannot.returncode == 2


def test_ctrl_c_pauses_at_a_checkpoint_and_resume_finishes_the_same_run(env, tmp_path, studiolo_home):
    data = line_data(tmp_path / "data")
    args = ["train", "toy.line", "--model", "demo", "--data", str(data), "--checkpoint-every", "0", "--out", "run"]
    proc = subprocess.Popen([sys.executable, "-m", "desktop", *args, "--steps", "1000000", "--seed", "8"], cwd=ROOT,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stderr:  # the warm-up's estimate comes before the first step
        seen.append(line)
        if "Estimate from the warm-up" in line:
            break
    os.kill(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    assert "Pausing after this step's checkpoint" in stderr and "Training paused" in stderr
    assert "studiolo train toy.line --kind fit --out run --resume" in stderr
    checkpoints = sorted((studiolo_home / "data" / "training" / "toy.line" / "run" / "checkpoints").iterdir())
    (paused_at,) = [int(p.name.removeprefix("step-")) for p in checkpoints]  # the pause wrote one: the only one

    resumed = run_cli("train", "toy.line", "--out", "run", "--resume", "--steps", str(paused_at + 50), "--json",
                      env=env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["state"] == "done" and summary["model"] == "run.safetensors" and summary["seed"] == 8
    assert f"Resuming from the checkpoint of step {paused_at}" in resumed.stderr
    record = read_provenance(studiolo_home / "data" / "models" / "imported" / "run.safetensors")
    assert [e["step"] for e in record["log"]] == list(range(1, paused_at + 51))
    assert record["params"]["steps"] == paused_at + 50 and record["params"]["checkpoint_every"] == 0  # kept
