"""Jobs save their outputs atomically with full metadata, indexed in the library; a full disk fails clearly."""

from __future__ import annotations

import errno
import os

import pytest
import torch_plugin
from helpers import install_markov

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.engine.jobs import JobState
from desktop.library import metadata_for, read_png_metadata
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000


@pytest.fixture
def engine(studiolo_site, qtbot):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def test_outputs_are_saved_with_full_metadata_and_indexed(engine, qtbot, studiolo_home):
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as text_done:
        text_job = engine.submit("text.markov", {"words": 4, "prompt": "The sea"}, seed=9)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        image_job = engine.submit("test.noise", {"steps": 2, "prompt": "static"}, seed=10)

    (text_path,) = text_job.saved
    assert text_path.is_relative_to(studiolo_home / "data" / "outputs") and text_path.suffix == ".txt"
    assert text_path.read_text() == text_done.args[1][0].text
    assert text_job.outputs == []  # saved and delivered: the engine dropped them (the library holds them)
    metadata = metadata_for(text_path)
    assert {k: metadata[k] for k in ("generator", "generator_version", "model", "seed", "device", "prompt")} == {
        "generator": "text.markov", "generator_version": "1.0.0", "model": "demo", "seed": 9, "device": "cpu",
        "prompt": "The sea"}
    assert metadata["params"] == {"prompt": "The sea", "words": 4, "temperature": 1.0, "order": 1}
    assert {"load_s", "generate_s", "queued_s"} <= set(metadata["timings"])

    (image_path,) = image_job.saved
    assert read_png_metadata(image_path)["prompt"] == "static"
    items = {item.job_id: item for item in engine.library.list_items()}
    assert items[image_job.id].kind == "image" and items[image_job.id].seed == 10
    assert items[text_job.id].prompt == "The sea" and items[text_job.id].id == text_job.item_ids[0]


def test_a_cancelled_job_keeps_its_partial_output_marked_partial(engine, qtbot):
    engine.job_progressed.connect(lambda job_id, *_: engine.cancel(job_id))
    with qtbot.waitSignal(engine.job_cancelled, timeout=WAIT) as cancelled:
        job = engine.submit("test.noise", {"steps": 100_000})
    (partial,) = cancelled.args[1]
    assert partial.partial and job.saved and read_png_metadata(job.saved[0])["partial"] is True


def test_a_full_disk_fails_the_job_clearly_leaves_no_file_and_the_worker_goes_on(engine, qtbot, monkeypatch,
                                                                                 studiolo_home):
    real_replace = os.replace

    def disk_full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        job = engine.submit("test.noise", {"steps": 2})
    assert "Not enough disk space" in failed.args[1] and job.state is JobState.FAILED
    assert job.outputs  # the image is still in memory, for "save as"
    outputs = studiolo_home / "data" / "outputs"
    assert not outputs.exists() or [p for p in outputs.rglob("*") if p.is_file()] == []

    monkeypatch.setattr(os, "replace", real_replace)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        good = engine.submit("test.noise", {"steps": 2})
    assert good.saved[0].is_file()
