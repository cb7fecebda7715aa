"""A batch spread over several servers (issue 23, point 4): `studiolo batch remote.text … --spread all` sends its items
to a real `studiolo serve` (concurrency 2) and to a server that dies in the middle of its first answer; the item it
had is said on stderr and written from the other server, and the server that went away gets no more items."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from remote_processes import configure_servers, start_fake_server
from serve_process import start_server

from desktop.api import RemoteServer
from desktop.cli import main
from desktop.settings import Settings


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve-home"))
    yield server
    server.stop()


@pytest.fixture
def fake():  # one a test: the "die" scenario ends its process
    server = start_fake_server()
    yield server
    server.stop()


def _with_concurrency(name: str, concurrency: int) -> None:
    settings = Settings.load()
    settings.remote_servers = [{**e, "concurrency": concurrency} if e["name"] == name else e
                               for e in settings.remote_servers]
    settings.save()


def test_a_batch_spreads_over_servers_and_retries_the_item_of_a_server_that_died(studio, fake, tmp_path, capsys,
                                                                                  qapp):  # the CLI uses it
    # "studio" takes two items at once; "dying" answers one chunk of its first item and then its process ends
    configure_servers({"studio": studio.url, "dying": f"{fake.url}/die/v1"})
    _with_concurrency("studio", 2)
    assert [(s.name, s.concurrency) for s in Settings.load().servers()] == [("studio", 2), ("dying", 1)]
    out = tmp_path / "spread"
    code = main(["batch", "remote.text", "--template", "{a fox|a heron|a hare|an owl|a boat} at night",
                 "--combinatorial", "--param", "max_new_tokens=4", "--param", "temperature=0", "--seed", "5",
                 "--model", "remote://studio/text.transformers/demo", "--spread", "all", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("dying went away") == 1 and "running it on another server" in err  # one item moved
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(row["text"] for row in rows)
    assert {row["model"] for row in rows} == {"remote://studio/text.transformers/demo"}  # all made by studio
    assert fake.process.wait(30) == 3  # the dying server really ended (os._exit(3)) mid-answer


def test_a_grid_spreads_its_cells_over_servers_and_moves_the_cell_of_a_server_that_died(studio, fake, tmp_path,
                                                                                          capsys, qapp):
    configure_servers({"studio": studio.url, "dying": f"{fake.url}/die/v1"})
    out = tmp_path / "grid.md"
    code = main(["explore", "grid", "remote.text", "--axis", "prompt=a fox|a hare|an owl|a boat",
                 "--param", "max_new_tokens=4", "--param", "temperature=0", "--seed", "5",
                 "--model", "remote://studio/text.transformers/demo", "--spread", "all", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("dying went away") == 1 and "running it on another server" in err
    assert "4 of 4 cells done" in err
    table = out.read_text(encoding="utf-8")
    assert all(prompt in table for prompt in ("a fox", "a hare", "an owl", "a boat"))
    assert fake.process.wait(30) == 3


def test_spreading_is_refused_before_any_job_for_servers_not_configured_or_a_local_model(tmp_path, capsys, qapp):
    configure_servers({"studio": "http://127.0.0.1:9/v1"})
    common = ["batch", "remote.text", "--template", "a fox", "--out", str(tmp_path / "x")]
    assert main([*common, "--model", "remote://studio/m", "--spread", "studio,elsewhere"]) == 2
    assert "each must be a configured server: studio" in capsys.readouterr().err
    assert main([*common, "--model", "demo", "--spread", "all"]) == 2
    assert "needs a remote model" in capsys.readouterr().err
    grid = ["explore", "grid", "remote.text", "--axis", "prompt=a|b", "--output", str(tmp_path / "g.md")]
    assert main([*grid, "--model", "remote://studio/m", "--spread", "elsewhere"]) == 2
    assert "each must be a configured server: studio" in capsys.readouterr().err
    assert RemoteServer.from_json({"name": "a", "url": "http://h/v1"}).concurrency == 1


def test_the_batch_window_spreads_a_remote_batch_over_every_server(studio, fake, tmp_path, qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.ui.generator_page import GeneratorPage

    configure_servers({"studio": studio.url, "dying": f"{fake.url}/die/v1"})
    engine = Engine(PluginManager(Settings()).load(), Settings.load(), cache=ModelCache())
    page = GeneratorPage(engine, engine.plugins.generator("remote.text"))
    qtbot.addWidget(page)
    window = None
    try:
        page.reuse(page.generator.Params(prompt="x", max_new_tokens=4, temperature=0.0), seed=5,
                   model="remote://studio/text.transformers/demo")
        window = page.open_batch()
        assert window.spread_box.isVisibleTo(window)  # a remote generator's batch offers it
        window.source_box.setCurrentIndex(window.source_box.findData("template"))
        window.template_edit.setPlainText("{a fox|a hare|an owl} at night")
        window.combinatorial_box.setChecked(True)
        window.spread_box.setChecked(True)
        window.out_edit.setText(str(tmp_path / "out"))
        with qtbot.waitSignal(window.batch_started, timeout=60_000) as started:
            qtbot.mouseClick(window.run_button, Qt.MouseButton.LeftButton)
        run = started.args[0]
        assert run.spread is not None and run.window == 2
        if not run.is_finished:
            with qtbot.waitSignal(window.batch_finished, timeout=60_000):
                pass
        assert len(run.done) == 3 and not run.errors
        assert [(server, ) for _index, server, _message in run.retries] == [("dying",)]
        rows = [json.loads(line) for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
        assert {row["model"] for row in rows} == {"remote://studio/text.transformers/demo"}
    finally:
        if window is not None:
            window.shutdown()
            window.close()
        assert engine.shutdown(timeout=30)


def test_the_grid_window_spreads_a_remote_grid_and_shows_every_cell(studio, fake, qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.explore.axes import parse_axis
    from desktop.explore.grid import GridSpec
    from desktop.plugins import PluginManager
    from desktop.ui.generator_page import GeneratorPage

    configure_servers({"studio": studio.url, "dying": f"{fake.url}/die/v1"})
    engine = Engine(PluginManager(Settings()).load(), Settings.load(), cache=ModelCache())
    page = GeneratorPage(engine, engine.plugins.generator("remote.text"))
    qtbot.addWidget(page)
    window = page.open_grid()
    try:
        generator = page.generator
        assert window.spread_box.isVisibleTo(window)
        window.spread_box.setChecked(True)
        spec = GridSpec(generator.id, (parse_axis(generator, "prompt", "a fox|a hare|an owl"),),
                        {"max_new_tokens": 4, "temperature": 0.0}, "remote://studio/text.transformers/demo", 5)
        with qtbot.waitSignal(window.grid_started, timeout=60_000) as started:
            window.run_grid(spec)
        run = started.args[0]
        assert len(run.job_ids) < len(run.cells)  # fed as the two servers' slots free, not all queued at once
        if not run.is_finished:
            with qtbot.waitSignal(window.grid_finished, timeout=60_000):
                pass
        assert len(run.results) == 3 and not run.errors
        assert [server for _index, server, _message in run.retries] == ["dying"]
        assert {state.status for state in window.view.states.values()} == {"done"}
    finally:
        window.close()
        assert engine.shutdown(timeout=30)


def test_cancelling_a_spread_grid_ends_the_cells_not_sent_at_once(studio, qtbot):
    from desktop.api import remote_servers
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.explore.axes import parse_axis
    from desktop.explore.grid import GridSpec
    from desktop.explore.run import GridRun
    from desktop.plugins import PluginManager
    from desktop.remote.spread import Spread

    configure_servers({"studio": studio.url})
    engine = Engine(PluginManager(Settings()).load(), Settings.load(), cache=ModelCache())
    try:
        generator = engine.plugins.generator("remote.text")
        spec = GridSpec(generator.id, (parse_axis(generator, "prompt", "a|b|c"),), {"max_new_tokens": 4},
                        "remote://studio/text.transformers/demo", 5)
        run = GridRun(engine, spec, generator, spread=Spread(remote_servers()))
        assert len(run.job_ids) == 1  # one slot: one cell sent
        with qtbot.waitSignal(run.finished, timeout=60_000):
            run.cancel()
        assert len(run.job_ids) == 1 and run.is_finished  # nothing more was sent
        assert {(1, 0, 0), (2, 0, 0)} <= run.cancelled and run.ended == 3
    finally:
        assert engine.shutdown(timeout=30)


def test_a_grid_whose_only_server_died_fails_its_cells_and_ends(fake, tmp_path, capsys, qapp):
    configure_servers({"dying": f"{fake.url}/die/v1"})
    out = tmp_path / "grid.md"
    code = main(["explore", "grid", "remote.text", "--axis", "prompt=a|b|c", "--param", "max_new_tokens=4",
                 "--model", "remote://dying/any", "--spread", "all", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err  # written, with its failed cells said
    assert err.count("dying went away") == 1
    assert err.count("(every server was tried)") == 3 and "0 of 3 cells done" in err
