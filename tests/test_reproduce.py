"""Reproduce exactly: every output records what a re-run needs (model hash, library versions, device), and
``reproduce`` / ``studiolo reproduce`` re-run the job and say identical, or differs naming what changed.

With the docs' Markov plugin (a corpus file is its model: fast, deterministic for a seed), in this process.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import pytest
from helpers import install_markov

from desktop.cli import main
from desktop.engine.cache import ModelCache
from desktop.engine.engine import IN_PROCESS_ENV, Engine
from desktop.library import metadata_for
from desktop.plugins import PluginManager
from desktop.provenance.reproduce import ReproduceError, library_versions, reproduce
from desktop.settings import Settings

WAIT = 60_000
CORPUS = ("the boat went out in the morning and the boat came back at night and the sea was grey in the morning "
          "and the sea was blue at noon and the lamp was warm at night")
OTHER = ("a fox ran over the hill and the hill was green and a bird sang over the fox and the bird flew over the "
         "green hill at dawn")


@pytest.fixture
def plugins(studiolo_site, monkeypatch, tmp_path):
    install_markov(studiolo_site)
    monkeypatch.setenv(IN_PROCESS_ENV, "1")  # the CLI's own engine runs markov here too: no worker process
    return PluginManager(Settings(idle_unload_minutes=0, output_dir=str(tmp_path / "out"))).load()


@pytest.fixture
def engine(plugins):
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "model" / "corpus.txt"
    path.parent.mkdir()
    path.write_text(CORPUS, encoding="utf-8")
    return path


def made(engine, qtbot, corpus: Path):
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit("text.markov", {"words": 25, "temperature": 1.5}, model=str(corpus), seed=11)
    (item_id,) = job.item_ids
    (path,) = job.saved
    return item_id, path


def test_every_output_records_the_model_hash_versions_and_device(engine, qtbot, corpus):
    _item_id, path = made(engine, qtbot, corpus)
    record = metadata_for(path)["reproduce"]
    assert record["model_sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert record["device"] == "cpu" and record["versions"] == {}  # markov preloads no library
    # a generator preloading diffusers records diffusers, and transformers (its text encoders), read without import
    assert library_versions(("torch", "diffusers")) == {
        name: importlib.metadata.version(name) for name in ("diffusers", "torch", "transformers")}


def test_a_fresh_output_reproduces_identically_by_id_and_by_file(engine, qtbot, corpus, capsys):
    item_id, path = made(engine, qtbot, corpus)
    report = reproduce(item_id, engine)
    assert report.identical and report.difference == 0 and report.changes == () and not report.unrecorded
    assert report.output.text == path.read_text(encoding="utf-8")
    assert reproduce(path, engine).identical

    assert main(["reproduce", str(path)]) == 0  # the CLI's own engine, nothing saved
    assert "identical" in capsys.readouterr().out


def test_a_changed_model_file_differs_naming_the_hash(engine, qtbot, corpus, capsys):
    item_id, path = made(engine, qtbot, corpus)
    before = hashlib.sha256(corpus.read_bytes()).hexdigest()
    corpus.write_text(OTHER, encoding="utf-8")  # the same path, other weights
    after = hashlib.sha256(corpus.read_bytes()).hexdigest()
    fresh = Engine(engine.plugins, engine.settings, cache=ModelCache(), store=None, library=None, in_process=True)
    try:  # a new engine: the first one holds the old chain in its model cache
        report = reproduce(item_id, fresh, engine.library)
    finally:
        assert fresh.shutdown(timeout=30)
    assert not report.identical and report.difference == 1
    assert [(c.what, c.recorded, c.now) for c in report.changes] == [("model file's hash", before, after)]
    assert f"the model file's hash changed: recorded {before}, now {after}" in report.summary()

    assert main(["reproduce", str(path)]) == 1
    assert f"recorded {before}, now {after}" in capsys.readouterr().out


def test_a_file_without_metadata_cannot_be_reproduced(engine, tmp_path, capsys):
    bare = tmp_path / "bare.txt"
    bare.write_text("the sea was grey", encoding="utf-8")
    with pytest.raises(ReproduceError, match="holds no Studiolo metadata"):
        reproduce(bare, engine)
    assert main(["reproduce", str(bare)]) == 2
    err = capsys.readouterr().err
    assert "holds no Studiolo metadata: there is nothing to re-run" in err and "sidecar" in err
    assert main(["reproduce", "999999"]) == 2
    assert "There is no item 999999 in the library" in capsys.readouterr().err
