"""Running a batch (:class:`desktop.batch.run.BatchRun`) through the real engine with the example Markov plugin,
and `studiolo batch` end to end: the dataset and its journal, pause, cancel, a full disk, kill -9 then --resume."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import ROOT, RunGate, install_markov, run_cli

from desktop.batch.inputs import BatchRow
from desktop.batch.journal import Journal
from desktop.batch.plan import make_plan
from desktop.batch.run import MAX_PENDING_WRITES, WINDOW, BatchRun, OutputFolderError, open_batch
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def engine(studiolo_site, qtbot):
    install_markov(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache(), in_process=True)
    yield engine
    assert engine.shutdown(timeout=30)


def markov_batch(engine, out, rows=None, *, count=4):
    generator = engine.plugins.generator("text.markov")
    rows = rows or [BatchRow(n, f"The {word}", {}) for n, word in enumerate(["sea", "lamp", "page", "night",
                                                                             "boats", "story"][:count], start=1)]
    plan = make_plan(generator, rows, base_params={"words": 4}, model=None, seed_mode="sequential", seed=10,
                     source={"test": True})
    return open_batch(out, plan, fmt="jsonl", card={}), generator


def data_rows(out):
    return [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]


def manifest_ok(out) -> list[str]:
    """The names SHA256SUMS lists, after `sha256sum -c` passed on it."""
    result = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text().splitlines())


def test_a_batch_writes_the_dataset_and_journal_with_each_rows_overrides(engine, qtbot, tmp_path):
    out = tmp_path / "out"
    rows = [BatchRow(1, "The sea", {}), BatchRow(2, "The lamp", {"words": 2}, seed=77), BatchRow(3, "The page", {})]
    opened, generator = markov_batch(engine, out, rows)
    run = BatchRun(engine, opened, generator)
    done, progress = [], []
    run.item_done.connect(lambda index, outputs: done.append((index, outputs[0].text)))
    run.progressed.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        run.start()
    assert [i for i, _ in done] == [0, 1, 2] and progress[-1] == (3, 3) and run.complete and not run.errors
    written = data_rows(out)
    assert [r["text"] for r in written] == [text for _, text in done]
    assert [r["id"] for r in written] == ["000000-0", "000001-0", "000002-0"]
    assert [r["seed"] for r in written] == [10, 77, 12]  # sequential from 10; row 2 brings its own seed
    assert [len(r["text"].split()) for r in written] == [2 + 4, 2 + 2, 2 + 4]  # the prompt and the words written
    assert json.loads(written[1]["params"])["words"] == 2 and written[1]["prompt"] == "The lamp"
    assert {r["generator"] for r in written} == {"text.markov"} and written[2]["batch_row"] == 3
    assert sorted(Journal(out).read_done()) == [0, 1, 2] and Journal(out).read_plan()["seed_mode"] == "sequential"
    assert "data.jsonl" in manifest_ok(out)


def test_cancel_keeps_the_finished_items_and_a_valid_manifest(engine, qtbot, tmp_path, monkeypatch):
    gate = RunGate(monkeypatch)  # the second item waits until the cancel has landed
    out = tmp_path / "out"
    opened, generator = markov_batch(engine, out, count=6)
    run = BatchRun(engine, opened, generator)
    run.item_done.connect(lambda index, outputs: (run.cancel(), gate.release()))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        run.start()
    assert run.cancelled and not run.complete and list(run.done) == [0] and len(run.submitted) == WINDOW + 1
    assert sorted(Journal(out).read_done()) == [0]
    assert [r["id"] for r in data_rows(out)] == ["000000-0"]  # exactly the finished item
    assert manifest_ok(out) == ["README.md", "data.jsonl"]
    assert "**Incomplete**" in (out / "README.md").read_text() and "after 1 item(s) of 6" in (
        out / "README.md").read_text()


def test_a_full_disk_stops_the_batch_with_the_manifest_listing_the_complete_items(engine, qtbot, tmp_path,
                                                                                   monkeypatch):
    from desktop.batch.dataset import DatasetWriter

    calls = []
    original = DatasetWriter.add

    def add(self, row, file=None, text=None):
        calls.append(row["id"])
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, row, file=file, text=text)

    monkeypatch.setattr(DatasetWriter, "add", add)
    out = tmp_path / "out"
    rows = [BatchRow(n, "The sea", {}) for n in range(1, 31)]
    opened, generator = markov_batch(engine, out, rows)
    run = BatchRun(engine, opened, generator)
    stopped, fed_at_stop = [], []
    run.stopped.connect(lambda message: (stopped.append(message), fed_at_stop.append(len(run.submitted))))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        run.start()
    assert len(stopped) == 1 and "full" in stopped[0] and run.error and not run.complete
    assert sorted(run.done) == [0, 1] and sorted(Journal(out).read_done()) == [0, 1]
    # nothing more was fed once the write failed (the writer is at most MAX_PENDING_WRITES items behind)
    assert len(run.submitted) == fed_at_stop[0] <= 3 + MAX_PENDING_WRITES + WINDOW < 30
    assert [r["id"] for r in data_rows(out)] == ["000000-0", "000001-0"]
    assert "data.jsonl" in manifest_ok(out)


def test_pause_stops_feeding_and_resume_continues(engine, qtbot, tmp_path):
    out = tmp_path / "out"
    opened, generator = markov_batch(engine, out, [BatchRow(n, "The lamp", {}) for n in range(1, 31)])
    run = BatchRun(engine, opened, generator)
    queued, paused, fed_at_pause = [], [], []
    engine.job_queued.connect(queued.append)
    run.paused_changed.connect(paused.append)
    run.item_done.connect(lambda index, outputs: (run.pause(), fed_at_pause.append(len(queued))) if index == 0
                          else None)
    run.start()
    qtbot.waitUntil(lambda: run.paused and run.idle, timeout=WAIT)  # the jobs under way ended and were written
    assert len(queued) == len(run.submitted) == fed_at_pause[0] <= 1 + MAX_PENDING_WRITES + WINDOW < 30
    assert not run.is_finished and len(run.done) == len(queued)
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        run.resume()
    assert paused == [True, False] and len(queued) == 30 and sorted(run.done) == list(range(30)) and run.complete
    assert len(data_rows(out)) == 30


def test_a_folder_that_is_not_empty_is_refused_without_resume_or_force(engine, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match="not empty"):
        markov_batch(engine, out)
    assert os.listdir(out) == ["mine.txt"]  # untouched
    generator = engine.plugins.generator("text.markov")
    plan = make_plan(generator, [BatchRow(1, "The", {})], base_params={}, model=None, seed_mode="fixed", seed=1,
                     source={})
    open_batch(out, plan, fmt="jsonl", card={}, force=True)
    assert not (out / "mine.txt").exists() and Journal(out).exists()


def test_flipped_inputs_written_while_planning_are_the_new_batchs_own(tmp_path):
    """make_plan writes flipped/cropped pictures into the journal's inputs folder before the folder is opened: they
    do not make it "not empty", and --force keeps them while it clears what was there."""
    from PIL import Image

    from plugins.image.generator import DiffusersImageGenerator

    generator = DiffusersImageGenerator()  # its Params and params_for_input only: no model is loaded
    pictures = tmp_path / "in"
    pictures.mkdir()
    Image.new("RGB", (8, 8), "red").save(pictures / "a.png")
    rows = [BatchRow(1, None, {}, source=pictures / "a.png")]
    for out, force in ((tmp_path / "new", False), (tmp_path / "used", True)):
        if force:
            out.mkdir()
            (out / "old.png").write_bytes(b"old")
        plan = make_plan(generator, rows, base_params={}, model=None, seed_mode="fixed", seed=1, flip=True,
                         work_dir=Journal(out).inputs_dir, source={})
        flipped = plan.items[0].params["init_image"]
        open_batch(out, plan, fmt="imagefolder", card={}, force=force)
        assert Journal(out).exists() and os.path.isfile(flipped) and not (out / "old.png").exists()


@pytest.fixture
def env(studiolo_site):
    install_markov(studiolo_site)
    env = studiolo_site.env()
    env["STUDIOLO_IN_PROCESS"] = "1"  # one process to kill
    return env


def wait_for_progress(proc, mark: str) -> str:
    """Read the batch's stderr (its progress bar: a line every tenth of the items when not on a terminal) until a
    line holds ``mark``; the lines read. The bar moves only after an item is written and journaled."""
    seen = []
    for line in proc.stderr:
        seen.append(line if isinstance(line, str) else line.decode())
        if mark in seen[-1]:
            return "".join(seen)
    pytest.fail(f"the batch ended before {mark!r}:\n" + "".join(seen))


def checksums(out) -> dict[str, str]:
    """Every data file's checksum (the card records the command, so it is left out)."""
    lines = (out / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines) if name != "README.md"}


def test_kill_9_then_resume_gives_exactly_what_a_clean_run_gives(env, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"The {word}\n" for word in ["sea", "lamp", "page", "night", "boats"] * 40))
    args = ["batch", "text.markov", "--prompts", str(prompts), "--seed", "5", "--seed-mode", "sequential",
            "--param", "words=300"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "desktop", *args, "--out", str(killed)], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = killed / ".studiolo-batch" / "done.jsonl"
    try:
        wait_for_progress(proc, "20/200")  # 20 items written and journaled
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    recorded = journal.read_bytes().count(b"\n")
    assert 2 <= recorded < 200  # killed in the middle
    again = run_cli(*args, "--out", str(killed), env=env)
    assert again.returncode == 2 and "not empty" in again.stderr  # neither --resume nor --force
    resumed = run_cli(*args, "--out", str(killed), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stderr
    clean = run_cli(*args, "--out", str(tmp_path / "clean"), env=env)
    assert clean.returncode == 0, clean.stderr
    assert checksums(killed) == checksums(tmp_path / "clean") and len(data_rows(killed)) == 200
    assert sorted(os.listdir(killed)) == sorted(os.listdir(tmp_path / "clean"))  # no stray file either
    manifest_ok(killed)


def test_ctrl_c_cancels_the_batch_keeping_what_is_written_and_resume_finishes_it(env, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"The {word}\n" for word in ["sea", "lamp", "page", "night"] * 50))
    args = ["batch", "text.markov", "--prompts", str(prompts), "--seed", "3", "--param", "words=300"]
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "desktop", *args, "--out", str(out)], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    journal = out / ".studiolo-batch" / "done.jsonl"
    before = wait_for_progress(proc, "20/200")
    os.kill(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    stderr = before + rest
    assert proc.returncode == 130, stderr
    assert "Cancelling the batch" in stderr and "--resume continues it" in stderr
    kept = journal.read_bytes().count(b"\n")
    assert 1 <= kept < 200 and len(data_rows(out)) == kept  # exactly the items written, listed in the manifest
    manifest_ok(out)
    resumed = run_cli(*args, "--out", str(out), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert len(data_rows(out)) == 200
    manifest_ok(out)
