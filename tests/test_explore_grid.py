"""Grids through the real engine (:class:`desktop.explore.run.GridRun`) and `studiolo explore grid` end to end."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
import torch_plugin
from helpers import ROOT, RunGate, install_markov, run_cli
from PIL import Image

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.explore.axes import parse_axis
from desktop.explore.export import GRID_CHUNK, image_layout
from desktop.explore.grid import CONFIRM_JOBS, GridSpec
from desktop.explore.run import GridRun
from desktop.library import Library
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def engine(studiolo_site, qtbot):
    install_markov(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def markov_spec(engine, x="3,6", y="1,2"):
    generator = engine.plugins.generator("text.markov")
    axes = (parse_axis(generator, "words", x), parse_axis(generator, "seed", y))
    return GridSpec("text.markov", axes, {"prompt": "The"}, "demo"), generator


def test_a_2x2_text_grid_runs_every_cell_in_order_with_its_values(engine, qtbot):
    spec, generator = markov_spec(engine)
    run = GridRun(engine, spec, generator)
    done, progress = [], []
    run.cell_done.connect(lambda index, job_id, outputs: done.append((index, job_id)))
    run.progressed.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        pass
    assert [c.index for c in run.cells] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)]
    assert [c.labels for c in run.cells][1] == {"Words": "6", "Seed": "1"}
    assert sorted(i for i, _ in done) == sorted(c.index for c in run.cells) and progress[-1] == (4, 4)
    for cell, job_id in zip(run.cells, run.job_ids, strict=True):
        job = engine.job(job_id)
        assert job.seed == cell.seed and job.params.words == cell.params["words"] and job.model == "demo"
        (output,) = run.results[cell.index]
        assert len(output.text.split()) == 1 + cell.params["words"]  # the prompt and the words written
    assert run.results[(0, 0, 0)][0].text != run.results[(0, 1, 0)][0].text  # seeds 1 and 2 differ
    assert run.is_finished and not run.errors and not run.cancelled


def test_cancelling_after_the_first_cell_cancels_the_rest(engine, qtbot, monkeypatch):
    gate = RunGate(monkeypatch)  # the second cell waits until the first one's cancel has landed
    spec, generator = markov_spec(engine)
    run = GridRun(engine, spec, generator)
    done, cancelled = [], []
    run.cell_done.connect(lambda index, *_: (done.append(index), run.cancel(), gate.release()))
    run.cell_cancelled.connect(lambda index, _id: cancelled.append(index))
    with qtbot.waitSignal(run.finished, timeout=WAIT):
        pass
    assert done == [(0, 0, 0)]
    assert sorted(cancelled) == sorted(c.index for c in run.cells[1:]) and run.is_finished
    assert list(run.results) == [(0, 0, 0)]


def test_a_bad_cell_is_refused_before_any_job(engine):
    generator = engine.plugins.generator("text.markov")
    axis = parse_axis(generator, "words", "3,6")
    queued = []
    engine.job_queued.connect(queued.append)
    with pytest.raises(Exception, match="temperature"):
        GridRun(engine, GridSpec("text.markov", (axis,), {"temperature": 99.0}), generator)
    assert queued == [] and engine.jobs() == []


@pytest.fixture
def env(studiolo_site):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    return studiolo_site.env()


def test_the_cli_writes_a_text_grid_as_a_markdown_table(env, tmp_path, studiolo_home):
    out = tmp_path / "grid.md"
    result = run_cli("explore", "grid", "text.markov", "--axis", "words=2,4", "--axis", "seed=5-6",
                     "--param", "prompt=The", "--output", str(out), env=env)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    front, table = text.split("---\n", 2)[1], text.split("---\n", 2)[2]
    record = json.loads(front.strip().removeprefix(f"{GRID_CHUNK}: "))
    assert record["generator"] == "text.markov" and record["params"]["prompt"] == "The"
    assert record["axes"] == [{"field": "words", "values": "2,4"}, {"field": "seed", "values": "5-6"}]
    rows = [line for line in table.splitlines() if line.startswith("| Seed")]
    assert rows[0].startswith("| Seed: 5 |") and rows[1].startswith("| Seed: 6 |")
    header = next(line for line in table.splitlines() if "Words: 2" in line)
    assert header.index("Words: 2") < header.index("Words: 4")
    cells = [c.strip() for c in rows[0].strip("|").split("|")[1:]]
    assert [len(c.split()) for c in cells] == [3, 5]
    with Library(studiolo_home / "data" / "library.db") as library:
        assert len(library.list_items()) == 4  # every cell is in the library


def test_the_cli_writes_an_image_grid_as_one_labelled_png(env, tmp_path, studiolo_home):
    out = tmp_path / "grid.png"
    result = run_cli("explore", "grid", "test.noise", "--axis", "steps=1,2", "--axis", "seed=3|4",
                     "--output", str(out), env=env)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as grid:
        size, record = grid.size, json.loads(grid.text[GRID_CHUNK])
        grid.load()
        picture = grid.copy()
    assert record["axes"][0] == {"field": "steps", "values": "1,2"} and record["generator"] == "test.noise"
    from desktop.plugins import PluginManager as Manager

    generator = Manager(Settings()).load().generator("test.noise")
    spec = GridSpec("test.noise", (parse_axis(generator, "steps", "1,2"), parse_axis(generator, "seed", "3|4")))
    layout = image_layout(spec, [Image.new("L", (8, 8))] * 4)
    assert (layout.cell_w, layout.cell_h, layout.columns, layout.rows) == (8, 8, 2, 2)
    assert layout.left > 0 and layout.top > 0 and size == layout.size
    with Library(studiolo_home / "data" / "library.db") as library:
        items = library.list_items()
    assert len(items) == 4
    by_cell = {(item.seed, item.metadata["params"]["steps"]): item.path for item in items}
    with Image.open(by_cell[(4, 2)]) as cell:  # x=1 (steps 2), y=1 (seed 4)
        expected = cell.convert("RGB").tobytes()
    x0, y0 = layout.left + layout.col_w, layout.top + layout.row_h
    assert picture.crop((x0, y0, x0 + 8, y0 + 8)).tobytes() == expected


def test_the_cli_refuses_a_bad_axis_before_any_job(env, tmp_path, studiolo_home):
    result = run_cli("explore", "grid", "text.markov", "--axis", "words=3,0", "--output", str(tmp_path / "g.md"),
                     env=env)
    assert result.returncode == 2 and "Invalid value for 'words': 0" in result.stderr, result.stderr
    assert not (tmp_path / "g.md").exists() and not (studiolo_home / "data" / "library.db").exists()


def test_the_cli_refuses_a_big_grid_without_yes(env, tmp_path, studiolo_home):
    result = run_cli("explore", "grid", "text.markov", "--axis", "seed=1-11", "--axis", "words=1-10",
                     "--output", str(tmp_path / "g.md"), env=env)
    assert 11 * 10 > CONFIRM_JOBS
    assert result.returncode == 2 and "110 jobs" in result.stderr and "add --yes" in result.stderr, result.stderr
    assert not (tmp_path / "g.md").exists() and not (studiolo_home / "data" / "library.db").exists()


def test_ctrl_c_cancels_the_grid_and_writes_nothing(env, tmp_path, studiolo_home):
    out = tmp_path / "grid.png"
    proc = subprocess.Popen([sys.executable, "-m", "desktop", "explore", "grid", "test.noise", "--axis",
                             "steps=99999,100000", "--output", str(out)], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen, deadline = b"", time.monotonic() + 60
        while b"test.noise grid [" not in seen:  # the grid's jobs are queued, the Ctrl+C handler is in place
            remaining = deadline - time.monotonic()
            assert remaining > 0 and select.select([proc.stderr], [], [], remaining)[0], seen
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, seen
            seen += chunk
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (seen + rest).decode("utf-8", "replace")
    assert proc.returncode == 130, stderr
    assert "Cancelling the grid" in stderr and "grid cancelled (0 of 2 cells done" in stderr
    assert not out.exists()


def test_a_z_axis_stacks_one_headed_grid_per_value_and_a_missing_cell_is_grey(engine):
    from desktop.explore.export import grid_markdown, grid_png
    from desktop.explore.grid import expand

    generator = engine.plugins.generator("text.markov")
    axes = tuple(parse_axis(generator, name, text) for name, text in
                 (("words", "1,2"), ("seed", "3,4"), ("temperature", "0.5,1.5")))
    spec = GridSpec("text.markov", axes)
    cells = expand(spec, generator)
    images = {c.index: Image.new("RGB", (10, 10), (255, 0, 0)) for c in cells if c.index != (1, 1, 1)}
    layout = image_layout(spec, [images.get(c.index) for c in cells])
    assert layout.blocks == 2 and layout.heading > 0 and layout.size[1] == 2 * layout.block_h
    with Image.open(io.BytesIO(grid_png(spec, cells, images))) as grid:
        assert grid.size == layout.size
        x0, y0 = layout.left + layout.col_w, layout.block_h + layout.heading + layout.top + layout.row_h
        assert grid.convert("RGB").getpixel((x0 + 9, y0 + 9)) == (160, 160, 160)  # the missing cell (1, 1, 1)
        assert grid.convert("RGB").getpixel((layout.left + 5, layout.heading + layout.top + 5)) == (255, 0, 0)
    page = grid_markdown(spec, cells, {c.index: f"cell {c.index}" for c in cells if c.index != (1, 1, 1)})
    assert page.index("## Temperature: 0.5") < page.index("cell (1, 1, 0)") < page.index("## Temperature: 1.5")
    assert "| Seed: 4 | cell (0, 1, 1) | failed |" in page
