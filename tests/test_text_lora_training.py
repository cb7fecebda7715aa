"""Text LoRA training (``text.transformers`` trains ``lora``, plugins/text/training.py) on the tiny random-weight
GPT-2, through the host's real training context (desktop.testing.run_training): the loss falls, the adapter changes
greedy output and a job without it is the base model exactly, resume equals an uninterrupted run, cancel keeps the
last checkpoint, drafts and chat examples train, and bad data or too little memory are refused clearly."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from desktop.api import InsufficientMemoryError, ParamError
from desktop.testing import run_generator
from desktop.testing.training import run_training
from plugins.text.demo import DEMO_TEXT
from plugins.text.drafts import Draft, DraftStore, export_text
from plugins.text.generator import TransformersTextGenerator
from plugins.text.training import TextLoraParams, batch_indices

GEN = TransformersTextGenerator()
FAST = {"block_size": 32, "batch_size": 2, "learning_rate": 1e-2, "checkpoint_every": 0}
GREEDY = {"prompt": "The studio was", "temperature": 0.0, "repetition_penalty": 1.0, "max_new_tokens": 16}


@pytest.fixture(scope="module")
def writing(tmp_path_factory):
    """A folder of a few KB of fixed text: .txt and .md (with an exported draft's front matter)."""
    folder = tmp_path_factory.mktemp("writing")
    lines = DEMO_TEXT.splitlines()
    (folder / "one.txt").write_text("\n".join(lines[:6]) * 3, encoding="utf-8")
    (folder / "two.md").write_text('---\nstudiolo: "text-draft"\n---\n\n' + "\n".join(lines[6:]) * 3,
                                   encoding="utf-8")
    return folder


def train(tiny_lm, work_dir, texts, **params):
    return run_training(GEN, "lora", {"texts": [str(t) for t in texts], **FAST, **params}, work_dir=work_dir,
                        model=str(tiny_lm), seed=7)


@pytest.fixture(scope="module")
def trained(tiny_lm, writing, tmp_path_factory):
    """One 30-step run, shared by the tests that read its result."""
    work = tmp_path_factory.mktemp("run")
    return train(tiny_lm, work, [writing], steps=30, sample_every=15, sample_prompt="The sea")


def test_the_loss_falls_and_the_adapter_is_a_peft_folder_with_its_facts(trained, writing):
    losses = [entry["loss"] for entry in trained.log]
    assert [entry["step"] for entry in trained.log] == list(range(1, 31))
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0, losses  # measured: about 9.3 -> 6.2
    result = trained.result
    assert result.path == trained.work_dir / "result"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in result.path.iterdir()}
    config = json.loads((result.path / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["task_type"] == "CAUSAL_LM" and config["target_modules"] == ["c_attn"]
    assert result.metadata["base_architecture"] == "GPT2LMHeadModel" and result.metadata["block_size"] == 32
    assert result.metadata["texts"] == 2 and result.metadata["chat_examples"] == 0
    assert [f["file"] for f in result.dataset] == ["one.txt", "two.md"]
    assert all(len(f["sha256"]) == 64 for f in result.dataset)
    assert any("Estimate from the warm-up" in w and "CPU" in w for w in trained.warnings)
    assert trained.estimate["peak_bytes"] > 0 and trained.estimate["seconds_per_step"] > 0
    # samples: shown as previews and kept in the run's folder
    assert len(trained.previews) == 2 and all(p.startswith("The sea") for p in trained.previews)
    kept = sorted(p.name for p in (trained.work_dir / "samples").iterdir())
    assert kept == ["step-000015.txt", "step-000030.txt"]


def test_the_adapter_changes_greedy_output_and_a_job_without_it_is_the_base_exactly(trained, tiny_lm):
    base = run_generator(GEN, GREEDY, model=str(tiny_lm))
    handle = base.handle
    adapted = run_generator(GEN, {**GREEDY, "adapter": str(trained.result.path)}, handle=handle)
    again = run_generator(GEN, GREEDY, handle=handle)
    assert adapted.outputs[0].text != base.outputs[0].text
    assert again.outputs[0].text == base.outputs[0].text
    record = adapted.outputs[0].metadata["adapter"]
    assert record == {"name": str(trained.result.path), "sha256": trained.result.metadata["adapter_sha256"]}
    assert "adapter" not in again.outputs[0].metadata


def test_an_adapter_of_another_base_model_is_refused_and_that_model_stays_as_it_was(trained, tiny_lm, tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from desktop.api import ModelFormatError

    config = GPT2Config.from_pretrained(tiny_lm)
    config.n_embd, config.n_head = 32, 2  # another width: the LoRA's matrices do not fit it
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "narrow")
    AutoTokenizer.from_pretrained(tiny_lm).save_pretrained(tmp_path / "narrow")
    base = run_generator(GEN, GREEDY, model=str(tmp_path / "narrow"))
    with pytest.raises(ModelFormatError, match="does not fit this model"):
        run_generator(GEN, {**GREEDY, "adapter": str(trained.result.path)}, handle=base.handle)
    assert run_generator(GEN, GREEDY, handle=base.handle).outputs[0].text == base.outputs[0].text


def test_resume_from_a_checkpoint_equals_an_uninterrupted_run_and_cancel_keeps_the_checkpoint(
        tiny_lm, writing, tmp_path):
    settings = {"steps": 10, "checkpoint_every": 4, "gradient_accumulation": 2}
    whole = train(tiny_lm, tmp_path / "whole", [writing], **settings)
    cut = run_training(GEN, "lora", {"texts": [str(writing)], **FAST, **settings}, work_dir=tmp_path / "cut",
                       model=str(tiny_lm), seed=7, cancel_after=6)
    assert cut.cancelled and cut.result is None
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()) == ["step-000004"]
    assert not (tmp_path / "cut" / "result").exists()
    resumed = run_training(GEN, "lora", {"texts": [str(writing)], **FAST, **settings}, work_dir=tmp_path / "cut",
                           model=str(tiny_lm), seed=7, resume=True)
    assert [e["step"] for e in resumed.log] == list(range(1, 11))
    # measured on the CPU: identical to the last bit (the loop draws from no global random generator)
    assert [e["loss"] for e in resumed.log] == pytest.approx([e["loss"] for e in whole.log], rel=0, abs=1e-6)
    a = load_file(str(whole.result.path / "adapter_model.safetensors"))
    b = load_file(str(resumed.result.path / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6


def test_the_data_order_depends_only_on_the_seed_and_the_position():
    whole = batch_indices(0, 20, 7, seed=3)
    assert sorted(whole[:7]) == list(range(7)) and sorted(whole[7:14]) == list(range(7))
    assert batch_indices(9, 11, 7, seed=3) == whole[9:]
    assert batch_indices(0, 20, 7, seed=4) != whole


def test_chat_examples_and_drafts_train(tiny_lm, tmp_path):
    chats = tmp_path / "chats.jsonl"
    example = {"messages": [{"role": "system", "content": "Answer briefly."},
                            {"role": "user", "content": "What colour is the sea?"},
                            {"role": "assistant", "content": "Grey in the morning and blue at noon."}]}
    chats.write_text("\n".join(json.dumps(example) for _ in range(8)) + "\n\n", encoding="utf-8")
    drafts = DraftStore(tmp_path / "drafts")
    document = Draft.new("document")
    document.text = DEMO_TEXT
    chat = Draft.new("chat")
    chat.messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Good morning."}]
    for draft in (document, chat):
        drafts.save(draft)
    export_text(document, tmp_path / "drafts" / "exported.txt")  # its .json sidecar is not a draft: left out
    run = train(tiny_lm, tmp_path / "run", [chats, tmp_path / "drafts"], steps=3, block_size=16)
    assert run.result.metadata["chat_examples"] == 9 and run.result.metadata["texts"] == 2
    assert len(run.log) == 3 and all(entry["loss"] > 0 for entry in run.log)
    assert any("not text drafts" in w for w in run.warnings)


def test_bad_data_is_refused_naming_what_is_wrong(tiny_lm, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParamError, match="no .txt/.md/.jsonl/.json files") as info:
        train(tiny_lm, tmp_path / "a", [empty], steps=2)
    assert info.value.field == "texts"
    (tmp_path / "blank.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ParamError, match="no text to train on"):
        train(tiny_lm, tmp_path / "b", [tmp_path / "blank.txt"], steps=2)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)
    with pytest.raises(ParamError, match="not UTF-8"):
        train(tiny_lm, tmp_path / "c", [tmp_path / "latin1.txt"], steps=2)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n" + '{"text": "no"}\n',
                   encoding="utf-8")
    with pytest.raises(ParamError, match="line 2 of bad.jsonl is not a chat example"):
        train(tiny_lm, tmp_path / "d", [bad], steps=2)
    (tmp_path / "short.txt").write_text("The sea.", encoding="utf-8")
    with pytest.raises(ParamError, match="fewer than one block"):
        train(tiny_lm, tmp_path / "e", [tmp_path / "short.txt"], steps=2)
    with pytest.raises(ParamError, match="needs a CUDA GPU"):
        train(tiny_lm, tmp_path / "f", [tmp_path / "latin1.txt"], steps=2, mixed_precision="fp16")


def test_a_run_that_does_not_fit_is_refused_after_the_warm_up(tiny_lm, writing, tmp_path):
    with pytest.raises(InsufficientMemoryError, match="was not started"):
        run_training(GEN, "lora", {"texts": [str(writing)], **FAST, "steps": 20, "checkpoint_every": 1},
                     work_dir=tmp_path, model=str(tiny_lm), free_memory=lambda device: 1)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "result").exists()
    assert (tmp_path / "log.jsonl").read_text() == ""  # the warm-up's steps are reported only once it fits


def test_the_params_default_as_the_issue_says():
    params = TextLoraParams()
    assert (params.block_size, params.rank, params.steps, params.learning_rate, params.batch_size,
            params.gradient_accumulation, params.mixed_precision, params.checkpoint_every, params.sample_every) == (
        256, 8, 200, 2e-4, 1, 1, "no", 50, 0)


def test_a_model_peft_cannot_put_a_lora_on_is_a_model_format_error():
    import contextlib

    import torch
    from transformers import PretrainedConfig, PreTrainedModel

    from desktop.api import ModelFormatError
    from plugins.text.training import _lora_config, _peft_model

    class EmbeddingOnlyConfig(PretrainedConfig):
        model_type = "studiolo-embedding-only"  # no peft default: every linear layer, and it has none

    class EmbeddingOnly(PreTrainedModel):
        config_class = EmbeddingOnlyConfig

        def __init__(self, config):
            super().__init__(config)
            self.embed = torch.nn.Embedding(10, 4)

    model = EmbeddingOnly(EmbeddingOnlyConfig())
    config, targets = _lora_config(model, 4)
    assert targets == "all-linear"

    class Ctx:
        def hold_global_rng(self):
            return contextlib.nullcontext()

    with pytest.raises(ModelFormatError, match="A LoRA cannot be trained on EmbeddingOnly"):
        _peft_model(model, config, Ctx())


def test_the_panel_offers_the_adapters_and_the_choice_round_trips_through_the_params(qtbot, tmp_path):
    from desktop.testing.panel_host import RecordingPanelHost
    from plugins.text.panel import create_panel

    class Host(RecordingPanelHost):
        listed = [("My style", "my-style")]

        def addon_models(self, kind):
            return list(self.listed) if kind == "adapter" else []

    host = Host(tmp_path / "panels", generator_id="text.transformers")
    panel = create_panel(host, 60_000)
    qtbot.addWidget(panel)
    chooser = panel.adapter_chooser
    assert [chooser.itemText(i) for i in range(chooser.count())] == ["No adapter", "My style"]
    assert panel.params().adapter == ""
    chooser.setCurrentIndex(1)
    assert panel.params().adapter == "my-style"
    Host.listed = [("My style", "my-style"), ("Letters", "letters")]
    chooser.refresh()  # what opening the list does: read again, the choice kept
    assert chooser.value() == "my-style" and chooser.count() == 3
    panel.apply_params({"adapter": "/adapters/poems", "temperature": 0.0})  # reused params: a path not listed
    assert panel.params().adapter == "/adapters/poems"
    restored = create_panel(host, 60_000)
    qtbot.addWidget(restored)
    restored.restore_panel_state(panel.panel_state())
    assert restored.params().adapter == "/adapters/poems"
