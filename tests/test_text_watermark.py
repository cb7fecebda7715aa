"""The text generator's invisible watermark (``ctx.watermark``): transformers' green-list ``WatermarkingConfig`` at
generation, recorded in the metadata, found again by ``detect_watermark`` with the model's tokenizer alone — on the
tiny random-weight GPT-2 of the demo (200 sampled tokens: marked texts score z ≈ 7–9, unmarked ones z < 2)."""

from __future__ import annotations

import pytest

from desktop.api import LoadOptions, from_json, validate
from desktop.engine.context import CallbackRunContext
from plugins.text.generator import TransformersTextGenerator
from plugins.text.params import TextParams
from plugins.text.watermark import MIN_TOKENS, config_record

GEN = TransformersTextGenerator()
SAMPLED = {"prompt": "The studio was quiet", "max_new_tokens": 200, "temperature": 0.8}
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture
def engine(qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), cache=ModelCache(),
                    in_process=True)  # torch is imported here already: no worker process to start
    yield engine
    assert engine.shutdown(timeout=30)


def run_job(engine, qtbot, tiny_lm, watermark):
    previews = []
    engine.job_previewed.connect(lambda job_id, chunk: previews.append(chunk))
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as done:
        job = engine.submit("text.transformers", SAMPLED, model=str(tiny_lm), seed=1, watermark=watermark)
    engine.job_previewed.disconnect()
    (path,) = job.saved
    (metadata,) = job.saved_metadata
    assert path.read_text(encoding="utf-8") == done.args[1][0].text == "".join(previews)  # streaming unchanged
    return path, metadata


def test_a_marked_text_is_found_in_its_saved_file_and_an_unmarked_one_is_not(engine, qtbot, tiny_lm, capsys):
    marked, marked_meta = run_job(engine, qtbot, tiny_lm, watermark=True)
    plain, plain_meta = run_job(engine, qtbot, tiny_lm, watermark=False)
    assert marked_meta["output"]["watermark"] == config_record("cpu") and "watermark" not in plain_meta["output"]
    assert marked_meta["output"]["new_tokens"] == plain_meta["output"]["new_tokens"] == 200
    assert marked.read_text() != plain.read_text()  # the same seed: the mark changed the tokens

    found = GEN.detect_watermark(marked, marked_meta, tiny_lm)
    assert found.detected and found.score > 0.9999 and "z = " in found.detail, found
    assert found.method == "transformers WatermarkingConfig (lefthash)"
    assert GEN.detect_watermark(marked, None, tiny_lm).detected  # metadata stripped: Studiolo's own settings
    for metadata in (plain_meta, marked_meta):  # unmarked text checked with or without the settings
        missing = GEN.detect_watermark(plain, metadata, tiny_lm)
        assert not missing.detected and missing.score < 0.999, missing
    other_key = {"watermark": {**config_record(), "hashing_key": 15485863}}
    assert not GEN.detect_watermark(marked, other_key, tiny_lm).detected  # another key sees no mark

    import json

    from desktop.cli import main

    bare = marked.with_name("copy.txt")
    bare.write_text(marked.read_text(encoding="utf-8"), encoding="utf-8")  # no sidecar: no model named
    capsys.readouterr()
    main(["verify", "--json", str(marked), str(plain), str(bare)])
    report = json.loads(capsys.readouterr().out)
    (found_marked,), (found_plain,) = report[0]["watermarks"], report[1]["watermarks"]
    assert found_marked["generator"] == "text.transformers" and found_marked["detected"]  # studiolo verify, end to end
    assert not found_plain["detected"]
    assert report[2]["watermarks"] == []  # stripped of its sidecar: no model to read the tokens with


def test_chat_and_greedy_answers_are_marked_too(tiny_lm, tmp_path):
    handle = GEN.load(tiny_lm, "cpu", LoadOptions({"dtype": "auto"}))
    chat = {**SAMPLED, "mode": "chat", "temperature": 0.0, "max_new_tokens": 100}
    params = validate(from_json(TextParams, chat, strict=True), TextParams)
    texts = {}
    for watermark in (True, False):
        previews = []
        ctx = CallbackRunContext(job_id="chat", seed=1, watermark=watermark, on_preview=previews.append)
        (output,) = GEN.generate(handle, params, ctx)
        assert "".join(previews) == output.text
        texts[watermark] = tmp_path / f"{watermark}.txt"
        texts[watermark].write_text(output.text, encoding="utf-8")
    assert texts[True].read_text() != texts[False].read_text()
    assert GEN.detect_watermark(texts[True], {"watermark": config_record()}, tiny_lm).detected
    assert not GEN.detect_watermark(texts[False], {}, tiny_lm).detected


def test_what_cannot_be_judged_says_why_and_never_raises(tiny_lm, tmp_path, monkeypatch):
    text = tmp_path / "short.txt"
    text.write_text("The sea was grey in the morning.", encoding="utf-8")
    short = GEN.detect_watermark(text, {"watermark": config_record()}, tiny_lm)
    assert not short.detected and short.score == 0.0
    assert short.detail.startswith("too short to tell:") and f"at least {MIN_TOKENS}" in short.detail
    assert GEN.detect_watermark(text, {}, None) is None  # no tokenizer: cannot tell

    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    assert "could not be read as UTF-8 text" in GEN.detect_watermark(binary, {}, tiny_lm).detail
    assert "could not be read" in GEN.detect_watermark(tmp_path / "gone.txt", {}, tiny_lm).detail
    assert "not a transformers model folder" in GEN.detect_watermark(text, {}, tmp_path).detail
    bad_record = GEN.detect_watermark(text, {"watermark": {"greenlist_ratio": "half"}}, tiny_lm)
    assert not bad_record.detected and bad_record.detail.startswith("could not be checked")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_gpu = GEN.detect_watermark(text, {"watermark": config_record("cuda:0")}, tiny_lm)
    assert not on_gpu.detected and "marked on a cuda device" in on_gpu.detail
