"""The user's remote servers (issue 23): kept in the settings, edited with `studiolo servers` and in Settings →
Servers, read by generators through `desktop.api.remote_servers`; `remote://` references resolved to no files; the
spread of a batch over servers (slots, cooldown, giving up); engine lanes."""

from __future__ import annotations

import os
import stat

import pytest
from helpers import run_cli

from desktop.api import (
    ModelNotFoundError,
    ModelSource,
    ParamError,
    RemoteServer,
    parse_remote_ref,
    remote_ref,
    remote_servers,
)
from desktop.cli import main
from desktop.models.resolver import ModelResolver, parse_ref
from desktop.remote.servers import ServerListError, add_server, normalise_url, remove_server
from desktop.remote.spread import Spread, model_on, spread_servers
from desktop.settings import Settings


def test_servers_added_listed_and_removed_from_the_command_line(capsys):
    assert main(["servers", "add", "gpubox", "http://127.0.0.1:8188", "--api-key", "sk-secret-1234",
                 "--concurrency", "2"]) == 0
    assert main(["servers", "add", "laptop", "http://127.0.0.1:9000/v1/"]) == 0
    assert [(s.name, s.url, s.api_key, s.concurrency) for s in remote_servers()] == [
        ("gpubox", "http://127.0.0.1:8188/v1", "sk-secret-1234", 2), ("laptop", "http://127.0.0.1:9000/v1", None, 1)]
    assert stat.S_IMODE(os.stat(Settings.path()).st_mode) == 0o600  # the keys are kept owner-only
    capsys.readouterr()
    assert main(["servers", "list"]) == 0
    listed = capsys.readouterr().out
    assert "gpubox\thttp://127.0.0.1:8188/v1\tkey …1234\tconcurrency 2" in listed
    assert "sk-secret" not in listed  # never printed whole
    assert main(["servers", "add", "gpubox", "http://127.0.0.1:1"]) == 2  # a name in use
    assert "configured already" in capsys.readouterr().err
    assert main(["servers", "add", "gpubox", "http://127.0.0.1:1", "--replace"]) == 0
    assert main(["servers", "remove", "laptop"]) == 0
    assert [s.name for s in remote_servers()] == ["gpubox"]
    assert remote_servers()[0].url == "http://127.0.0.1:1/v1"
    assert main(["servers", "remove", "laptop"]) == 2
    assert "No server named 'laptop'" in capsys.readouterr().err


@pytest.mark.parametrize("url, problem", [("gpubox:8188", "not a server URL"), ("ftp://host/v1", "not a server URL"),
                                          ("http://user:pw@host/v1", "password")])
def test_bad_server_urls_are_refused_with_the_form_to_use(url, problem):
    with pytest.raises(ServerListError, match=problem) as caught:
        add_server("box", url)
    assert "http://" in caught.value.hint
    assert remote_servers() == []


def test_bad_names_are_refused_and_a_broken_entry_is_left_out_with_a_warning():
    with pytest.raises(ServerListError, match="not a short name"):
        add_server("my box", "http://127.0.0.1:1")
    with pytest.raises(ServerListError):
        add_server("box", "http://127.0.0.1:1", concurrency=0)
    settings = Settings()
    settings.remote_servers = [{"name": "ok", "url": "http://127.0.0.1:1/v1"}, {"name": "bad"},
                               {"name": "ok", "url": "http://127.0.0.1:2/v1"}]
    settings.save()
    loaded = Settings.load()
    assert [s.url for s in loaded.servers()] == ["http://127.0.0.1:1/v1"]
    assert any("bad" in w for w in loaded.warnings) and any("second remote server" in w for w in loaded.warnings)
    with pytest.raises(ServerListError):
        remove_server("nobody")


def test_normalise_url_adds_the_api_path_only_when_there_is_none():
    assert normalise_url(" http://h:1 ") == "http://h:1/v1"
    assert normalise_url("https://h/api/v1/") == "https://h/api/v1"


def test_remote_references_name_a_server_and_a_model():
    ref = remote_ref("gpubox", "org/model:q4")
    assert ref == "remote://gpubox/org/model:q4"
    assert parse_remote_ref(ref) == ("gpubox", "org/model:q4")
    for bad in ("remote://gpubox", "remote:///model", "gpubox/model", "remote://bad name/m"):
        with pytest.raises(ModelNotFoundError):
            parse_remote_ref(bad)
    assert parse_ref(ref).source == ModelSource.REMOTE
    assert model_on("remote://a/image.diffusers/demo", "b") == "remote://b/image.diffusers/demo"


class _RemoteOnly:
    """Only what the resolver reads of a generator."""

    name = "Remote test"
    model_sources = frozenset({ModelSource.REMOTE})


class _FilesOnly(_RemoteOnly):
    model_sources = ModelSource.ALL


def test_the_resolver_gives_no_files_for_a_remote_model_of_a_configured_server():
    resolver = ModelResolver()
    with pytest.raises(ModelNotFoundError, match="No server named 'gpubox' is configured") as caught:
        resolver.resolve(_RemoteOnly(), "remote://gpubox/m")
    assert "studiolo servers add" in caught.value.hint
    add_server("gpubox", "http://127.0.0.1:1")
    assert resolver.resolve(_RemoteOnly(), "remote://gpubox/m") is None  # nothing contacted, nothing downloaded
    with pytest.raises(ModelNotFoundError, match="cannot use a model given as remote"):
        resolver.resolve(_FilesOnly(), "remote://gpubox/m")


def _servers(*spec):
    return [RemoteServer(name, f"http://127.0.0.1:{i + 1}/v1", concurrency=c) for i, (name, c) in enumerate(spec)]


def test_spread_fills_each_server_up_to_its_concurrency_least_busy_first():
    spread = Spread(_servers(("a", 2), ("b", 1)))
    assert spread.capacity == 3
    slots = [spread.place() for _ in range(3)]
    assert [(s.server, s.index) for s in slots] == [("a", 0), ("b", 0), ("a", 1)]
    assert spread.place() is None and spread.usable()  # all busy, but somewhere to go
    spread.free(slots[1])
    assert spread.place().lane == "b.0"
    assert len({s.lane for s in slots}) == 3


def test_a_server_that_went_away_is_left_out_for_the_cooldown_by_the_callers_clock():
    now = [100.0]
    spread = Spread(_servers(("a", 1), ("b", 1)), cooldown=30, clock=lambda: now[0])
    first = spread.place()
    spread.free(first)
    spread.went_away("a")
    assert spread.is_down("a") and spread.place().server == "b"
    assert spread.place() is None  # b busy, a down
    assert spread.usable() and not spread.usable({"b"})  # an item b failed has nowhere left
    now[0] += 30
    assert not spread.is_down("a") and spread.place({"b"}).server == "a"


def test_spread_servers_checks_names_and_the_model():
    configured = _servers(("a", 1), ("b", 2))
    assert [s.name for s in spread_servers(["all"], configured, "remote://a/m")] == ["a", "b"]
    assert [s.name for s in spread_servers(["b", "b"], configured, "remote://a/m")] == ["b"]
    with pytest.raises(ParamError, match="each must be a configured server: a, b"):
        spread_servers(["c"], configured, "remote://a/m")
    with pytest.raises(ParamError, match="needs a remote model"):
        spread_servers(["a"], configured, None)
    with pytest.raises(ParamError, match="no server is configured"):
        spread_servers(["all"], [], "remote://a/m")


def test_lanes_are_refused_for_a_generator_in_a_worker_process(studiolo_plugins, qtbot):
    from desktop.engine.engine import Engine

    engine = Engine(studiolo_plugins(), in_process=False)
    try:
        with pytest.raises(ParamError, match="one job at a time"):
            engine.submit("text.transformers", {"prompt": "x"}, lane="a.0")
    finally:
        engine.shutdown()


def test_servers_command_without_servers_says_nothing_is_contacted():
    result = run_cli("servers", "list", env={**os.environ})
    assert result.returncode == 0
    assert "remote generators contact nothing" in result.stdout
